"""Compiled casadi NLP solvers, cached on disk by problem hash, with the interpreter as fallback.

:func:`compiled_nlpsol` builds an ``nlpsol`` as usual, writes the C code of the functions it evaluates (objective,
constraints, their derivatives: ``Function.generate_dependencies``), compiles it with the C compiler (``$CC`` or
``gcc``, ``-O1 -fPIC -shared``) into ``<cache_dir>/<hash>.so`` and loads the solver from that library. The hash
covers the NLP expressions (serialised casadi function), the solver plugin and its options, the casadi version
and the compiler command, so a changed model, horizon or option compiles anew while a second build of the same
problem (the next batch, a restarted twin) loads the library in milliseconds. A missing or failing compiler, or a
library that does not load, leaves the interpreted solver in place and says why (:class:`CodegenOutcome`).

The cache directory defaults to ``$XDG_CACHE_HOME/linetwin/nmpc`` (``~/.cache/linetwin/nmpc``), never the source
tree; a line passes its data directory, tests a temporary one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import casadi as ca

__all__ = ["CodegenOutcome", "compiled_nlpsol", "default_cache_dir"]

_LOG = logging.getLogger(__name__)
CFLAGS = ("-O1", "-fPIC", "-shared")
"""-O1: most of -O2's speed on generated straight-line code at a fraction of the compile time."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/linetwin/nmpc`` (``~/.cache/linetwin/nmpc`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "linetwin" / "nmpc"


@dataclass(frozen=True)
class CodegenOutcome:
    """How a solver was built: ``mode`` is ``"compiled"`` (library built now), ``"cached"`` (library loaded from
    the cache) or ``"interpreted"`` (no code generation, or it failed: ``reason`` says why); ``library`` is the
    shared library used, ``build_s`` the wall time of generating and compiling (s, 0 when cached)."""

    mode: str
    library: Path | None = None
    reason: str = ""
    build_s: float = 0.0


def _problem_hash(nlp: dict, plugin: str, options: dict, compiler: list[str]) -> str:
    oracle = ca.Function("nlp", [nlp["x"], nlp["p"]], [nlp["f"], nlp["g"]])
    digest = hashlib.sha256(oracle.serialize().encode())
    digest.update(json.dumps({"plugin": plugin, "options": options, "casadi": ca.__version__,
                              "compiler": compiler}, sort_keys=True, default=repr).encode())
    return digest.hexdigest()[:32]


def _compiler() -> list[str] | None:
    """The C compiler command (``$CC`` may carry flags), or None when it is not on the PATH."""
    command = (os.environ.get("CC") or "gcc").split()
    return command if command and shutil.which(command[0]) else None


def compiled_nlpsol(name: str, plugin: str, nlp: dict, options: dict,
                    cache_dir: str | Path | None = None) -> tuple[ca.Function, CodegenOutcome]:
    """``ca.nlpsol(name, plugin, nlp, options)`` evaluating compiled C (see the module docstring).

    ``options`` must not hold Functions (e.g. ``hess_lag``): they would not be part of the hash.
    """
    import time

    interpreted = ca.nlpsol(name, plugin, nlp, options)
    compiler = _compiler()
    if compiler is None:
        reason = f"no C compiler: {(os.environ.get('CC') or 'gcc')!r} not found"
        _LOG.warning("NMPC solver %s runs interpreted: %s", name, reason)
        return interpreted, CodegenOutcome("interpreted", reason=reason)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _problem_hash(nlp, plugin, options, compiler)
    library = directory / f"{name}_{key}.so"
    started = time.perf_counter()
    mode = "cached"
    try:
        if not library.is_file():
            mode = "compiled"
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=directory) as scratch:
                source = Path(scratch) / f"{name}.c"
                # generate_dependencies writes into the working directory: give it a path of its own
                cwd = os.getcwd()
                try:
                    os.chdir(scratch)
                    interpreted.generate_dependencies(source.name)
                finally:
                    os.chdir(cwd)
                built = Path(scratch) / f"{name}.so"
                run = subprocess.run([*compiler, *CFLAGS, str(source), "-o", str(built), "-lm"],
                                     capture_output=True, text=True, timeout=600)
                if run.returncode != 0:
                    raise RuntimeError(f"{' '.join(compiler)} failed: {run.stderr.strip()[-300:]}")
                os.replace(built, library)  # atomic: a concurrent build never loads half a library
        solver = ca.nlpsol(name, plugin, str(library), options)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _LOG.warning("NMPC solver %s runs interpreted: code generation failed: %s", name, exc)
        return interpreted, CodegenOutcome("interpreted", reason=f"code generation failed: {exc}")
    build_s = time.perf_counter() - started if mode == "compiled" else 0.0
    return solver, CodegenOutcome(mode, library=library, build_s=build_s)
