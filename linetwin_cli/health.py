"""``linetwin health LINE.toml``: ask a running twin's ``/health`` endpoint (``[metrics]`` of the config) and say
ready / degraded / not ready and why. Exit status 0 ready, 1 degraded, 2 not ready, unreachable or disabled."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from linetwin_cli.common import load_or_exit, positive_arg


def add_health_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    health = sub.add_parser("health", help="ask a running twin for its health (ready / degraded / not ready); "
                            "exit 0 / 1 / 2")
    health.add_argument("config", help="line config (TOML) of the running twin; its [metrics] names the endpoint")
    health.add_argument("--timeout", type=positive_arg, metavar="S", default=5.0,
                        help="seconds to wait for the answer (default 5)")


def run_health(args: argparse.Namespace) -> int:
    config = load_or_exit(Path(args.config))
    settings = config.metrics
    if not settings.enabled:
        print(f"{args.config}: [metrics] enabled is not true: this twin serves no health endpoint", file=sys.stderr)
        return 2
    url = f"{settings.url}/health"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:  # noqa: S310 (http on our own host)
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503: not ready, with the same JSON body
        body = exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"line '{config.name}': not reachable at {url} ({reason})", file=sys.stderr)
        return 2
    try:
        verdict = json.loads(body)
        status = str(verdict["status"])
        reasons = [str(r) for r in verdict.get("reasons", [])]
    except (ValueError, KeyError, TypeError):
        print(f"line '{config.name}': {url} answered something that is not linetwin's health JSON", file=sys.stderr)
        return 2
    print(f"line '{config.name}': {status.replace('_', ' ')}")
    for reason in reasons:
        print(f"  - {reason}")
    return {"ready": 0, "degraded": 1}.get(status, 2)
