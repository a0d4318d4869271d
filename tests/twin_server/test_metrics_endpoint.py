"""The metrics / health endpoint scraped during a live run (virtual PLCs + twin over loopback): scan and mirror
counters grow, the operator's session and a refused write show, a stopped PLC turns health degraded (also through
``linetwin health``), and the endpoint answers only GET /metrics and /health."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from asyncua import ua
from prometheus_client.parser import text_string_to_metric_families

from linetwin_cli.main import main as linetwin
from tests.conftest import free_tcp_port, wait_until
from tests.security_helpers import OPERATOR, client_as
from tests.twin_server.line_fixture import NAMESPACE, PILOT, live_pilot_line
from twin_server.metrics.settings import MetricsSettings


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted({"line": "pilot_line", **labels}.items())))
    assert key in samples, f"{name}{labels} not scraped; have {sorted(k[0] for k in samples)}"
    return samples[key]


async def health(port: int) -> tuple[int, dict[str, object]]:
    status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")
    return status, json.loads(body)


async def test_metrics_change_during_a_live_run_and_a_stopped_plc_turns_health_degraded(tmp_path: Path):
    port = free_tcp_port()
    config_file = tmp_path / "pilot_line.toml"
    config_file.write_text(PILOT.read_text(encoding="utf-8").replace(
        '\n[units.feed_tank]', f'\n[metrics]\nenabled = true\nport = {port}\n\n[units.feed_tank]', 1),
        encoding="utf-8")
    async with live_pilot_line(metrics=MetricsSettings(enabled=True, port=port)) as line:
        runtime = line.twin.runtime
        assert runtime is not None
        await wait_until(lambda: all(h.connected for h in runtime.health.values()), 30, what="every PLC link up")
        first = await scrape(port)
        assert value(first, "linetwin_plc_link_up", unit="feed_tank") == 1.0
        assert value(first, "linetwin_health", state="ready") == 1.0
        scans = value(first, "linetwin_plc_scans_total", unit="feed_tank")
        mirrored = value(first, "linetwin_samples_mirrored_total", unit="crystallizer")
        await wait_until(lambda: runtime.adapters["feed_tank"].stats.scans > scans + 3, 30, what="more scans")
        second = await scrape(port)
        assert value(second, "linetwin_plc_scans_total", unit="feed_tank") > scans
        assert value(second, "linetwin_samples_mirrored_total", unit="crystallizer") > mirrored
        assert value(second, "linetwin_historian_lost_samples_total") == 0.0
        assert value(second, "linetwin_plc_scan_duration_seconds", unit="feed_tank") > 0.0
        assert ("linetwin_nmpc_solves_total", (("line", "pilot_line"), ("unit", "crystallizer"))) in second
        status, verdict = await health(port)
        assert (status, verdict) == (200, {"status": "ready", "reasons": []})
        assert await asyncio.to_thread(linetwin, ["health", str(config_file)]) == 0

        async with client_as(line.url, OPERATOR, timeout=30) as client:
            ns = await client.get_namespace_index(NAMESPACE)
            setpoint = client.get_node(ua.NodeId("pilot_line.feed_tank.inlet_flow_setpoint", ns))
            with pytest.raises(ua.UaStatusCodeError):
                await setpoint.write_value(ua.DataValue(ua.Variant(999.0, ua.VariantType.Double)))
            during = await scrape(port)
            assert value(during, "linetwin_opcua_sessions", role="operator") == 1.0
            refused = {k: v for k, v in during.items() if k[0] == "linetwin_write_refusals_total"}
            assert sum(refused.values()) == 1.0, refused

        await line.bench.plc("feed_tank").stop()
        await wait_until(lambda: not runtime.health["feed_tank"].connected, 60, what="feed_tank link down")
        status, verdict = await health(port)
        assert status == 200 and verdict["status"] == "degraded"
        assert any("feed_tank: PLC link down" in str(r) for r in verdict["reasons"]), verdict  # type: ignore[attr-defined]
        down = await scrape(port)
        assert value(down, "linetwin_plc_link_up", unit="feed_tank") == 0.0
        assert value(down, "linetwin_health", state="degraded") == 1.0
        assert await asyncio.to_thread(linetwin, ["health", str(config_file)]) == 1

        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/other"))[0] == 404
    assert await asyncio.to_thread(linetwin, ["health", str(config_file)]) == 2, "stopped: unreachable"


def test_health_refuses_a_config_without_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert linetwin(["health", str(PILOT)]) == 2
    assert "[metrics] enabled is not true" in capsys.readouterr().err


def test_bad_metrics_table_names_each_key():
    from plc_adapters.config_issues import ConfigIssue
    from twin_server.config import ConfigError, parse_line_config

    raw = {"line": {"name": "l"}, "units": {}, "metrics": {"enabled": "yes", "port": 0, "hots": "x"}}
    with pytest.raises(ConfigError) as info:
        parse_line_config(raw)
    keys = {issue.key for issue in info.value.issues if isinstance(issue, ConfigIssue)}
    assert {"metrics.enabled", "metrics.port", "metrics.hots"} <= keys


def test_refused_writes_are_counted_one_by_one_even_when_the_audit_trail_summarises_them():
    from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail
    from twin_server.metrics.collector import RefusalCounter

    trail = AuditTrail()
    counter = RefusalCounter()
    trail.counters.append(counter)
    recorded: list[AuditEntry] = []
    trail.sinks.append(recorded.append)
    for _ in range(30):
        trail.record(AuditEntry("write", "op1", "pilot_line.feed_tank.inlet_flow_setpoint", AuditOutcome.REFUSED,
                                status="BadOutOfRange", client="opc.tcp 10.0.0.9:50000"))
    trail.record(AuditEntry("write", "op1", "pilot_line.feed_tank.inlet_flow_setpoint", AuditOutcome.ACCEPTED))
    assert counter.by_status == {"BadOutOfRange": 30}
    assert len(recorded) < 31, "the audit trail summarised the refusals beyond its rate"
