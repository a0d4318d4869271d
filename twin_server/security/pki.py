"""The PKI folder: ``own/`` (the server's key and certificate), ``trusted/`` (client certificates or CAs an
admin trusts), ``rejected/`` (unknown client certificates, filed for an admin to trust).

The server's application instance certificate (RSA 2048, SHA-256, SubjectAltName = application URI + host,
valid 365 days; OPC 10000-6 §6.2.2) is created on first start with ``cryptography`` (via asyncua's cert_gen)
and renewed when it no longer matches the application URI or host. A client certificate is accepted when it
is within its validity period and is in ``trusted/`` itself or was issued by a certificate in ``trusted/``;
anything else is refused with ``BadCertificateUntrusted`` (or ``BadCertificateTimeInvalid``) and copied to
``rejected/``. ``trusted/`` is re-read when it changes, so ``linetwin pki trust`` needs no restart.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("linetwin.security.pki")

CHANNEL_SECURED: contextvars.ContextVar[bool] = contextvars.ContextVar("linetwin_channel_secured", default=True)
"""False while CreateSession runs on a SecurityPolicy None channel: there the client certificate is ignored
(OPC 10000-4 §5.6.2), so a client that sends one anyway is neither refused nor filed."""


@dataclass(frozen=True, slots=True)
class PkiPaths:
    root: Path

    @property
    def own(self) -> Path:
        return self.root / "own"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def certificate(self) -> Path:
        return self.own / "cert.der"

    @property
    def private_key(self) -> Path:
        return self.own / "key.pem"

    def create_dirs(self) -> None:
        for d in (self.own, self.trusted, self.rejected):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.own, 0o700)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else "(no CN)"


def load_certificate_file(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)


def file_name_for(cert: x509.Certificate) -> str:
    cn = re.sub(r"[^A-Za-z0-9_.-]+", "_", common_name(cert))[:40] or "cert"
    return f"{cn}_{fingerprint(cert)[:16]}.der"


async def ensure_server_certificate(paths: PkiPaths, application_uri: str, host: str) -> bool:
    """Create (or renew) the server's key and certificate; True when a new certificate was written."""
    paths.create_dirs()
    before = paths.certificate.read_bytes() if paths.certificate.is_file() else None
    await cert_gen.setup_self_signed_certificate(
        paths.private_key, paths.certificate, application_uri, host,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "linetwin"})
    os.chmod(paths.private_key, 0o600)
    created = before != paths.certificate.read_bytes()
    if created:
        log.info("server certificate created: %s (SHA-256 %s)", paths.certificate,
                 fingerprint(load_certificate_file(paths.certificate)))
    return created


def trust_certificate(paths: PkiPaths, source: Path) -> Path:
    """Copy ``source`` (DER or PEM; e.g. a file from rejected/) into trusted/ as DER; remove it from rejected/."""
    cert = load_certificate_file(source)
    paths.create_dirs()
    target = paths.trusted / file_name_for(cert)
    target.write_bytes(cert.public_bytes(Encoding.DER))
    rejected = paths.rejected / file_name_for(cert)
    if rejected.is_file() and rejected.resolve() != target.resolve():
        rejected.unlink()
    return target


class ClientCertificateValidator:
    """asyncua certificate validator (``server.set_certificate_validator``) with the rejected/ folder."""

    def __init__(self, paths: PkiPaths) -> None:
        self.paths = paths
        self._stamp: tuple[int, ...] | None = None
        self._trusted: list[x509.Certificate] = []

    def trusted(self) -> list[x509.Certificate]:
        files = sorted(p for p in self.paths.trusted.glob("*") if p.suffix.lower() in (".der", ".pem", ".crt"))
        stamp = tuple(p.stat().st_mtime_ns for p in files) + (len(files),)
        if stamp != self._stamp:
            certs = []
            for p in files:
                try:
                    certs.append(load_certificate_file(p))
                except (OSError, ValueError) as exc:
                    log.error("trusted certificate %s is not readable: %s", p, exc)
            self._trusted, self._stamp = certs, stamp
        return self._trusted

    def is_trusted(self, cert: x509.Certificate) -> bool:
        thumb = fingerprint(cert)
        for ca in self.trusted():
            if fingerprint(ca) == thumb:
                return True
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
        return False

    async def __call__(self, cert: x509.Certificate, app_description: ua.ApplicationDescription) -> None:
        if not CHANNEL_SECURED.get():
            return
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            self._reject(cert, app_description, "outside its validity period")
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
        if not self.is_trusted(cert):
            self._reject(cert, app_description, "not trusted")
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    def _reject(self, cert: x509.Certificate, app: ua.ApplicationDescription, why: str) -> None:
        self.paths.rejected.mkdir(parents=True, exist_ok=True)
        target = self.paths.rejected / file_name_for(cert)
        target.write_bytes(cert.public_bytes(Encoding.DER))
        log.warning("client certificate %s of %s rejected (%s); filed as %s — trust it with `linetwin pki trust %s`",
                    common_name(cert), app.ApplicationUri if app else "?", why, target, target)
