"""How a ``linetwin`` command fails: in one clear line on stderr, never a traceback.

Exit status: 0 done, 1 a failure while running (a tampered trail, a failed simulation or scenario), 2 a usage or
input error (a missing or malformed file, a bad or conflicting option, no password source), 141 (128 + SIGPIPE,
what a shell reports for ``seq 1e9 | head -1``) when the reader of standard output went away: then nothing more
is printed, as the Unix tools do; 130 (128 + SIGINT) after a Ctrl-C that came before the command's own handler.

Every parser of the command is a :class:`OneLineParser`, so argparse's own refusals are one line too. Errors that
list several problems (a config, a case file, a scenario) print one line for one problem and a header with one
line per problem for several (:func:`problems_text`).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from hil.spec_file import SpecFileError
    from plc_adapters.config_issues import ConfigError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CLOSED_PIPE = 128 + int(signal.SIGPIPE)
EXIT_INTERRUPTED = 128 + int(signal.SIGINT)


class CommandError(Exception):
    """A command cannot do what it was asked; ``str()`` is the one line to print (it names the file or option and
    what was expected), ``exit_code`` is :data:`EXIT_USAGE` for bad input, :data:`EXIT_FAILURE` otherwise."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line (``PROG: MESSAGE (see PROG --help)``), exit 2; its
    sub-command parsers are of the same class (argparse's ``add_subparsers`` default)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def problems_text(problems: Sequence[str], header: str) -> str:
    """One problem as its own line; several as ``header`` and one indented line per problem."""
    if len(problems) == 1:
        return problems[0]
    return header + "\n" + "\n".join(f"  - {p}" for p in problems)


def conflicting(first: str, second: str, why: str) -> CommandError:
    """The error for two options that cannot be given together."""
    return CommandError(f"{first} and {second}: got both; expected one of them ({why})")


def _closed_pipe() -> int:
    """Standard output's reader went away: point fd 1 at /dev/null so the interpreter's final flush is silent."""
    if sys.stdout is not None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
    return EXIT_CLOSED_PIPE


def run_reporting_failures(command: Callable[[], int]) -> int:
    """Run ``command`` (returns an exit status) and turn the failures every command shares into one line and an
    exit status: :class:`CommandError`, a file that cannot be read or written (``OSError`` with a file name: 2),
    a closed standard output (141, silent). Standard output is flushed here, so a closed pipe is seen here too."""
    try:
        try:
            return command()
        finally:  # argparse's --help and exits end in SystemExit: their output is flushed here too
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:  # Ctrl-C before a command's own handler is in place (a prompt, a start-up)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CommandError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return _closed_pipe()
        if exc.filename is None:
            raise
        print(f"{exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def config_error_text(exc: ConfigError) -> str:
    """A :class:`plc_adapters.config_issues.ConfigError` as :func:`problems_text` (one issue: one line)."""
    return problems_text([str(issue) for issue in exc.issues], f"{len(exc.issues)} configuration error(s):")


def bench_file_error_text(exc: SpecFileError | ConfigError) -> str:
    """Why a bench file (a scenario, a pooling scenario: a :class:`hil.spec_file.SpecFileError` with every
    problem) or the line config it names cannot be run, as :func:`problems_text` — what ``hil run`` and
    ``hil commission`` print before exiting with 2."""
    from hil.spec_file import SpecFileError

    if isinstance(exc, SpecFileError):
        return problems_text(list(exc.errors), f"invalid {exc.what}:")
    return config_error_text(exc)
