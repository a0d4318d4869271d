"""Test helpers for the twin's security: a users file with an operator (or any role) and logged-in clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client

from twin_server.security.roles import Role
from twin_server.security.setup import USERS_FILE
from twin_server.security.users_file import UsersFile


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


OPERATOR = Credentials("operator", "operator-test-password")


def data_dir() -> Path:
    """The data dir a twin started in this test uses (tests/conftest.py sets LINETWIN_DATA_DIR per test)."""
    return Path(os.environ["LINETWIN_DATA_DIR"])


def add_user(name: str, role: Role, password: str, directory: Path | None = None) -> Credentials:
    """Add (or replace) a user in the users file of ``directory`` (default: this test's data dir)."""
    path = (directory or data_dir()) / USERS_FILE
    users = UsersFile.load(path)
    users.add(name, role, password, replace_existing=True)
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
