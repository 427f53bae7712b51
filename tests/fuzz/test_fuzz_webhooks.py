"""Fuzzing the Stripe webhook app in process (httpx ASGI transport): 2xx only for a correctly
signed event, else 4xx, never 5xx, in bounded time; a refused request enqueues nothing, and an
accepted one enqueues an envelope our ingress accepts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from hypothesis import event, given
from hypothesis import strategies as st

from tasks.messages.catalogue import decode
from tasks.messages.signing import authenticate
from tests.fakes import stripe_events as se
from tests.fuzz.budget import CALL_LIMIT_S, fuzz
from tests.fuzz.strategies import Draw, json_values, mutated
from workers.http.stripe_signature import signature_header
from workers.http.stripe_webhooks import HANDLED_TYPES, PATH, create_app, envelope_id

KEYS = {se.SIGNING_KEY[0]: se.SIGNING_KEY[1]}
SENT: list[bytes] = []  # what the app enqueued; emptied before every request
APP = create_app(se.WEBHOOK_SECRET, SENT.append, signing_key=se.SIGNING_KEY)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


def request(
    body: bytes, headers: dict[str, str], method: str = "POST", path: str = PATH
) -> httpx.Response:
    """One request to the app, answered within CALL_LIMIT_S (else the test fails)."""
    SENT.clear()

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as http:
            call = http.request(method, path, content=body, headers=headers)
            return await asyncio.wait_for(call, CALL_LIMIT_S)

    started = time.perf_counter()
    response = asyncio.run(send())
    assert time.perf_counter() - started < CALL_LIMIT_S
    return response


@st.composite
def events(draw: Draw) -> bytes:
    """Stripe events: genuine-looking (any type, ids), mutated, or any JSON or bytes at all."""
    type_ = draw(st.sampled_from(sorted(HANDLED_TYPES)) | st.sampled_from(["customer.created"]))
    event = se.event(
        type_,
        draw(st.from_regex(r"evt_[A-Za-z0-9_]{1,30}", fullmatch=True) | printable),
        draw(st.sampled_from(["pi_3PTest0000000001", "ch_1", ""]) | printable),
        draw(st.integers(min_value=-1, max_value=2**40)),
    )
    kind = draw(st.sampled_from(["event", "mutated", "json", "bytes"]))
    if kind == "mutated":
        return json.dumps(draw(mutated(event))).encode()
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return bytes(draw(st.binary(max_size=512)))
    return se.body(event)


@st.composite
def forged_headers(draw: Draw, body: bytes) -> dict[str, str]:
    """Headers whose Stripe-Signature is missing, malformed, stale, early or of another key."""
    now = int(time.time())
    forged = draw(
        st.sampled_from(["missing", "random", "other-secret", "stale", "early", "v0-only"])
    )
    headers: dict[str, str] = draw(
        st.dictionaries(st.sampled_from(["content-type", "x-any"]), printable)
    )
    if forged == "random":
        headers["Stripe-Signature"] = draw(printable)
    elif forged == "other-secret":
        headers["Stripe-Signature"] = signature_header(body, "whsec_" + draw(printable), now)
    elif forged == "stale":
        headers["Stripe-Signature"] = signature_header(body, se.WEBHOOK_SECRET, now - 301)
    elif forged == "early":
        headers["Stripe-Signature"] = signature_header(body, se.WEBHOOK_SECRET, now + 61)
    elif forged == "v0-only":
        genuine = signature_header(body, se.WEBHOOK_SECRET, now)
        headers["Stripe-Signature"] = genuine.replace("v1=", "v0=")
    return headers


@fuzz(examples=300)
@given(st.data())
def test_a_request_that_is_not_correctly_signed_gets_a_4xx_and_enqueues_nothing(
    data: st.DataObject,
) -> None:
    # Given any body with a missing, malformed, forged, stale or early signature
    body = data.draw(events())
    headers = data.draw(forged_headers(body))
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    # When it is sent
    response = request(body, headers, method)
    # Then it is refused, and nothing was enqueued
    assert 400 <= response.status_code < 500
    assert SENT == []


@fuzz(examples=300)
@given(events(), st.sampled_from(["", ",v0=00", ",v1=" + "0" * 64, ",x=y"]))
def test_a_correctly_signed_request_gets_2xx_or_4xx_and_enqueues_what_the_ingress_accepts(
    body: bytes, more: str
) -> None:
    # Given any body, correctly signed now (maybe among other signature entries)
    headers = {"Stripe-Signature": signature_header(body, se.WEBHOOK_SECRET, int(time.time()))}
    headers["Stripe-Signature"] += more
    # When it is posted
    response = request(body, headers)
    # Then a handled event is enqueued once, an unhandled one ignored, anything else refused
    assert response.status_code in (200, 400)
    answer: dict[str, Any] = response.json()
    event(f"{response.status_code} {sorted(answer)}")  # pytest --hypothesis-show-statistics
    if "received" in answer:
        assert len(SENT) == 1
        message = decode(SENT[0], 256 * 1024)
        assert authenticate(message, KEYS).ok
        assert message.envelope.id == envelope_id(answer["received"])
        assert message.raw["data"]["type"] in HANDLED_TYPES
    else:
        assert SENT == []
        assert set(answer) == ({"ignored"} if response.status_code == 200 else {"error"})
