"""One clear line when a server of the CLI cannot listen (port in use, no permission, unknown host).

:func:`require_listenable` binds a probe socket to host:port the way asyncio's ``create_server`` does
(``SO_REUSEADDR``) before the OPC UA server starts, so a port in use is reported as one line naming the port and
what to do, rather than asyncua's logged traceback and the CLI's. :func:`listen_error_line` turns the ``OSError`` a
server raised on start (e.g. a virtual PLC's bind failure) into the same kind of line.
"""

from __future__ import annotations

import errno
import socket

LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})


class ListenError(Exception):
    """A server cannot listen; ``str()`` is the one line to print."""


def _advice(err: int | None, port: int, hint: str) -> str:
    if err == errno.EADDRINUSE:
        return (f"address already in use; stop the process listening on it (see `ss -ltnp 'sport = :{port}'`) "
                f"or {hint}")
    if err == errno.EACCES:
        return f"permission denied (ports below 1024 need privileges); {hint}"
    return f"address not available on this machine; use a local address or {hint}"


def require_listenable(host: str, port: int, what: str, hint: str) -> None:
    """Raise :class:`ListenError` when nothing could listen on ``host``:``port`` now.

    ``what`` names the server (``"the OPC UA endpoint"``), ``hint`` says what to do instead
    (``"choose another port with --port"``).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ListenError(f"linetwin: cannot listen on {host}:{port} for {what}: host name not resolvable "
                          f"({exc.strerror or exc}); use an IP address or a resolvable host name") from exc
    family, _, _, _, sockaddr = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(sockaddr)
    except OSError as exc:
        raise ListenError(f"linetwin: cannot listen on {host}:{port} for {what}: "
                          f"{_advice(exc.errno, port, hint)}") from exc


def listen_error_line(exc: OSError, hint: str) -> str | None:
    """The one line for a start failure ``exc`` raised by a server that could not listen; None for other errors."""
    if exc.errno not in LISTEN_ERRNOS:
        return None
    text = " ".join((exc.strerror or str(exc)).split())
    what_to_do = "stop the process listening on that port or " if exc.errno == errno.EADDRINUSE else ""
    return f"linetwin: {text}; {what_to_do}{hint}"
