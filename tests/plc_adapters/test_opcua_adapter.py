"""The OPC UA adapter against real asyncua PLC servers on loopback (in-process, and a process to SIGSTOP)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_session import InternalSession

from plc_adapters.asyncua_seam import init_server
from plc_adapters.errors import WriteOutcomeUnknown, WriteRefusal, WriteRefused
from plc_adapters.opcua_adapter import OpcUaAdapter
from plc_adapters.opcua_errors import PlcRefusedWrite
from plc_adapters.opcua_spec import (
    AcquisitionMode,
    DeadbandKind,
    NodeAddress,
    OpcUaConnection,
    OpcUaTagSpec,
    SecurityMode,
)
from plc_adapters.quality import Quality
from plc_adapters.sample import Sample
from plc_adapters.tag_map import Direction, Range
from tests.conftest import REPO_ROOT, wait_until
from tests.plc_adapters.opcua_plc import CONCENTRATION, SETPOINT, SPEED, TEMPERATURE, VENDOR_URI, PlcServer

PERIOD_S = 0.3
"""Publishing interval of the tests, seconds."""
DETECTION_SLACK_S = 0.5
"""Allowance over two publishing intervals for a loaded CI machine (event-loop latency), seconds."""


def _tags(temperature_unit: str = "CEL", deadband: float | None = None,
          deadband_kind: DeadbandKind = DeadbandKind.ABSOLUTE) -> list[OpcUaTagSpec]:
    return [
        OpcUaTagSpec("temperature", Direction.MEASURED, temperature_unit, Range(-10.0, 100.0),
                     NodeAddress(VENDOR_URI, "s=" + TEMPERATURE), deadband=deadband, deadband_kind=deadband_kind),
        OpcUaTagSpec("solute_concentration", Direction.MEASURED, "KMQ", Range(0.0, 500.0),
                     NodeAddress(VENDOR_URI, "s=" + CONCENTRATION)),
        OpcUaTagSpec("jacket_temperature_setpoint", Direction.COMMANDED, "CEL", Range(-20.0, 120.0),
                     NodeAddress(VENDOR_URI, "s=" + SETPOINT), write_limits=Range(0.0, 80.0), max_rate=100.0),
        OpcUaTagSpec("agitator_speed_setpoint", Direction.COMMANDED, "RPM", Range(0.0, 800.0),
                     NodeAddress(VENDOR_URI, "s=" + SPEED)),
    ]


class Recorder:
    """``on_samples`` that keeps every batch with its loop arrival time."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[Sample]]] = []

    def __call__(self, samples: list[Sample]) -> None:
        self.batches.append((asyncio.get_running_loop().time(), samples))

    def first_time(self, predicate: object, after: float) -> float | None:
        for t, batch in self.batches:
            if t >= after and any(predicate(s) for s in batch):  # type: ignore[operator]
                return t
        return None


def _adapter(port: int, recorder: Recorder, tags: list[OpcUaTagSpec] | None = None,
             mode: AcquisitionMode = AcquisitionMode.SUBSCRIBE, timeout_s: float = 1.0) -> OpcUaAdapter:
    connection = OpcUaConnection("127.0.0.1", port, publishing_interval_s=PERIOD_S, timeout_s=timeout_s, mode=mode)
    return OpcUaAdapter("crystallizer", connection, tags or _tags(), PERIOD_S, on_samples=recorder,
                        backoff_initial_s=0.05, backoff_max_s=0.3)


@pytest.fixture
async def plc() -> AsyncIterator[PlcServer]:
    server = PlcServer(extra_namespaces=["urn:other:vendor"])
    await server.start()
    yield server
    await server.stop()


async def _all_good(adapter: OpcUaAdapter) -> bool:
    return adapter.connected and all(s.quality is Quality.GOOD for s in adapter.last_samples.values())


async def _bad_within_two_intervals(adapter: OpcUaAdapter, recorder: Recorder, since: float) -> float:
    await wait_until(lambda: adapter.last_samples["temperature"].quality is Quality.BAD_COMMUNICATION_ERROR,
                     timeout_s=10.0, what="Bad_CommunicationError")
    t = recorder.first_time(lambda s: s.quality is Quality.BAD_COMMUNICATION_ERROR, since)
    assert t is not None
    assert all(s.quality is Quality.BAD_COMMUNICATION_ERROR for s in adapter.last_samples.values())
    elapsed = t - since
    assert elapsed <= 2 * PERIOD_S + DETECTION_SLACK_S, f"Bad after {elapsed:.3f} s"
    return elapsed


async def test_mirror_keeps_the_plcs_status_codes_and_source_timestamps(plc: PlcServer) -> None:
    recorder = Recorder()
    adapter = _adapter(plc.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        assert adapter.last_samples["temperature"].value == pytest.approx(20.0)
        assert adapter.last_samples["agitator_speed_setpoint"].value == 200.0
        measured_at = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
        await plc.set(TEMPERATURE, 33.5, ua.StatusCodes.UncertainSensorNotAccurate, measured_at)
        await plc.set(CONCENTRATION, 151.0, ua.StatusCodes.BadSensorFailure, measured_at + timedelta(seconds=1),
                      vtype=ua.VariantType.Double)
        await wait_until(lambda: adapter.last_samples["solute_concentration"].quality.is_bad, what="PLC's Bad")
        await wait_until(lambda: adapter.last_samples["temperature"].value == 33.5, what="Uncertain value")
        temperature = adapter.last_samples["temperature"]
        assert temperature.quality is Quality.UNCERTAIN_SENSOR_NOT_ACCURATE
        assert temperature.source_timestamp == measured_at
        concentration = adapter.last_samples["solute_concentration"]
        assert int(concentration.quality) == ua.StatusCodes.BadSensorFailure  # a code linetwin has no name for
        assert concentration.value == 151.0  # the PLC's last value beside its Bad
        assert concentration.source_timestamp == measured_at + timedelta(seconds=1)
        assert adapter.stats.mode == "subscribe" and adapter.stats.subscriptions == 1
        assert not adapter.eu_mismatches
    finally:
        await adapter.stop()


async def test_stopped_plc_is_bad_within_two_intervals_and_recovers_by_itself(plc: PlcServer) -> None:
    recorder = Recorder()
    adapter = _adapter(plc.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        measured_at = datetime.now(UTC) - timedelta(seconds=30)
        await plc.set(TEMPERATURE, 27.0, source_timestamp=measured_at)
        await wait_until(lambda: adapter.last_samples["temperature"].value == 27.0, what="value before the outage")
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        await plc.stop()
        await _bad_within_two_intervals(adapter, recorder, stopped)
        bad = adapter.last_samples["temperature"]
        assert bad.value == 27.0  # last value kept beside the Bad
        with pytest.raises(WriteRefused) as refused:
            await adapter.write("jacket_temperature_setpoint", 31.0)
        assert refused.value.reason is WriteRefusal.COMMUNICATION_ERROR
        await plc.start()
        await wait_until(lambda: _all_good(adapter), timeout_s=20.0, what="recovery")
        assert adapter.stats.reconnects >= 1
        # the recovered value is the PLC's, measured 30 s ago: it keeps that time, not the reconnect time
        recovered = adapter.last_samples["temperature"]
        assert recovered.value == 27.0 and recovered.source_timestamp == measured_at < bad.source_timestamp
    finally:
        await adapter.stop()


async def test_expired_session_is_bad_within_two_intervals_and_recovers(plc: PlcServer) -> None:
    recorder = Recorder()
    adapter = _adapter(plc.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        expired = asyncio.get_running_loop().time()
        await plc.expire_sessions()
        await _bad_within_two_intervals(adapter, recorder, expired)
        await wait_until(lambda: _all_good(adapter), timeout_s=20.0, what="recovery with a new session")
        assert adapter.stats.sessions >= 2
    finally:
        await adapter.stop()


async def test_namespace_index_change_on_plc_restart_is_followed(plc: PlcServer) -> None:
    recorder = Recorder()
    adapter = _adapter(plc.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        old_index = adapter.namespace_indices[VENDOR_URI]
        await plc.stop()
        plc.extra_namespaces += ["urn:new:library", "urn:another:library"]  # new program: vendor namespace moves
        await plc.start()
        assert plc.idx == old_index + 2
        await wait_until(lambda: adapter.namespace_indices.get(VENDOR_URI) == plc.idx, timeout_s=20.0,
                         what="the namespace resolved again")
        await plc.set(TEMPERATURE, 44.0)
        await wait_until(lambda: adapter.last_samples["temperature"].value == 44.0, what="value from the moved node")
        await adapter.write("jacket_temperature_setpoint", 35.0)
        assert plc.value(SETPOINT) == pytest.approx(35.0)
    finally:
        await adapter.stop()


async def test_guarded_writes_converted_to_the_node_data_type(plc: PlcServer) -> None:
    tags = [dataclasses.replace(t, max_rate=10.0) if t.max_rate else t for t in _tags()]  # 10 °C/s
    adapter = _adapter(plc.port, Recorder(), tags=tags)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        await adapter.write("agitator_speed_setpoint", 301.4)  # UInt16 on the PLC
        assert plc.value(SPEED) == 301

        async def jacket_written() -> bool:  # 30 → 31.25 °C is within 10 °C/s once 0.125 s have passed
            try:
                await adapter.write("jacket_temperature_setpoint", 31.25)  # Float on the PLC
            except WriteRefused as exc:
                assert exc.reason is WriteRefusal.RATE_LIMIT
                return False
            return True

        await wait_until(jacket_written, what="rate-limited write accepted")
        assert plc.value(SETPOINT) == pytest.approx(31.25)
        cases = [("nope", 1.0, WriteRefusal.UNKNOWN_TAG), ("temperature", 1.0, WriteRefusal.NOT_WRITABLE),
                 ("jacket_temperature_setpoint", float("nan"), WriteRefusal.TYPE_MISMATCH),
                 ("jacket_temperature_setpoint", 85.0, WriteRefusal.OUT_OF_RANGE),
                 ("jacket_temperature_setpoint", 79.0, WriteRefusal.RATE_LIMIT),  # 47.75 °C in < 4.7 s
                 ("agitator_speed_setpoint", -3.0, WriteRefusal.OUT_OF_RANGE)]
        for tag, value, reason in cases:
            with pytest.raises(WriteRefused) as refused:
                await adapter.write(tag, value)
            assert refused.value.reason is reason, tag
        assert plc.value(SETPOINT) == pytest.approx(31.25)
    finally:
        await adapter.stop()


async def test_write_refused_by_the_plc_keeps_the_plcs_status(plc: PlcServer) -> None:
    adapter = _adapter(plc.port, Recorder())
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        await plc.lock_writes(SPEED)
        with pytest.raises(PlcRefusedWrite) as refused:
            await adapter.write("agitator_speed_setpoint", 250.0)
        assert refused.value.status_code == ua.StatusCodes.BadUserAccessDenied
        assert refused.value.reason is WriteRefusal.DEVICE_REFUSED
        assert plc.value(SPEED) == 200
    finally:
        await adapter.stop()


async def test_engineering_unit_mismatch_is_flagged() -> None:
    plc = PlcServer(temperature_range=(0.0, 50.0))
    await plc.start()
    adapter = _adapter(plc.port, Recorder(), tags=_tags(temperature_unit="KEL"))
    await adapter.start()
    try:
        await wait_until(lambda: adapter.connected, what="connected")
        await wait_until(lambda: "temperature" in adapter.eu_mismatches, what="mismatch flag")
        text = adapter.eu_mismatches["temperature"]
        assert "EURange [0, 50] on the PLC" in text and "'KEL'" in text
        assert set(adapter.eu_mismatches) == {"temperature"}
        assert adapter.stats.eu_mismatches == 1
    finally:
        await adapter.stop()
        await plc.stop()


async def test_percent_deadband_uses_the_plcs_eurange(plc: PlcServer) -> None:
    recorder = Recorder()
    # 1 % of the PLC's EURange [-10, 100] = 1.1 °C
    adapter = _adapter(plc.port, recorder, tags=_tags(deadband=1.0, deadband_kind=DeadbandKind.PERCENT))
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good")
        await plc.set(TEMPERATURE, 20.5)  # inside the deadband: not reported
        await plc.set(CONCENTRATION, 160.0, vtype=ua.VariantType.Double)  # a marker after it
        await wait_until(lambda: adapter.last_samples["solute_concentration"].value == 160.0, what="marker")
        assert adapter.last_samples["temperature"].value == pytest.approx(20.0)
        await plc.set(TEMPERATURE, 22.0)
        await wait_until(lambda: adapter.last_samples["temperature"].value == pytest.approx(22.0), what="big change")
    finally:
        await adapter.stop()


async def test_plc_refusing_subscriptions_is_polled(plc: PlcServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncua.common.utils import ServiceError

    async def refuse(self: InternalSession, *args: object, **kwargs: object) -> None:
        raise ServiceError(ua.StatusCodes.BadTooManySubscriptions)

    monkeypatch.setattr(InternalSession, "create_subscription", refuse)
    recorder = Recorder()
    adapter = _adapter(plc.port, recorder)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), what="all tags Good by polling")
        assert adapter.stats.mode == "poll"
        await plc.set(TEMPERATURE, 25.0, ua.StatusCodes.UncertainLastUsableValue)
        await wait_until(lambda: adapter.last_samples["temperature"].value == 25.0, what="polled change")
        assert adapter.last_samples["temperature"].quality is Quality.UNCERTAIN_LAST_USABLE_VALUE
        stopped = asyncio.get_running_loop().time()
        await plc.stop()
        await wait_until(lambda: not adapter.connected, what="poll failure seen")
        assert recorder.first_time(lambda s: s.quality is Quality.BAD_COMMUNICATION_ERROR, stopped) is not None
    finally:
        await adapter.stop()


@pytest.fixture
def plc_process() -> AsyncIterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.plc_adapters.opcua_plc", "0"], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY "), f"PLC process said {line!r}"
        yield proc, int(line.split()[1])
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


async def test_hung_plc_process_is_bad_within_two_intervals_and_recovers(
        plc_process: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = plc_process
    recorder = Recorder()
    adapter = _adapter(port, recorder, timeout_s=0.6)
    await adapter.start()
    try:
        await wait_until(lambda: _all_good(adapter), timeout_s=20.0, what="all tags Good")
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        os.kill(proc.pid, signal.SIGSTOP)  # hung: TCP stays open, nothing answers
        write = asyncio.create_task(adapter.write("agitator_speed_setpoint", 250.0))
        await _bad_within_two_intervals(adapter, recorder, stopped)
        with pytest.raises((WriteRefused, WriteOutcomeUnknown)) as outcome:
            await write
        # sent before the loss was seen: unknown outcome, not a refusal; after it: refused
        assert isinstance(outcome.value, WriteOutcomeUnknown) or \
            outcome.value.reason is WriteRefusal.COMMUNICATION_ERROR
        with pytest.raises(WriteRefused) as refused:
            await adapter.write("agitator_speed_setpoint", 260.0)
        assert refused.value.reason is WriteRefusal.COMMUNICATION_ERROR
        assert not isinstance(refused.value, WriteOutcomeUnknown)
        os.kill(proc.pid, signal.SIGCONT)
        await wait_until(lambda: _all_good(adapter), timeout_s=30.0, what="recovery after SIGCONT")
        temperature = adapter.last_samples["temperature"]
        # recovered values carry the PLC's own source timestamps, not the reconnect time
        assert temperature.source_timestamp <= datetime.now(UTC)
    finally:
        await adapter.stop()


async def test_write_outcome_unknown_when_the_plc_does_not_answer(
        plc_process: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = plc_process
    recorder = Recorder()
    connection = OpcUaConnection("127.0.0.1", port, publishing_interval_s=5.0, timeout_s=0.5)
    adapter = OpcUaAdapter("crystallizer", connection, _tags(), 5.0, on_samples=recorder, backoff_initial_s=0.05,
                           backoff_max_s=0.3)
    await adapter.start()
    try:
        await wait_until(lambda: adapter.connected and adapter.last_samples["agitator_speed_setpoint"].quality
                         is Quality.GOOD, timeout_s=20.0, what="connected")
        reconciled: list[tuple[str, float, float]] = []
        adapter.on_write_reconciled = lambda tag, sent, held: reconciled.append((tag, sent, held))
        os.kill(proc.pid, signal.SIGSTOP)
        with pytest.raises(WriteOutcomeUnknown) as unknown:
            await adapter.write("agitator_speed_setpoint", 250.0)
        assert unknown.value.tag == "agitator_speed_setpoint" and unknown.value.value == 250.0
        assert adapter.stats.unknown_outcome_writes == 1
        assert dict(adapter.unconfirmed_writes) == {"agitator_speed_setpoint": 250.0}
        os.kill(proc.pid, signal.SIGCONT)
        # the same reconciliation as the Modbus adapter's (one guarded-write core): read back, handed to the audit
        await wait_until(lambda: bool(reconciled), timeout_s=30.0, what="the unknown write reconciled")
        assert reconciled[0][:2] == ("agitator_speed_setpoint", 250.0)
        assert dict(adapter.unconfirmed_writes) == {}
    finally:
        await adapter.stop()


class _Passwords:
    """The PLC's users: only 'twin' with password 'plc-secret'."""

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                 certificate: object = None) -> User | None:
        return User(role=UserRole.User) if (username, password) == ("twin", "plc-secret") else None


async def test_user_name_identity_with_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINETWIN_TEST_PLC_PASSWORD", raising=False)
    plc = PlcServer(user_manager=_Passwords())
    await plc.start()
    connection = OpcUaConnection("127.0.0.1", plc.port, publishing_interval_s=PERIOD_S, timeout_s=1.0, user="twin",
                                 password_env="LINETWIN_TEST_PLC_PASSWORD")
    adapter = OpcUaAdapter("crystallizer", connection, _tags(), PERIOD_S, backoff_initial_s=0.05, backoff_max_s=0.2)
    await adapter.start()
    try:
        await wait_until(lambda: adapter.stats.outages >= 2, what="refused while the password is not set")
        assert not adapter.connected
        assert adapter.last_samples["temperature"].quality is Quality.BAD_COMMUNICATION_ERROR
        monkeypatch.setenv("LINETWIN_TEST_PLC_PASSWORD", "wrong")
        outages = adapter.stats.outages
        await wait_until(lambda: adapter.stats.outages >= outages + 2, what="refused with a wrong password")
        assert not adapter.connected
        monkeypatch.setenv("LINETWIN_TEST_PLC_PASSWORD", "plc-secret")
        await wait_until(lambda: _all_good(adapter), timeout_s=20, what="connected with the right password")
    finally:
        await adapter.stop()
        await plc.stop()


async def test_signed_and_encrypted_channel_with_a_client_certificate(tmp_path: Path) -> None:
    import socket

    from asyncua import Server
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    host = socket.gethostname()
    server_key, server_cert = tmp_path / "plc-key.pem", tmp_path / "plc-cert.der"
    client_key, client_cert = tmp_path / "twin-key.pem", tmp_path / "twin-cert.der"
    await setup_self_signed_certificate(server_key, server_cert, "urn:linetwin:test:plc", host,
                                        [ExtendedKeyUsageOID.SERVER_AUTH], {"commonName": "test PLC"})
    await setup_self_signed_certificate(client_key, client_cert, "urn:linetwin:plc-adapter", host,
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "linetwin"})
    server = Server()
    await init_server(server)
    server.set_endpoint("opc.tcp://127.0.0.1:0/")
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    await server.load_certificate(str(server_cert))
    await server.load_private_key(str(server_key))
    idx = await server.register_namespace(VENDOR_URI)
    await server.nodes.objects.add_variable(ua.NodeId(TEMPERATURE, idx), "Temperature", 21.5, ua.VariantType.Float)
    await server.start()
    assert server.bserver is not None
    port = server.bserver.port
    try:
        connection = OpcUaConnection("127.0.0.1", port, publishing_interval_s=PERIOD_S, timeout_s=2.0,
                                     security_policy="Basic256Sha256", security_mode=SecurityMode.SIGN_AND_ENCRYPT,
                                     certificate=str(client_cert), private_key=str(client_key),
                                     server_certificate=str(server_cert))
        adapter = OpcUaAdapter("crystallizer", connection, _tags()[:1], PERIOD_S, backoff_initial_s=0.05,
                               backoff_max_s=0.3)
        await adapter.start()
        try:
            await wait_until(lambda: _all_good(adapter), timeout_s=20, what="Good over an encrypted channel")
            assert adapter.last_samples["temperature"].value == pytest.approx(21.5)
        finally:
            await adapter.stop()
        plain = OpcUaAdapter("crystallizer", OpcUaConnection("127.0.0.1", port, publishing_interval_s=PERIOD_S),
                             _tags()[:1], PERIOD_S, backoff_initial_s=0.05, backoff_max_s=0.3)
        await plain.start()
        try:  # the PLC offers no SecurityPolicy None endpoint: an unsecured client never connects
            await wait_until(lambda: plain.stats.outages >= 2, timeout_s=20, what="unsecured client refused")
            assert not plain.connected
        finally:
            await plain.stop()
    finally:
        await server.stop()
