"""What every benchmark script shares: ``--smoke`` and ``--out``, and a data dir that is never the user's home.

``--smoke`` runs the script in seconds with tiny sizes: it proves the script still runs against the code as it is
(``tests/test_benchmarks_smoke.py`` runs every script this way), not the figures. Its JSON goes to ``--out``, else
to a new temporary directory — a smoke run never writes into the repository. A full run writes to ``--out``, else
to ``benchmarks/results/<name>.json`` (git-ignored), the place the docs quote figures from.

A twin started by a benchmark keeps its users file, PKI and audit store in ``$LINETWIN_DATA_DIR``; when that is not
set, :func:`parse_args` points it to a new temporary directory, so no benchmark leaves a PKI in ``~/.local/share``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help="a run of seconds with tiny sizes (checks that the script runs, not the figures); "
                             "its JSON goes to --out or a new temporary directory")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default: benchmarks/results/<name>.json; "
                             "with --smoke a new temporary directory)")


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """``parser.parse_args()`` after :func:`add_run_options`; also keeps twin data out of the user's home."""
    args = parser.parse_args()
    if not os.environ.get("LINETWIN_DATA_DIR"):
        os.environ["LINETWIN_DATA_DIR"] = tempfile.mkdtemp(prefix="linetwin-bench-data-")
    return args


def results_path(args: argparse.Namespace, name: str) -> Path:
    """Where the JSON of benchmark ``name`` goes (see the module doc)."""
    if args.out is not None:
        return Path(args.out)
    if args.smoke:
        return Path(tempfile.mkdtemp(prefix=f"linetwin-bench-{name}-")) / f"{name}.json"
    return RESULTS_DIR / f"{name}.json"


def write_results(args: argparse.Namespace, name: str, payload: dict[str, Any], **dumps: Any) -> Path:
    """Write ``payload`` (with ``"smoke": true`` on a smoke run) as JSON; print and return the path."""
    path = results_path(args, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumps.setdefault("indent", 2)
    path.write_text(json.dumps({**payload, "smoke": bool(args.smoke)}, **dumps) + "\n")
    print(f"written {path}")
    return path
