"""A manufacturer's webhook endpoint for tests: a threaded HTTP server on 127.0.0.1 that records
every POST, checks its signature, answers as told, and goes down and comes back on one port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from models.domain.webhook_signature import SIGNATURE_HEADER, verify

HOST = "127.0.0.1"
PATH = "/hooks/orderflow"


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status: int

    @property
    def document(self) -> dict[str, Any]:
        """The body as JSON."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class WebhookReceiver:
    """Start with `WebhookReceiver.start(secret)`; `accepted` holds the POSTs answered 2xx."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.port = 0
        self.changed = threading.Condition()
        self.requests: list[Received] = []
        self._failures: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, secret: bytes) -> WebhookReceiver:
        """A running receiver on a free loopback port."""
        receiver = cls(secret)
        receiver.come_up()
        return receiver

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://{HOST}:{self.port}{PATH}"

    def come_up(self) -> None:
        """Listen (again) on the same port."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer((HOST, self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver",
                                        kwargs={"poll_interval": 0.05}, daemon=True)  # fmt: skip
        self._thread.start()

    def go_down(self) -> None:
        """Stop listening: connections are refused until `come_up`."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join(10)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` POSTs with `status` instead of 200."""
        with self.changed:
            self._failures.extend([status] * count)

    def _answer(self, received: Received) -> None:
        with self.changed:
            self.requests.append(received)
            self.changed.notify_all()

    def _next_status(self) -> int:
        with self.changed:
            return self._failures.pop(0) if self._failures else 200

    @property
    def accepted(self) -> list[Received]:
        """POSTs answered 2xx, in arrival order."""
        with self.changed:
            return [r for r in self.requests if 200 <= r.status < 300]

    def count(self) -> int:
        """How many POSTs were answered 2xx."""
        return len(self.accepted)

    def wait_for_count(self, count: int, timeout_s: float) -> bool:
        """Wait until at least `count` POSTs were accepted; bounded by `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while len([r for r in self.requests if 200 <= r.status < 300]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        """Shut down for good."""
        self.go_down()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            header = self.headers.get(SIGNATURE_HEADER, "")
            status = receiver._next_status()
            ok = verify(receiver.secret, header, body, int(time.time()))
            # Recorded before answering: once the sender has its 2xx, the count includes it.
            headers = dict(self.headers.items())
            receiver._answer(Received(self.path, headers, body, ok, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests count requests, they do not read logs

    return Handler
