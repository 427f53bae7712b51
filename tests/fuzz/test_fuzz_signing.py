"""Fuzzing the envelope signature check: `verify` never raises on any mapping; a signed envelope
fails once any byte of what it signs changes, and still verifies however its members are
ordered, spaced or escaped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.messages.catalogue import RejectedMessage, decode
from tasks.messages.signing import VerifyOutcome, VerifyResult, authenticate, canonical_body, verify
from tests import factories as f
from tests.fuzz.budget import CALL_LIMIT_S, fuzz
from tests.fuzz.strategies import (
    SAMPLE_TYPES,
    Draw,
    json_values,
    serialised,
    signable_values,
    signed_samples,
)

LIMIT = 256 * 1024
HEX = "0123456789abcdefABCDEF"


class OddMapping(Mapping[Any, Any]):
    """A Mapping that is not a dict (as a caller might pass)."""

    def __init__(self, items: dict[Any, Any]) -> None:
        self._items = items

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
hashables = _scalars | st.binary(max_size=8) | st.tuples(_scalars, _scalars)
anything = st.recursive(
    hashables
    | st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
    | st.builds(object)
    | st.frozensets(_scalars, max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4).map(MappingProxyType)
    ),
    max_leaves=12,
)
signatures = st.fixed_dictionaries(
    {},
    optional={
        "key_id": st.sampled_from([f.KEY_ID, "other-key", "", None, 7]) | anything,
        "alg": st.sampled_from(["hmac-sha256", "HMAC-SHA256", "none"]) | anything,
        "value": st.text(st.sampled_from(HEX), min_size=64, max_size=64) | anything,
    },
)


@st.composite
def any_mappings(draw: Draw) -> Mapping[Any, Any]:
    """Any mapping of anything, usually with a signature that gets as far as the HMAC."""
    items: dict[Any, Any] = draw(st.dictionaries(hashables, anything, max_size=6))
    if draw(st.booleans()):
        items.update(draw(st.dictionaries(st.sampled_from(["id", "type", "data"]), anything)))
    choice = draw(st.sampled_from(["signature", "anything", "none"]))
    if choice != "none":
        items["signature"] = draw(signatures if choice == "signature" else anything)
    wrap = draw(st.sampled_from([dict, MappingProxyType, OddMapping]))
    return wrap(items)  # type: ignore[no-any-return]


def timed_verify(envelope: Mapping[str, Any]) -> VerifyResult:
    started = time.perf_counter()
    result = verify(envelope, f.KEYS)
    assert time.perf_counter() - started < CALL_LIMIT_S
    return result


@fuzz(examples=400)  # drawing these is the slow part, not verify
@given(any_mappings())
def test_verify_never_raises_on_any_mapping(envelope: Mapping[Any, Any]) -> None:
    # When any mapping, of any keys and values, is verified
    result = timed_verify(envelope)
    # Then the answer is an outcome, never an exception, and a made-up signature never passes
    assert result.outcome in set(VerifyOutcome)
    assert not result.ok


def test_verify_never_raises_on_a_mapping_that_contains_itself() -> None:
    # Given an envelope whose data contains the envelope
    envelope = f.envelope("inventory.set")
    envelope["data"]["loop"] = envelope
    # When it is verified
    result = timed_verify(envelope)
    # Then it is a bad signature, not a recursion error
    assert result == VerifyResult(VerifyOutcome.BAD_SIGNATURE, f.KEY_ID)


def _verdict(raw: bytes, original: bytes) -> tuple[bool, bool]:
    """(whether the ingress accepts `raw`, whether it signs the same canonical body)."""
    try:
        message = decode(raw, LIMIT)
        accepted = authenticate(message, f.KEYS).ok
    except RejectedMessage:
        accepted = False
    try:
        same = canonical_body(json.loads(raw)) == original
    except (ValueError, TypeError, AttributeError, RecursionError):
        same = False  # not JSON, or not an object, or not signable: never the same body
    return accepted, same


@pytest.mark.parametrize("type_", SAMPLE_TYPES)
def test_changing_any_one_byte_of_a_signed_sample_fails_unless_the_signed_body_is_the_same(
    type_: str,
) -> None:
    # Given a signed sample, written with escapes, and the canonical body its signature covers
    envelope = (
        f.envelope(type_, note="M\u00fcller \u2013 Nr. 12") if type_ == "order.shipped" else None
    )
    envelope = envelope or f.envelope(type_)
    raw = json.dumps(envelope, ensure_ascii=True).encode()
    original = canonical_body(envelope)
    end = raw.index(b', "signature": ')
    outcomes = []
    # When each byte before the signature member is changed (two ways), one at a time
    for at in range(end):
        for change in (0x01, 0x20):
            tampered = raw[:at] + bytes([raw[at] ^ change]) + raw[at + 1 :]
            outcomes.append(_verdict(tampered, original))
    # Then a change is accepted exactly when the signed body did not change (e.g. the case of
    # a hex digit in an escape), and that is rare
    assert [accepted for accepted, _ in outcomes] == [same for _, same in outcomes]
    assert sum(same for _, same in outcomes) < len(outcomes) // 20


@fuzz(examples=300)
@given(signed_samples(), st.data())
def test_a_signed_envelope_verifies_however_it_is_ordered_spaced_or_escaped(
    envelope: dict[str, Any], data: st.DataObject
) -> None:
    # Given a signed sample with extra data fields (ignored by the models, covered by the
    # signature), signed again
    extra = data.draw(st.dictionaries(st.text(min_size=1, max_size=8), signable_values, max_size=3))
    envelope = f.resign({**envelope, "data": {**extra, **envelope["data"]}})
    # When it is written with any member order, whitespace and escaping
    raw = data.draw(serialised(envelope))
    # Then it still verifies, as parsed JSON and through the ingress
    assert timed_verify(json.loads(raw)).ok
    accepted, same = _verdict(raw, canonical_body(envelope))
    assert (accepted, same) == (True, True)


@fuzz(examples=400)
@given(signed_samples(), st.data())
def test_changing_removing_or_adding_a_signed_member_fails(
    envelope: dict[str, Any], data: st.DataObject
) -> None:
    # Given a signed sample and any one member of what it signs
    original = canonical_body(envelope)
    body = {k: v for k, v in envelope.items() if k != "signature"}
    path = data.draw(st.sampled_from(list(_member_paths(body))))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    # When it is replaced by another value, removed, or a member is added beside it
    action = data.draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = data.draw(json_values)
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=8))] = data.draw(json_values)
    else:
        parent.append(data.draw(json_values))
    tampered = {**body, "signature": envelope["signature"]}
    # Then it fails exactly when the signed body changed
    try:
        changed = canonical_body(tampered) != original
    except ValueError:
        changed = True
    assert timed_verify(tampered).ok is not changed


def _member_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _member_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _member_paths(item, (*prefix, index))
