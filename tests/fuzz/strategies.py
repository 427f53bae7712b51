"""Hypothesis strategies for fuzzing the ingress: JSON values, signed golden samples, structural
mutations of them, the ways a producer may serialise one, and byte-level damage."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

from tests import factories as f

SAMPLE_TYPES = sorted(path.name for path in f.SAMPLES.iterdir() if path.is_dir())
Path = tuple[str | int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]

json_scalars: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    # Values the models look for: times, ids, amounts, codes.
    | st.sampled_from(["2026-03-04T12:00:00Z", "2026-03-04T12:00:00", "M9681118", "EUR", "pi_1"])
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=16,
)

# What a signature can cover: no floats, integers within +/-(2^53-1).
signable_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=24),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=16,
)


@st.composite
def signed_samples(draw: Draw, types: list[str] = SAMPLE_TYPES) -> dict[str, Any]:
    """A golden sample of some type with a fresh id, signed with the test key."""
    type_ = draw(st.sampled_from(types))
    return f.envelope(type_, envelope_id=str(draw(st.uuids(version=4))))


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every node below `value` (not `value` itself), parents before children."""
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, item in items:
        yield (*prefix, key)
        yield from paths(item, (*prefix, key))


def _parent(root: Any, path: Path) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated(draw: Draw, envelope: dict[str, Any]) -> dict[str, Any]:
    """`envelope` with 1-3 nodes replaced, removed or added (the input is not changed)."""
    result = copy.deepcopy(envelope)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        nodes = list(paths(result))
        if not nodes:
            break
        path = draw(st.sampled_from(nodes))
        parent = _parent(result, path)
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
        else:
            parent.insert(draw(st.integers(0, len(parent))), draw(json_values))
    return result


@st.composite
def shuffled(draw: Draw, value: Any) -> Any:
    """The same JSON value with every object's members in a drawn order."""
    if isinstance(value, dict):
        keys = draw(st.permutations(list(value)))
        return {key: draw(shuffled(value[key])) for key in keys}
    if isinstance(value, list):
        return [draw(shuffled(item)) for item in value]
    return value


@st.composite
def serialised(draw: Draw, value: Any) -> bytes:
    """`value` as a producer might write it: any member order, whitespace and escaping."""
    ordered = draw(shuffled(value))
    indent = draw(st.sampled_from([None, 0, 2, "\t"]))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]))
    text = json.dumps(
        ordered, indent=indent, separators=separators, ensure_ascii=draw(st.booleans())
    )
    return text.encode("utf-8", "surrogatepass")


@st.composite
def damaged(draw: Draw, raw: bytes) -> bytes:
    """`raw` with 1-3 byte edits: flip, insert, delete, truncate or repeat a slice."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if edit == "flip" and at < len(data):
            data[at] ^= draw(st.integers(min_value=1, max_value=255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif edit == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif edit == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(min_value=1, max_value=16))]
    return bytes(data)


@st.composite
def near_valid_bodies(draw: Draw) -> bytes:
    """A signed sample, maybe mutated (and then maybe signed again, so the mutation reaches the
    data models), serialised some way, and maybe damaged at the byte level."""
    envelope = draw(signed_samples())
    if draw(st.booleans()):
        envelope = draw(mutated(envelope))
        if draw(st.booleans()) and isinstance(envelope.get("data"), dict):
            with contextlib.suppress(ValueError):  # floats, huge integers: sent unsigned
                envelope = f.resign(envelope)
    raw: bytes = draw(serialised(envelope))
    if draw(st.booleans()):
        raw = draw(damaged(raw))
    return raw
