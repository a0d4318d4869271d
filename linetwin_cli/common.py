"""What the ``linetwin`` command groups share: loading a config for a command, argparse types, the data dir,
waiting for Ctrl-C / ``--duration`` with a status line, and the listen check of the twin's endpoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from linetwin_cli.failures import config_error_text
from twin_server.config import ConfigError, LineConfig, load_line_config
from twin_server.data_dir import LineDataDir, line_data_dir
from twin_server.listen_check import require_listenable

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan

DEMO_CONFIG_NAME = "pilot_line.toml"


def demo_config_path() -> Path:
    """The shipped demo line (package data of :mod:`linetwin_examples`); a clear error if it is missing."""
    from linetwin_examples import ExampleNotFound, example_path

    try:
        return example_path(DEMO_CONFIG_NAME)
    except ExampleNotFound as exc:
        raise SystemExit(f"demo line config: {exc}; pass --config PATH") from exc


def load_or_exit(path: Path) -> LineConfig:
    """The line config at ``path``; on errors print them all and exit 2."""
    try:
        return load_line_config(path)
    except ConfigError as exc:
        print(config_error_text(exc), file=sys.stderr)
        raise SystemExit(2) from exc


def port_arg(text: str) -> int:
    """argparse type: a TCP port 1..65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a TCP port 1..65535")
    return port


def positive_arg(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, speed factor)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a finite number > 0")
    return value


def positive_int_arg(text: str) -> int:
    """argparse type: an integer >= 1 (worker processes, counts)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected an integer >= 1")
    return value


def endpoint_free(endpoint: str, hint: str) -> None:
    """One clear line (ListenError) if the OPC UA endpoint's port cannot be listened on."""
    parsed = urlparse(endpoint)
    require_listenable(parsed.hostname or "127.0.0.1", parsed.port or 4840, "the OPC UA endpoint", hint)


DATA_DIR_HELP = ("the line's data directory: history/, security/ (users, PKI, audit), parameter_sets/, … "
                 "(default $LINETWIN_DATA_DIR, else $XDG_DATA_HOME/linetwin/<line>; docs/data-directory.md)")


def data_dir_arg(p: argparse.ArgumentParser) -> None:
    """``--data-dir DIR``: one meaning for every command (:mod:`twin_server.data_dir`)."""
    p.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)


def line_data(args: argparse.Namespace, config: LineConfig) -> LineDataDir:
    """The data directory of ``config``'s line for this command (``--data-dir``, else the default)."""
    return line_data_dir(config, getattr(args, "data_dir", None))


async def wait_for_stop(duration_s: float | None, status: object | None = None) -> None:
    """Return after ``duration_s`` seconds, or on SIGINT/SIGTERM; print a live status line meanwhile."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    deadline = None if duration_s is None else loop.time() + duration_s
    tty = sys.stdout.isatty()
    last_print = 0.0
    while not stop.is_set():
        timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - loop.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
        if deadline is not None and loop.time() >= deadline:
            break
        if status is not None and (tty or time.monotonic() - last_print >= 5.0):
            line = status()  # type: ignore[operator]
            print(("\r" + line + "   ") if tty else line, end="" if tty else "\n", flush=True)
            last_print = time.monotonic()
    if tty and status is not None:
        print()


def built_or_exit(config: LineConfig, with_plants: bool, with_plans: bool = True) -> dict[str, ControlPlan]:
    """Build the line's models, control plans (``with_plans``) and HIL plants (``with_plants``) once
    (:func:`twin_server.line_build.build_line`); on failures print them as config errors and exit 2."""
    from twin_server.line_build import build_line

    plant_builder = None
    if with_plants:
        from hil.plant import make_plant

        plant_builder = make_plant
    built = build_line(config, plant_builder, with_plans)
    if built.issues:
        print(config_error_text(ConfigError(built.issues)), file=sys.stderr)
        raise SystemExit(2)
    return built.plans
