"""Wire details of the local Stripe fake: routes, form decoding (`metadata[k]=v`,
`expand[0]=x`), error bodies, and writing or abruptly dropping a response."""

from __future__ import annotations

import itertools
import json
import re
import socket
import struct
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple

from tests.fakes.stripe_ledger import Ledger
from tests.fakes.stripe_model import Json

Action = Callable[[Ledger, str, Json, str | None], Json]


class Route(NamedTuple):
    method: str
    regex: re.Pattern[str]
    pattern: str  # the name requests are counted under
    mutating: bool
    action: Action


def _list_refunds(ledger: Ledger, _id: str, params: Json, _key: str | None) -> Json:
    pi_id = params.get("payment_intent")
    data = ledger.refunds_of(pi_id if isinstance(pi_id, str) else None)
    return {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}


def _route(method: str, pattern: str, mutating: bool, action: Action) -> Route:
    regex = re.compile("^" + pattern.replace("{id}", r"(?P<id>[A-Za-z0-9_]+)") + "$")
    return Route(method, regex, pattern, mutating, action)


ROUTES = (
    _route("POST", "/v1/payment_intents", True, lambda lg, _i, p, k: lg.create_intent(p, k)),
    _route("GET", "/v1/payment_intents/{id}", False, lambda lg, i, p, _k: lg.retrieve_intent(i, p)),
    _route("POST", "/v1/payment_intents/{id}/confirm", True, Ledger.confirm_intent),
    _route("POST", "/v1/payment_intents/{id}/capture", True, Ledger.capture_intent),
    _route("POST", "/v1/payment_intents/{id}/cancel", True, Ledger.cancel_intent),
    _route("POST", "/v1/refunds", True, lambda lg, _i, p, k: lg.create_refund(p, k)),
    _route("GET", "/v1/refunds", False, _list_refunds),
    _route("GET", "/v1/refunds/{id}", False, lambda lg, i, _p, _k: lg.refund(i)),
    _route("GET", "/v1/charges/{id}", False, lambda lg, i, _p, _k: lg.charge(i)),
)


def match_route(method: str, path: str) -> tuple[Route | None, str]:
    for route in ROUTES:
        found = route.regex.match(path)
        if route.method == method and found:
            return route, found.groupdict().get("id") or ""
    return None, ""


def decode_form(pairs: list[tuple[str, str]]) -> Json:
    """Stripe's form encoding back into nested values: `a[b]=1` → {"a": {"b": "1"}},
    `a[0]=x` or `a[]=x` → {"a": ["x"]}."""
    out: Json = {}
    for raw_key, value in pairs:
        head = raw_key.split("[", 1)[0]
        subs = re.findall(r"\[([^\]]*)\]", raw_key[len(head) :])
        node: dict[str, Any] = out
        path = [head, *subs]
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1] or str(len(node))] = value
    decoded: Json = _lists_from_indexed(out)
    return decoded


def _lists_from_indexed(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _lists_from_indexed(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def error_body(type_: str, message: str, code: str | None = None) -> Json:
    error: Json = {"type": type_, "message": message}
    if code is not None:
        error["code"] = code
    return {"error": error}


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, indent=2).encode()


_REQUEST_IDS = itertools.count(1)


def new_request_id() -> str:
    # Unique is all a request id needs; the kernel's randomness cost a tenth of each reply.
    return f"req_{next(_REQUEST_IDS):014x}"


def send(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]
) -> None:
    """Write a JSON response; a client that already gave up (timeout) is not an error."""
    try:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True


def reset(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP RST and no response (linger 0 on close)."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()
