"""``linetwin pki show | trust | create``: the server certificate and trusted / rejected client certificates of a
line's PKI folder. Trust and creation are audited."""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from linetwin_cli.failures import CommandError
from linetwin_cli.security import audit_admin, data_dir_options
from twin_server.config import LineConfig
from twin_server.security.users_file import UsersFileError


def add_pki_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``pki`` command group."""
    pki = sub.add_parser("pki", help="the server certificate and trusted / rejected client certificates")
    ps = pki.add_subparsers(dest="pki_command", required=True)
    data_dir_options(ps.add_parser("show", help="own certificate, trusted and rejected certificates"))
    tr = ps.add_parser("trust", help="trust a client certificate (e.g. a file from rejected/)")
    tr.add_argument("certificate", help="client certificate to trust (e.g. a file under pki/rejected/)")
    data_dir_options(tr)
    cr = ps.add_parser("create", help="create the server key and certificate (done on first start anyway)")
    cr.add_argument("--force", action="store_true", help="replace an existing certificate")
    data_dir_options(cr)


def read_certificate(path: Path) -> x509.Certificate:
    """The X.509 certificate (DER or PEM) in ``path``; a missing, unreadable or non-certificate file is a
    :class:`~linetwin_cli.failures.CommandError` naming it."""
    from twin_server.security.pki import load_certificate_file

    expected = "expected an X.509 certificate file (DER or PEM)"
    try:
        return load_certificate_file(path)
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}; {expected}") from None
    except ValueError:
        raise CommandError(f"{path}: got {path.stat().st_size} bytes that are no certificate; {expected}") from None


def run_pki(args: argparse.Namespace, data_dir: Path, config: LineConfig | None) -> int:
    """Run a ``pki`` command on the PKI folder of ``data_dir`` (``create`` needs the line config); 0 on success."""
    # asyncua (under the PKI module) only when a pki command runs: building the command line needs none of it
    from twin_server.security.pki import (
        PkiPaths,
        common_name,
        ensure_server_certificate,
        fingerprint,
        load_certificate_file,
        trust_certificate,
    )
    from twin_server.security.setup import PKI_DIR

    paths = PkiPaths(data_dir / PKI_DIR)
    if args.pki_command == "show":
        print(f"PKI folder {paths.root}")
        for title, folder in (("own", paths.own), ("trusted", paths.trusted), ("rejected", paths.rejected)):
            certs = []
            for f in sorted(folder.glob("*")) if folder.is_dir() else []:
                if f.suffix.lower() not in (".der", ".pem", ".crt"):
                    continue
                try:
                    certs.append((f, load_certificate_file(f)))
                except ValueError:
                    continue  # the private key (own/key.pem)
            print(f"{title}: {len(certs)}")
            for f, cert in certs:
                print(f"  {f.name}: CN={common_name(cert)} valid until {cert.not_valid_after_utc:%Y-%m-%d} "
                      f"SHA-256 {fingerprint(cert)}")
        return 0
    if args.pki_command == "trust":
        read_certificate(Path(args.certificate))  # a missing or non-certificate file: one line, nothing changed
        target = trust_certificate(paths, Path(args.certificate))
        audit_admin(data_dir, "pki_trust", str(target), fingerprint(load_certificate_file(target)))
        print(f"trusted: {target}")
        return 0
    if config is None:
        raise UsersFileError("--data-dir: pki create: got no line config; expected --config LINE.toml too (the "
                             "certificate names the line's application URI and host)")
    if args.force:
        paths.certificate.unlink(missing_ok=True)
    import asyncio

    from twin_server.config import ServerConfig

    server: ServerConfig = config.server
    created = asyncio.run(ensure_server_certificate(paths, f"urn:linetwin:{config.name}", server.host))
    cert = load_certificate_file(paths.certificate)
    if created:
        audit_admin(data_dir, "pki_create", str(paths.certificate), fingerprint(cert))
    print(f"{'created' if created else 'kept'} {paths.certificate}: CN={common_name(cert)} SHA-256 {fingerprint(cert)}")
    return 0
