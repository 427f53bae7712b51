"""The published contract: JSON Schema of the catalogue (`orderflow schema`) and docs/messages.md.

Regenerate the docs with `uv run python -m tasks.messages.schema --write-docs`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from tasks.messages.catalogue import (
    CATALOGUE,
    MAX_NESTING,
    MONEY_MOVING_TYPES,
    REASON_DESCRIPTIONS,
    ReasonCode,
)
from tasks.messages.envelope import Envelope
from tasks.messages.signing import CANONICAL_FORM, canonical_body, sign
from tasks.messages.v1.common import PATTERN_WORDS, MessageData

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "messages.md"
REGENERATE = "uv run python -m tasks.messages.schema --write-docs"

# A documented example key: never configure it anywhere.
WORKED_EXAMPLE_KEY_ID = "example-2026"
WORKED_EXAMPLE_SECRET = b"not-a-real-secret-use-32-random-bytes"
WORKED_EXAMPLE_ENVELOPE: dict[str, Any] = {
    "version": 1,
    "type": "order.shipped",
    "id": "0b6f2b9e-3c1d-4c8e-9f5a-2d7e8a1b4c60",
    "occurred_at": "2026-03-04T14:05:00+01:00",
    "producer": "warehouse",
    "data": {
        "number": "M9681118",
        "tracking_numbers": ["00340434161234567890"],
        "carrier": "DHL",
        "note": "Beim Nachbarn abgegeben \u2013 Müller, Nr. 12",
        "notify_customer": True,
    },
}

Schema = dict[str, Any]
_EXAMPLE_PRODUCERS = {
    "manufacturer": "erp",
    "invoice": "erp",
    "payment": "backoffice",
    "inventory": "warehouse",
    "delivery_note": "warehouse",
    "stripe": "orderflow-stripe-webhook",
}


def catalogue_schema() -> Schema:
    """One JSON Schema (2020-12) accepting exactly the envelopes of every type and version."""
    models: list[type[Any]] = [Envelope, *CATALOGUE.values()]
    _, top = models_json_schema([(model, "validation") for model in models])
    variants = [
        {
            "title": f"{type_} v{version}",
            "allOf": [{"$ref": "#/$defs/Envelope"}],
            "properties": {
                "type": {"const": type_},
                "version": {"const": version},
                "data": {"$ref": f"#/$defs/{model.__name__}"},
            },
        }
        for (type_, version), model in CATALOGUE.items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orderflow inbound messages",
        "description": "An envelope whose data matches the model of its type and version. "
        "Also enforced beyond JSON Schema: no floats anywhere, integers within +/-(2^53-1), "
        f"nesting at most {MAX_NESTING} levels, the cross-field rules named in descriptions, "
        "and signatures (see docs/messages.md).",
        "oneOf": variants,
        "$defs": top["$defs"],
        "x-money-moving-types": sorted(MONEY_MOVING_TYPES),
    }


def example_envelope(model: type[MessageData]) -> dict[str, Any]:
    """A full envelope carrying the model's first example, signed if its type moves money."""
    envelope = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:orderflow:{model.TYPE}:{model.VERSION}")),
        "type": model.TYPE,
        "version": model.VERSION,
        "occurred_at": "2026-03-04T13:05:00Z",
        "producer": _EXAMPLE_PRODUCERS.get(model.TYPE.split(".")[0], "storefront"),
        "data": _examples(model)[0],
    }
    if model.TYPE in MONEY_MOVING_TYPES:
        return sign(envelope, WORKED_EXAMPLE_KEY_ID, WORKED_EXAMPLE_SECRET)
    return envelope


def _examples(model: type[MessageData]) -> list[dict[str, Any]]:
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if not isinstance(examples, list) or not examples:
        raise TypeError(f"{model.__name__} has no examples")
    return [dict(example) for example in examples if isinstance(example, dict)]


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```", ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _deref(prop: Schema, defs: Schema) -> tuple[str, Schema]:
    name = str(prop["$ref"]).rsplit("/", 1)[-1]
    return name, defs[name]


def _type_text(prop: Schema, defs: Schema) -> str:
    if "$ref" in prop:
        name, target = _deref(prop, defs)
        return "string" if "enum" in target else f"object `{name}`"
    if "anyOf" in prop:
        options = [option for option in prop["anyOf"] if option.get("type") != "null"]
        text = " or ".join(_type_text(option, defs) for option in options)
        return f"{text} or null" if len(options) < len(prop["anyOf"]) else text
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"array of {_type_text(prop['items'], defs)}"
    values = _map_values(prop)
    if kind == "object" and values is not None:
        return f"object of {_type_text(values, defs)}"
    return f"{kind} ({prop['format']})" if "format" in prop else kind


def _rules(prop: Schema, defs: Schema) -> list[str]:
    if "$ref" in prop:
        _, target = _deref(prop, defs)
        values = target.get("enum")
        return ["one of " + ", ".join(f"`{value}`" for value in values)] if values else []
    rules: list[str] = []
    for option in prop.get("anyOf", []):
        rules += _rules(option, defs)
    low, high = prop.get("minLength"), prop.get("maxLength")
    if low is not None or high is not None:
        exact = low == high
        rules.append(f"exactly {low} characters" if exact else f"{low or 0}-{high} characters")
    if "pattern" in prop:
        rules.append(PATTERN_WORDS.get(prop["pattern"], f"matches `{prop['pattern']}`"))
    bounds = [
        f"{word} {prop[key]}"
        for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="))
        if key in prop
    ]
    rules += [" and ".join(bounds)] if bounds else []
    if "minItems" in prop or "maxItems" in prop:
        rules.append(f"{prop.get('minItems', 0)}-{prop['maxItems']} items")
    if prop.get("type") == "array":
        rules += [f"each: {rule}" for rule in _rules(prop["items"], defs)]
    if "maxProperties" in prop:
        rules.append(f"at most {prop['maxProperties']} keys")
    if "propertyNames" in prop:
        rules += [f"keys: {rule}" for rule in _rules(prop["propertyNames"], defs)]
    values = _map_values(prop)
    if values is not None:
        rules += [f"values: {rule}" for rule in _rules(values, defs)]
    return rules


def _map_values(prop: Schema) -> Schema | None:
    """The value schema of a string-keyed map (additional or single pattern properties)."""
    if isinstance(prop.get("additionalProperties"), dict):
        return dict(prop["additionalProperties"])
    patterns = prop.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1:
        return dict(next(iter(patterns.values())))
    return None


def _field_table(schema: Schema, defs: Schema) -> list[str]:
    rows = ["| Field | Type | Required | Rules | Meaning |", "|---|---|---|---|---|"]
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        default = json.dumps(prop.get("default"), ensure_ascii=False)
        needed = "yes" if name in required else f"no (default `{default}`)"
        rules = "; ".join(_rules(prop, defs))
        cells = (f"`{name}`", _type_text(prop, defs), needed, rules, prop.get("description", ""))
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return [*rows, ""]


def _nested_models(schema: Schema, defs: Schema) -> list[str]:
    """Names of the object models a schema refers to, breadth first, each once."""
    order: list[str] = []
    queue: list[Any] = [schema]
    while queue:
        stack = [queue.pop(0)]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(reversed(node))
            elif isinstance(node, dict):
                ref = node.get("$ref")
                name = str(ref).rsplit("/", 1)[-1] if ref else ""
                if name and name not in order and "enum" not in defs[name]:
                    order.append(name)
                    queue.append(defs[name])
                stack.extend(reversed(list(node.values())))
    return order


def _type_section(model: type[MessageData], defs: Schema) -> list[str]:
    schema = defs[model.__name__]
    signed = (
        "**required** (moves money)"
        if model.TYPE in MONEY_MOVING_TYPES
        else "optional (verified if present)"
    )
    lines = [
        f"### `{model.TYPE}` (version {model.VERSION})",
        "",
        str(schema.get("description", "")),
        "",
        f"Model `{model.__module__}.{model.__name__}`. Signature: {signed}.",
        "",
        *_field_table(schema, defs),
    ]
    for name in _nested_models(schema, defs):
        nested = defs[name]
        lines += [f"`{name}`: {nested.get('description', '')}", "", *_field_table(nested, defs)]
    for example in _examples(model)[1:]:
        lines += ["Another valid `data`:", "", *_json_block(example)]
    return [*lines, "Example envelope:", "", *_json_block(example_envelope(model))]


def _envelope_section(defs: Schema) -> list[str]:
    return [
        "## Envelope",
        "",
        "Every message is one JSON object, UTF-8, no byte order mark:",
        "",
        *_field_table(defs["Envelope"], defs),
        "`Signature`:",
        "",
        *_field_table(defs["Signature"], defs),
        "Rules that apply to every message:",
        "",
        "- Unknown **top-level** fields are refused (`invalid_envelope`): the envelope is small "
        "and fixed, and a stray field there (queue options such as retries or time limits, a "
        "message of another format) is a producer error worth seeing.",
        "- Unknown fields **inside `data`** (and its nested objects) are accepted and ignored: "
        "they are dropped on decoding and never stored or used. Producers may start sending a "
        "new optional field before the consumer knows it. They are still covered by the "
        "signature.",
        "- No floats anywhere (money is integer minor units); integers within +/-(2^53-1); "
        f"nesting at most {MAX_NESTING} levels; duplicate keys, NaN and Infinity refused.",
        "- Datetimes are ISO-8601 strings with an offset (`Z` or `+01:00`); naive ones are "
        "refused. Numbers are never accepted as strings, nor booleans as numbers.",
        "- `id` is the deduplication key: the same id delivered again has no second effect.",
        "- Adding an optional field keeps a type's version; renaming or removing one makes a "
        "new version, and the old one keeps decoding.",
        "",
    ]


def _reasons_section() -> list[str]:
    rows = ["| Reason code | Meaning |", "|---|---|"]
    rows += [f"| `{code.value}` | {_cell(REASON_DESCRIPTIONS[code])} |" for code in ReasonCode]
    return [
        "## Refusals",
        "",
        "A refused message goes to the quarantine with one of these stable reason codes and a "
        "human-readable detail that names fields, never their values. Decoding checks size, "
        "JSON, envelope, type, version and data in that order; the signature check follows.",
        "",
        *rows,
        "",
    ]


def _signing_section() -> list[str]:
    return [
        "## Signing",
        "",
        "Envelopes are signed with HMAC-SHA256 under one of several named keys "
        "(`ORDERFLOW_SIGNING_KEYS=key_id:secret,...`: the first signs, all verify, so a key is "
        "rotated by adding the new one first, then removing the old one once nothing signed "
        "with it is in flight). Money-moving types "
        f"({', '.join(f'`{t}`' for t in sorted(MONEY_MOVING_TYPES))}) are refused unsigned; "
        "any other type may be unsigned, but a signature that is present must verify.",
        "",
        "The signed bytes (the canonical body), exactly:",
        "",
        CANONICAL_FORM,
        *_worked_example(),
    ]


def _worked_example() -> list[str]:
    body = canonical_body(WORKED_EXAMPLE_ENVELOPE)
    signed = sign(WORKED_EXAMPLE_ENVELOPE, WORKED_EXAMPLE_KEY_ID, WORKED_EXAMPLE_SECRET)
    return [
        "### Worked example",
        "",
        f"Key id `{WORKED_EXAMPLE_KEY_ID}`, secret `{WORKED_EXAMPLE_SECRET.decode()}` "
        "(an example: never configure it). Envelope as sent by a producer (member order and "
        "whitespace do not matter):",
        "",
        *_json_block(WORKED_EXAMPLE_ENVELOPE),
        f"Canonical body ({len(body)} bytes of UTF-8):",
        "",
        "```text",
        body.decode("utf-8"),
        "```",
        "",
        f"HMAC-SHA256, hex: `{signed['signature']['value']}`",
        "",
        "Signed envelope:",
        "",
        *_json_block(signed),
        "The same in JavaScript (Node), for messages whose keys are ASCII, as all of ours are:",
        "",
        "```js",
        _NODE_SIGNER,
        "```",
        "",
        "Other languages: any RFC 8785 (JCS) library gives the canonical body, since messages "
        "hold no floats.",
        "",
    ]


_NODE_SIGNER = """const crypto = require("node:crypto");

function canonical(v) {
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort();  // UTF-16 code unit order, as RFC 8785 wants
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }
  if (typeof v === "number" && !Number.isSafeInteger(v)) throw new Error("integers only");
  return JSON.stringify(v);
}

function sign(envelope, keyId, secret) {
  const { signature, ...body } = envelope;
  const value = crypto.createHmac("sha256", secret).update(canonical(body), "utf8").digest("hex");
  return { ...body, signature: { key_id: keyId, alg: "hmac-sha256", value } };
}"""


def render_catalogue_markdown() -> str:
    """docs/messages.md: envelope, refusals, signing, then every type with fields and example."""
    defs = catalogue_schema()["$defs"]
    summary = ["| Type | Version | Signature | Effect |", "|---|---|---|---|"]
    sections: list[str] = []
    for (type_, version), model in CATALOGUE.items():
        signed = "required" if type_ in MONEY_MOVING_TYPES else "optional"
        effect = _cell(str(defs[model.__name__].get("description", "")))
        summary.append(f"| `{type_}` | {version} | {signed} | {effect} |")
        sections += _type_section(model, defs)
    lines = [
        "# Inbound message catalogue",
        "",
        f"<!-- Generated from tasks/messages by `{REGENERATE}`. Do not edit by hand. -->",
        "",
        "Other systems tell orderflow what happened by enqueuing these messages. Type names, "
        "field names and rules below are the contract; the same contract as one JSON Schema "
        "is printed by `orderflow schema`.",
        "",
        *_envelope_section(defs),
        *_reasons_section(),
        *_signing_section(),
        "## Message types",
        "",
        *summary,
        "",
        *sections,
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the JSON Schema, or with --write-docs regenerate docs/messages.md."""
    parser = argparse.ArgumentParser(prog="python -m tasks.messages.schema", description=__doc__)
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS_PATH.name}")
    args = parser.parse_args(argv)
    if args.write_docs:
        DOCS_PATH.write_text(render_catalogue_markdown(), encoding="utf-8")
        sys.stdout.write(f"wrote {DOCS_PATH}\n")
    else:
        sys.stdout.write(json.dumps(catalogue_schema(), indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
