"""Property test (issue 7): the pilot line mutated many ways (wrong types, huge numbers, NaN, empty strings,
unicode, deleted keys and tables). `linetwin check` never raises: it exits 0 or 2, and every error line reads
`FILE: KEY: got …; expected …`, shortened. Whatever it accepts builds as `serve` and `hil serve` build it: the
address space on an asyncua server (not started: no socket), the HIL plants and virtual PLCs (not started).

A mutation changes one key, so most units of a mutated line are the pilot line's own: `check` builds each unit's
model, plant and control check from the unit's kind, name, tag names and ``[model]`` / ``[plant]`` / ``[control]``
tables alone (twin_server/line_build.py: ``_build_unit``, deterministic), so within this test a unit whose tables
are the same as an already-built one's takes that build's issues (``same_unit_builds_once``) rather than compiling
its casadi models again (~0.1 CPU s each, ~440 unit builds for 160 mutations: half the test's CPU). Every mutated
unit is still built and checked afresh. Likewise the HIL bench's plants (``bench_issues`` and ``build_bench``, not
started) are built once per kind, parameters and seed."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua import Server

from linetwin_cli import bench_launcher
from linetwin_cli.bench_launcher import bench_issues, build_bench
from linetwin_cli.main import main
from plc_adapters.asyncua_seam import init_server
from tests.twin_server.test_config_validation import config_issue_lines
from twin_server import line_build
from twin_server.address_space import build_address_space
from twin_server.config import load_line_config

PILOT = Path(__file__).resolve().parents[2] / "examples" / "pilot_line.toml"
LINE_RE = re.compile(r"^  - (?P<file>[^:]+): (?P<key>\S+): got .+; expected .+$")
N_MUTATIONS = 160
SEED = 20261130

REPLACEMENTS: tuple[object, ...] = (
    "text", "", "ünïcødé ✓ 温度", "x" * 50_000, "pilot_line\n", True, 0, -1, 1, 10**30, 10**400, -(10**400),
    1e308, -1e308, math.nan, math.inf, -math.inf, -0.0, 1e-320, [], [1, 2], [0.0, math.nan], ["a", "b"], {},
    {"a": 1},
)


def _paths(node: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(data: dict) -> str:
    """A minimal TOML writer (enough for a line config): every table as an inline table under its parent key."""
    return "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items()) + "\n"


def mutations(base: dict) -> Iterator[tuple[str, dict]]:
    rng = random.Random(SEED)
    paths = list(_paths(base))
    for i in range(N_MUTATIONS):
        data = copy.deepcopy(base)
        path = rng.choice(paths)
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if i % 5 == 0:
            del parent[path[-1]]
            yield f"delete {'.'.join(path)}", data
        else:
            value = rng.choice(REPLACEMENTS)
            parent[path[-1]] = copy.deepcopy(value)
            yield f"{'.'.join(path)} = {repr(value)[:40]}", data


@pytest.fixture
def same_unit_builds_once(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """``line_build._build_unit`` memoised on everything it reads of a unit, and the bench's ``make_plant`` on its
    arguments (see the module docstring); the unit cache, keyed by that content's ``repr`` (which tells 1, 1.0, True,
    -0.0 and nan apart)."""
    build = line_build._build_unit  # noqa: SLF001 - the per-unit build that `check` runs for every unit
    built: dict[str, object] = {}

    def build_once(unit, plant_builder, with_plans):  # type: ignore[no-untyped-def]
        key = repr((unit.name, unit.kind, dict(unit.model), dict(unit.plant), dict(unit.control),
                    tuple(t.name for t in unit.tags), plant_builder, with_plans))
        if key not in built:
            built[key] = build(unit, plant_builder, with_plans)
        plan, found = built[key]  # type: ignore[misc]
        return plan, list(found)

    monkeypatch.setattr(line_build, "_build_unit", build_once)
    make_plant = bench_launcher.make_plant
    plants: dict[str, object] = {}

    def plant_once(kind: str, parameters: dict, seed: int | None = None) -> object:
        key = repr((kind, parameters, seed))
        if key not in plants:
            plants[key] = make_plant(kind, parameters, seed=seed)
        return plants[key]

    monkeypatch.setattr(bench_launcher, "make_plant", plant_once)
    return built


@pytest.mark.slow
async def test_check_never_tracebacks_and_what_it_accepts_builds(tmp_path, capsys, same_unit_builds_once):
    base = tomllib.loads(PILOT.read_text())
    server = Server()
    await init_server(server)
    accepted = refused = 0
    for i, (what, data) in enumerate(mutations(base)):
        path = tmp_path / f"mutated_{i}.toml"
        path.write_text(to_toml(data))
        assert tomllib.loads(path.read_text()) == data or "nan" in path.read_text(), what  # the writer round-trips
        try:
            rc = main(["check", str(path)])
        except BaseException as exc:  # noqa: BLE001 - the property: nothing escapes `check`
            raise AssertionError(f"check raised {type(exc).__name__} for mutation {what!r}: {exc}") from exc
        out = capsys.readouterr()
        assert rc in (0, 2), what
        if rc == 2:
            refused += 1
            lines = config_issue_lines(out.err)
            assert lines, (what, out.err[:500])
            for ln in lines:
                assert LINE_RE.match(ln), (what, ln[:300])
                assert len(ln) < 1000, (what, ln[:300])
            continue
        accepted += 1
        config = load_line_config(path)
        # the address space, in a namespace of its own on the one (unstarted) server
        config = dataclasses.replace(config, server=dataclasses.replace(
            config.server, namespace=f"{config.server.namespace}/m{i}"))
        space = await build_address_space(server, config)
        assert len(space.tag_nodes) == sum(len(u.tags) for u in config.units), what
        # the HIL bench: plants and virtual PLCs, built (not started) as `hil serve` builds them
        issues = bench_issues(config)
        if not issues:
            bench = build_bench(config)
            assert set(bench.units) == {u.name for u in config.units}, what
        else:
            for issue in issues:
                assert LINE_RE.match(f"  - {issue}"), (what, str(issue)[:300])
    print(f"{N_MUTATIONS} mutations: {accepted} accepted and built, {refused} refused, "
          f"{len(same_unit_builds_once)} distinct units built")
    assert accepted >= 10 and refused >= 50, (accepted, refused)
