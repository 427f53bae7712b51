"""A local Stripe for tests: an HTTP server on 127.0.0.1 that the real `stripe` package talks to,
with PaymentIntents and refunds, Stripe's idempotency rules and seeded fault injection.
Standalone: `python -m tests.fakes.stripe_server --port 12111`."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.stripe_faults import (
    BEFORE_EFFECT,
    FaultKind,
    FaultPlan,
    Faults,
    IdempotencyStore,
    KeyCheck,
    StoredResponse,
)
from tests.fakes.stripe_ledger import Ledger
from tests.fakes.stripe_model import Effect, EffectLog, FakeClock, Json, StripeFakeError
from tests.fakes.stripe_wire import (
    Route,
    decode_form,
    encode,
    error_body,
    match_route,
    new_request_id,
    reset,
    send,
)

_FAULT_REPLIES: dict[FaultKind, tuple[int, str, str | None, str, str | None]] = {
    # kind: (status, error type, code, message, Stripe-Should-Retry)
    FaultKind.SERVER_ERROR_BEFORE: (500, "api_error", None, "An unknown error occurred", None),
    FaultKind.RATE_LIMIT_RETRY: (
        429,
        "invalid_request_error",
        "lock_timeout",
        "This object cannot be accessed right now because another "
        "API request or Stripe process is currently accessing it.",
        "true",
    ),
    FaultKind.RATE_LIMIT_NO_RETRY: (
        429,
        "invalid_request_error",
        "rate_limit",
        "Request rate limit exceeded.",
        "false",
    ),
}


class _Server(ThreadingHTTPServer):
    """Remembers open connections so `stop()` can close idle keep-alive ones."""

    daemon_threads = True

    def __init__(self, port: int, fake: StripeFake) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._conns_lock:
            self._conns.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or was reset mid-request is part of the game, not a failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are buffered and go out in one write at `send`'s flush: two writes cost
    # a system call more, and with Nagle on the body would wait for the client's delayed ACK.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        cast(_Server, self.server).fake.serve(self, "GET")

    def do_POST(self) -> None:
        cast(_Server, self.server).fake.serve(self, "POST")

    def do_DELETE(self) -> None:
        cast(_Server, self.server).fake.serve(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests count requests through `StripeFake.requests`


class StripeFake:
    """The server plus its state; see `start()`. Effects and requests are counted apart."""

    def __init__(
        self,
        api_key: str = "sk_test_fake",
        *,
        seed: int = 0,
        port: int = 0,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[FaultKind | str] = tuple(FaultKind),
        idempotency_ttl: int = 24 * 3600,
        clock_start: float | None = None,
        timeout_delay: float = 2.0,
        slow_delay: float = 0.5,
    ) -> None:
        self._api_key = api_key
        self.clock = FakeClock(clock_start)
        self._effects = EffectLog()
        self.ledger = Ledger(self.clock, self._effects)
        self.keys = IdempotencyStore(self.clock, idempotency_ttl)
        self.faults = Faults(
            FaultPlan(seed, fault_rate, fault_kinds),
            timeout_delay=timeout_delay,
            slow_delay=slow_delay,
        )
        self._requests: Counter[tuple[str, str]] = Counter()
        # Per object id (e.g. a PaymentIntent), so tests can tell which intents were asked.
        self._object_requests: dict[str, Counter[tuple[str, str]]] = {}
        self._requests_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(port, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="stripe-fake", daemon=True
        )

    @classmethod
    def start(cls, api_key: str = "sk_test_fake", seed: int = 0, **options: Any) -> StripeFake:
        """Start on a free loopback port (or `port=`); options as for the constructor."""
        fake = cls(api_key, seed=seed, **options)
        fake._thread.start()
        return fake

    def close_connections(self) -> None:
        """Close every open connection, as a server does with idle kept-alive ones."""
        self._server.drop_connections()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on a delay fault
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StripeFake:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- helpers for tests (no HTTP) ---------------------------------------------------
    def create_authorized_intent(
        self,
        amount: int,
        currency: str = "usd",
        capture_before: int | None = None,
        decline: bool = False,
    ) -> str:
        """A manual-capture PaymentIntent in `requires_capture`; `decline` fails its capture."""
        return self.ledger.authorized_intent(amount, currency, capture_before, decline)

    def set_capture_before(self, pi_id: str, capture_before: int) -> None:
        self.ledger.set_capture_before(pi_id, capture_before)

    def decline_captures(self, pi_id: str) -> None:
        """Make every later capture of this (authorized) intent a decline."""
        self.ledger.decline_captures(pi_id)

    def intent(self, pi_id: str) -> Json:
        """The PaymentIntent as a GET with `expand[]=latest_charge` would return it."""
        return self.ledger.retrieve_intent(pi_id, {"expand": ["latest_charge"]})

    @property
    def effects(self) -> list[Effect]:
        return self._effects.snapshot()

    def captures_for(self, pi_id: str) -> list[Effect]:
        return [e for e in self.effects if e.kind == "capture" and e.pi_id == pi_id]

    def effect_counts(self) -> dict[str, int]:
        return self._effects.counts()

    @property
    def requests(self) -> dict[tuple[str, str], int]:
        """Requests seen per (method, path pattern), e.g. ("POST", "/v1/refunds")."""
        with self._requests_lock:
            return dict(self._requests)

    def requests_for(self, obj_id: str) -> dict[tuple[str, str], int]:
        """Requests seen for one object (e.g. a PaymentIntent id), faulted ones included."""
        with self._requests_lock:
            return dict(self._object_requests.get(obj_id, {}))

    # --- serving ------------------------------------------------------------------------
    def serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()
        route, obj_id = match_route(method, url.path)
        self._count_request(method, route, obj_id, url.path)
        key = h.headers.get("Idempotency-Key") if method == "POST" else None
        headers = {"Stripe-Version": h.headers.get("Stripe-Version") or "2025-01-01"}
        if key is not None:
            headers["Idempotency-Key"] = key
        if not self._authorized(h.headers.get("Authorization")):
            self._reply(
                h, 401, headers, error_body("invalid_request_error", "Invalid API Key provided.")
            )
            return
        if route is None:
            self._reply(
                h,
                404,
                headers,
                error_body(
                    "invalid_request_error", f"Unrecognized request URL ({method}: {url.path})."
                ),
            )
            return
        fault = self.faults.choose(method, url.path, mutating=route.mutating)
        if fault in BEFORE_EFFECT:
            self._fail_before(h, fault, headers)
            return
        pairs = parse_qsl(raw if method == "POST" else url.query, keep_blank_values=True)
        if key is not None:
            check = self.keys.begin(key, url.path, tuple(sorted(pairs)))
            if check.outcome != "new":
                self._answer_reused_key(h, check, key, headers)
                return
        response = self._execute_under_key(route, obj_id, pairs, key, fault)
        if fault is FaultKind.RESET_AFTER:
            reset(h)
            return
        if fault is FaultKind.TIMEOUT_AFTER:
            self._stopping.wait(self.faults.timeout_delay)
        send(h, response.status, response.body, {**headers, "Request-Id": response.request_id})

    def _count_request(self, method: str, route: Route | None, obj_id: str, path: str) -> None:
        with self._requests_lock:
            self._requests[(method, route.pattern if route else path)] += 1
            if route is not None and obj_id:
                self._object_requests.setdefault(obj_id, Counter())[(method, route.pattern)] += 1

    def _authorized(self, header: str | None) -> bool:
        scheme, _, credential = (header or "").partition(" ")
        if scheme.lower() == "basic":  # curl -u sk_test_...:
            credential = base64.b64decode(credential).decode(errors="replace").split(":")[0]
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credential.encode(), self._api_key.encode())

    def _reply(
        self, h: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: Json
    ) -> None:
        send(h, status, encode(body), {**headers, "Request-Id": new_request_id()})

    def _fail_before(
        self, h: BaseHTTPRequestHandler, fault: FaultKind, headers: dict[str, str]
    ) -> None:
        if fault is FaultKind.RESET_BEFORE:
            reset(h)
            return
        status, type_, code, message, should_retry = _FAULT_REPLIES[fault]
        if should_retry is not None:
            headers = {**headers, "Stripe-Should-Retry": should_retry}
        self._reply(h, status, headers, error_body(type_, message, code))

    def _answer_reused_key(
        self, h: BaseHTTPRequestHandler, check: KeyCheck, key: str, headers: dict[str, str]
    ) -> None:
        if check.outcome == "in_flight":
            self._reply(
                h,
                409,
                headers,
                error_body(
                    "invalid_request_error",
                    "There is currently another in-progress request using "
                    f"this idempotent key: {key}. Please try again later.",
                    "idempotency_key_in_use",
                ),
            )
        elif check.outcome == "mismatch":
            self._reply(
                h,
                400,
                headers,
                error_body(
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the "
                    "same parameters they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                ),
            )
        else:
            stored = cast(StoredResponse, check.response)
            send(
                h,
                stored.status,
                stored.body,
                {
                    **headers,
                    "Request-Id": new_request_id(),
                    "Idempotent-Replayed": "true",
                    "Original-Request": stored.request_id,
                },
            )

    def _execute_under_key(
        self,
        route: Route,
        obj_id: str,
        pairs: list[tuple[str, str]],
        key: str | None,
        fault: FaultKind | None,
    ) -> StoredResponse:
        kept: StoredResponse | None = None
        try:
            if fault is FaultKind.SLOW:
                self._stopping.wait(self.faults.slow_delay)
            try:
                status, body = 200, route.action(self.ledger, obj_id, decode_form(pairs), key)
                keep = True
            except StripeFakeError as error:
                status, body, keep = error.status, error.body(), error.stored
            if fault is FaultKind.SERVER_ERROR_AFTER:
                status, keep = 500, True
                body = error_body("api_error", "An unknown error occurred")
            response = StoredResponse(status, encode(body), new_request_id())
            kept = response if keep else None
            return response
        finally:
            if key is not None:
                self.keys.finish(key, kept)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Stripe fake on 127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", default="sk_test_fake")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--fault-kinds", default=",".join(FaultKind), help="comma-separated: " + ",".join(FaultKind)
    )
    args = parser.parse_args(argv)
    kinds = [k for k in args.fault_kinds.split(",") if k]
    fake = StripeFake.start(
        args.api_key, args.seed, port=args.port, fault_rate=args.fault_rate, fault_kinds=kinds
    )
    sys.stdout.write(f"Stripe fake listening on {fake.base_url} (Ctrl-C stops)\n")
    sys.stdout.flush()
    try:
        fake._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
