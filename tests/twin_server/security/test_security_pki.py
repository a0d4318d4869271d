"""PKI and encrypted endpoints with a real asyncua client: an unknown client certificate is refused and filed
under rejected/, `linetwin pki trust` admits it without a restart; an X.509 user certificate logs in as the user
it is mapped to; a production config serves no SecurityPolicy None endpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from asyncua import Client, ua

from linetwin_cli.main import main
from tests.conftest import REPO_ROOT, wait_until
from tests.security_helpers import data_dir, line_root, make_certificate, secure_client
from tests.twin_server.line_fixture import NAMESPACE
from tests.twin_server.security.test_security_roles import SETPOINT, audit_rows, twin_line
from twin_server.config import load_line_config
from twin_server.security.pki import fingerprint, load_certificate_file

PRODUCTION = REPO_ROOT / "examples" / "production_line.toml"


async def test_untrusted_client_certificate_is_rejected_filed_and_trusted_by_cli(tmp_path: Path, capsys):
    app = make_certificate(tmp_path / "client", "scada")
    async with twin_line() as twin:
        client = await secure_client(twin.endpoint, app, "Basic256Sha256", "SignAndEncrypt")
        with pytest.raises(ua.uaerrors.BadCertificateUntrusted):
            await client.connect()
        client.disconnect_socket()
        rejected = list((data_dir() / "pki" / "rejected").glob("*.der"))
        assert len(rejected) == 1
        assert fingerprint(load_certificate_file(rejected[0])) == fingerprint(load_certificate_file(app.certificate))
        assert not list((data_dir() / "pki" / "trusted").glob("*"))

        assert main(["pki", "trust", str(rejected[0]), "--data-dir", str(line_root())]) == 0
        assert not rejected[0].exists()
        capsys.readouterr()
        assert main(["pki", "show", "--data-dir", str(line_root())]) == 0
        shown = capsys.readouterr().out
        assert "trusted: 1" in shown and "rejected: 0" in shown and "own: 1" in shown

        client = await secure_client(twin.endpoint, app, "Aes256Sha256RsaPss", "SignAndEncrypt")
        async with client:
            idx = await client.get_namespace_index(NAMESPACE)
            level = client.get_node(ua.NodeId("pilot_line.feed_tank.level", idx))
            await wait_until(lambda: _good(level), what="level Good over SignAndEncrypt")
    refused = [r for r in audit_rows("login") if r["status"] == "BadCertificateUntrusted"]
    assert len(refused) == 1 and app.application_uri in refused[0]["client"]


async def test_user_certificate_logs_in_as_its_user(tmp_path: Path):
    app = make_certificate(tmp_path / "client", "scada")
    erin = make_certificate(tmp_path / "users", "erin")
    stranger = make_certificate(tmp_path / "users", "stranger")
    d = str(line_root())
    assert main(["pki", "trust", str(app.pem_certificate), "--data-dir", d]) == 0
    assert main(["user", "add", "erin", "--role", "engineer", "--no-password", "--data-dir", d]) == 0
    assert main(["user", "map-cert", "erin", str(erin.certificate), "--data-dir", d]) == 0
    async with twin_line() as twin:
        client = await secure_client(twin.endpoint, app, "Basic256Sha256", "Sign", user_certificate=erin)
        async with client:
            idx = await client.get_namespace_index(NAMESPACE)
            setpoint = client.get_node(ua.NodeId(SETPOINT, idx))
            await wait_until(lambda: _good(setpoint), what="setpoint read back")
            value = await setpoint.read_value()
            await setpoint.write_value(ua.DataValue(ua.Variant(value + 0.5, ua.VariantType.Double)))
        client = await secure_client(twin.endpoint, app, "Basic256Sha256", "SignAndEncrypt",
                                     user_certificate=stranger)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.connect()
        client.disconnect_socket()
    logins = audit_rows("login")
    assert (logins[0]["user"], logins[0]["role"], logins[0]["outcome"]) == ("erin", "engineer", "accepted")
    assert logins[-1]["outcome"] == "refused" and "not mapped" in logins[-1]["reason"]
    writes = [r for r in audit_rows("write") if r["node"] == SETPOINT]
    assert writes[0]["user"] == "erin" and writes[0]["outcome"] == "accepted"


async def test_production_config_serves_only_encrypted_endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINETWIN_INFLUX_TOKEN", "test-token")  # its InfluxDB token comes from the environment
    production = load_line_config(PRODUCTION)
    assert not production.security.allow_none and production.security.anonymous == "off"
    assert all(p.endswith("SignAndEncrypt") for p in production.security.policies)
    async with twin_line(**{f.name: getattr(production.security, f.name)
                            for f in dataclasses.fields(production.security) if f.name != "data_dir"}) as twin:
        app = make_certificate(tmp_path / "client", "scada")
        probe = await secure_client(twin.endpoint, app, "Basic256Sha256", "SignAndEncrypt")
        endpoints = await probe.connect_and_get_server_endpoints()
        modes = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in endpoints}
        assert modes == {("Basic256Sha256", "SignAndEncrypt"), ("Aes256_Sha256_RsaPss", "SignAndEncrypt")}
        tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
        assert ua.UserTokenType.Anonymous not in tokens
        with pytest.raises((ua.UaError, OSError, TimeoutError)):
            async with Client(twin.endpoint, timeout=5):
                pass


async def _good(node) -> bool:
    return (await node.read_data_value(raise_on_bad_status=False)).StatusCode.is_good()
