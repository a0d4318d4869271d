"""Every ``linetwin …`` command quoted in the docs' code blocks (README, docs/, docs/plant/) and in deploy/ names an
existing command and options: checked through the CLI's own argparse parsers, never by running the action. A fully
concrete command (no placeholder such as ``NAME``, ``[--to T]`` or ``a|b``) must parse as a whole."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from linetwin_cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console", "text"}
PLACEHOLDER = re.compile(r"[\[\]|…<>]|\.\.\.|^[A-Z][A-Z0-9_]*$|^[A-Z][A-Z0-9_]*\.[a-z]+$")


def _markdown_commands(path: Path) -> Iterator[tuple[str, str]]:
    language: str | None = None
    pending = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)", line)
        if fence:
            language = None if language is not None else fence.group(1).lower()
            continue
        if language not in SHELL_BLOCKS:
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        match = re.match(r"^(?:\$ )?(?:sudo (?:-u \S+ )?|(?:podman|docker) exec (?:-\S+ )*\S+ )?(?:\S*/bin/)?"
                         r"linetwin (.*)$", text)
        if match and not match.group(1).split()[0].endswith(":"):
            yield f"{path.relative_to(REPO)}:{number}", match.group(1)


def _deploy_commands(path: Path) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("#"):
            match = re.search(r"(?:^|[\s`])(?:\S*/)?linetwin ((?:check|serve|health|user|pki|audit) [^`;]*)", line)
        else:
            match = re.search(r"(?:^Exec\w*=|CMD )(?:\S*/)?linetwin ([^;]*)", line.strip())
        if match:
            yield f"{path.relative_to(REPO)}:{number}", match.group(1)
        if line.startswith("CMD [") and '"serve"' in line:  # the Containerfile's exec-form default command
            yield f"{path.relative_to(REPO)}:{number}", " ".join(shlex.quote(a) for a in eval(line[4:]))  # noqa: S307


def quoted_commands() -> list[tuple[str, str]]:
    docs = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    found = [c for path in docs for c in _markdown_commands(path)]
    found += [c for path in sorted((REPO / "deploy").iterdir()) for c in _deploy_commands(path)]
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def _own_parser(name: str) -> argparse.ArgumentParser | None:
    """simulate and surrogate parse their own arguments (their modules import the numerics only when run)."""
    if name == "simulate":
        from linetwin_cli.simulate import simulate_parser

        return simulate_parser()
    if name == "surrogate":
        from linetwin_cli.surrogate import surrogate_parser

        return surrogate_parser()
    return None


def check_command(text: str) -> str | None:
    """Why ``linetwin <text>`` is not a valid command line, or None."""
    tokens = [t for t in shlex.split(text.split(" #", 1)[0]) if t not in ("-v", "--verbose")]
    if tokens in (["--version"], ["--help"]):
        return None
    if not tokens:
        return "no command"
    own = _own_parser(tokens[0])
    root = own if own is not None else build_parser()
    args = tokens[1:] if own is not None else tokens
    parser, path, rest = root, ["linetwin"] + tokens[:1] * (own is not None), list(args)
    while (choices := _subparsers(parser)) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in choices:
            return f"'{' '.join(path)} {name}': no such command (expected one of {sorted(choices)})"
        path.append(name)
        parser = choices[name]
    if _subparsers(parser):
        return f"'{' '.join(path)}': a sub-command is needed"
    known = _options(parser) | {"-v", "--verbose"}
    for token in rest:
        option = token.strip("[]").split("=", 1)[0]
        if option.startswith("--") and option not in known:
            return f"'{' '.join(path)}': no option {option} (has {sorted(known)})"
    if any(PLACEHOLDER.search(t) for t in rest):
        return None
    try:
        root.parse_args(args)
    except SystemExit as exc:
        return None if exc.code == 0 else f"'{' '.join(path)}' does not parse: {text}"
    return None


COMMANDS = quoted_commands()


def test_the_docs_quote_commands():
    where = {w.split(":")[0] for w, _ in COMMANDS}
    assert len(COMMANDS) >= 30, COMMANDS
    assert {"docs/plant/service.md", "docs/security.md", "deploy/linetwin-serve@.service"} <= where, where


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_quoted_command_exists(where: str, command: str, capsys: pytest.CaptureFixture[str]):
    problem = check_command(command)
    assert problem is None, f"{where}: linetwin {command}\n{problem}\n{capsys.readouterr().err}"


@pytest.mark.parametrize("bad", ["serve examples/pilot_line.toml --prot 4841", "helth x.toml", "pki trusts CERT",
                                 "check", "surrogate train x.toml --sample 5"])
def test_the_check_catches_a_wrong_command(bad: str):
    assert check_command(bad) is not None
