"""Unit tests run without the network: any attempt to connect a socket fails the test loudly."""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest


class SocketBlockedError(RuntimeError):
    """Raised instead of connecting; not an OSError, so retrying code cannot swallow it."""


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise SocketBlockedError(
        "unit tests must not open sockets; use a fake, or move the test to tests/integration"
    )


@pytest.fixture(autouse=True)
def _block_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
