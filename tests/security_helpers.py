"""Test helpers for the twin's security: a users file with an operator (or any role) and logged-in clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from asyncua import Client

from twin_server.data_dir import SECURITY_DIR
from twin_server.security.passwords import hash_password
from twin_server.security.roles import Role
from twin_server.security.setup import USERS_FILE
from twin_server.security.users_file import UserRecord, UsersFile


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


OPERATOR = Credentials("operator", "operator-test-password")


def line_root() -> Path:
    """The line data dir a twin started in this test uses (tests/conftest.py sets LINETWIN_DATA_DIR per test)."""
    return Path(os.environ["LINETWIN_DATA_DIR"])


def data_dir() -> Path:
    """The security folder (users.toml, pki/, audit.sqlite) of this test's line data dir."""
    return line_root() / SECURITY_DIR


TEST_USER_SCRYPT_N = 2**10
"""scrypt cost of the users these helpers add: 16 times cheaper than a real user's (``passwords.SCRYPT_N``, ~60 ms
a login), so the suite's logins cost ~4 ms each. The cost is stored in the hash and a login verifies at the stored
cost, so the login path is the twin's own; the cost ``linetwin user add`` stores is checked in
test_security_users.py."""

_hashed: dict[tuple[str, Role, str], UserRecord] = {}
"""Users already hashed in this session: most tests add the same operator; a later test reuses the record (same
salt and hash — the tests check logins, not salts)."""


def add_user(name: str, role: Role, password: str, directory: Path | None = None) -> Credentials:
    """Add (or replace) a user in the users file of ``directory`` (default: this test's data dir)."""
    path = (directory or data_dir()) / USERS_FILE
    users = UsersFile.load(path)
    key = (name, role, password)
    cached = _hashed.get(key)
    if cached is None or name in users.users:
        record = users.add(name, role, None, replace_existing=True)
        users.users[name] = _hashed[key] = replace(record, password=hash_password(password, TEST_USER_SCRYPT_N))
    else:
        users.users[name] = cached
    users.save()
    return Credentials(name, password)


def add_operator(directory: Path | None = None) -> Credentials:
    return add_user(OPERATOR.user, Role.OPERATOR, OPERATOR.password, directory)


def client_as(url: str, credentials: Credentials | None, timeout: float = 10.0) -> Client:
    client = Client(url, timeout=timeout)
    if credentials is not None:
        client.set_user(credentials.user)
        client.set_password(credentials.password)
    return client


@asynccontextmanager
async def connected(url: str, credentials: Credentials | None = None) -> AsyncIterator[Client]:
    async with client_as(url, credentials) as client:
        yield client


@dataclass(frozen=True)
class CertificatePair:
    certificate: Path
    """DER"""
    private_key: Path
    """PEM"""
    application_uri: str

    @property
    def pem_certificate(self) -> Path:
        return self.certificate.with_suffix(".pem")


def make_certificate(directory: Path, name: str, application_uri: str | None = None) -> CertificatePair:
    """A self-signed OPC UA client application (or user) certificate with its key, written to ``directory``
    (DER and PEM certificate, PEM key)."""
    import socket

    from asyncua.crypto import cert_gen
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    uri = application_uri or f"urn:linetwin-test:{name}"
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {"organizationName": "linetwin tests"},
        [x509.UniformResourceIdentifier(uri), x509.DNSName(socket.gethostname())],
        [ExtendedKeyUsageOID.CLIENT_AUTH], days=30)
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertificatePair(directory / f"{name}.der", directory / f"{name}_key.pem", uri)
    pair.certificate.write_bytes(cert.public_bytes(Encoding.DER))
    pair.pem_certificate.write_bytes(cert.public_bytes(Encoding.PEM))
    pair.private_key.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return pair


async def secure_client(url: str, app: CertificatePair, policy: str = "Basic256Sha256",
                        mode: str = "SignAndEncrypt", credentials: Credentials | None = None,
                        user_certificate: CertificatePair | None = None) -> Client:
    """An asyncua client on a signed (and encrypted) channel with ``app`` as its application certificate,
    logged in with ``credentials``, a ``user_certificate`` (X.509 identity), or anonymously."""
    client = client_as(url, credentials)
    client.application_uri = app.application_uri
    await client.set_security_string(f"{policy},{mode},{app.certificate},{app.private_key}")
    if user_certificate is not None:
        await client.load_client_certificate(str(user_certificate.certificate))
        await client.load_private_key(str(user_certificate.private_key))
    return client
