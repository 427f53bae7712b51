"""Decoding inbound messages: golden samples, every refusal reason, field rules, and fuzzing."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.messages.catalogue import (
    CATALOGUE,
    MONEY_MOVING_TYPES,
    DecodedMessage,
    ReasonCode,
    RejectedMessage,
    decode,
)
from tasks.messages.schema import catalogue_schema, example_envelope
from tasks.messages.v1 import (
    FulfillmentStatus,
    InventorySetV1,
    ManufacturerUpsertedV1,
    OrderPlacedV1,
    OrderShippedV1,
    PaidBacklogRequestedV1,
    PaymentMethod,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LIMIT = 64 * 1024
# Golden samples are never edited: a changed file fails here, a new version gets a new file.
# (The first 128 bits of each file's SHA-256.)
SAMPLE_SHA256 = {
    "delivery_note.requested/v1.json": "49145cf86703768ff8baacf9f055093d",
    "inventory.received/v1.json": "811546abc1c8e548ee7d510d522bb399",
    "inventory.set/v1.json": "213420f9fa741fd623dc8fe837d49c08",
    "invoice.issued/v1.json": "62b7b88fb80eb6ac484c0f9709604c4d",
    "manufacturer.upserted/v1.json": "bfff21a2627a2017dabd41a74f5e2632",
    "order.accepted/v1.json": "4487059f6957dde38d406474016c523d",
    "order.archived/v1.json": "f8f4ce6de7b69e5f960ab609c50780c2",
    "order.cancelled/v1.json": "54c347a8292dc9c5708e89c86ef6a42a",
    "order.confirmed/v1.json": "5df32e2c36761f6f6acd4a7362549b20",
    "order.fulfillment_changed/v1.json": "5bd2bb541ec1c853a0d82d5436f7fc34",
    "order.lines_changed/v1.json": "c1682233e8e5afb4f5f491d5cdbb6698",
    "order.placed/v1.json": "b406a6e00fde10402f20ae661b963ce1",
    "order.refund_requested/v1.json": "9fb221b067e5c57f12776872813d1cb5",
    "order.shipped/v1.json": "cf55ce35578121f5666c4eb901c0b5ac",
    "order.split_requested/v1.json": "4809d2ba4f46d5dcdf641c18aeb0e776",
    "paid_backlog.requested/v1.json": "2314f4b54e68319c27bf913b5fb18240",
    "payment.recorded/v1.json": "f94aa81270fbb06da62940f7e1c8146d",
    "stripe.event/v1.json": "28dd8e65a71e7918e8a9e60d80379a02",
}


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / name / "v1.json").read_text("utf-8"))
    return loaded


def _bytes(envelope: Any) -> bytes:
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


def _reject(raw: bytes, max_bytes: int = LIMIT) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as caught:
        decode(raw, max_bytes)
    return caught.value


def _with_data(type_: str, **changes: Any) -> bytes:
    envelope = _sample(type_)
    envelope["data"].update(changes)
    return _bytes(envelope)


def _data_violation(type_: str, **changes: Any) -> str:
    rejected = _reject(_with_data(type_, **changes))
    assert rejected.reason_code is ReasonCode.SCHEMA_VIOLATION
    return rejected.detail


# --- golden samples -------------------------------------------------------------------------


def test_there_is_one_golden_sample_per_catalogue_entry() -> None:
    # Given the sample folders
    found = {(path.parent.name, int(path.stem[1:])) for path in SAMPLES.glob("*/v*.json")}
    # Then they match the catalogue exactly
    assert found == set(CATALOGUE)
    assert len(found) == 18


@pytest.mark.parametrize("key", sorted(CATALOGUE), ids=lambda key: f"{key[0]}-v{key[1]}")
def test_every_golden_sample_decodes_to_its_model(key: tuple[str, int]) -> None:
    # Given a golden sample file as bytes
    type_, version = key
    raw = (SAMPLES / type_ / f"v{version}.json").read_bytes()
    # When it is decoded
    message = decode(raw, LIMIT)
    # Then the data has the registered class and the envelope the sample's identity
    assert type(message.data) is CATALOGUE[key]
    assert (message.envelope.type, message.envelope.version) == key
    assert str(message.envelope.id) == json.loads(raw)["id"]
    assert message.raw == json.loads(raw)
    assert message.moves_money is (type_ in MONEY_MOVING_TYPES)


@pytest.mark.parametrize("name", sorted(SAMPLE_SHA256))
def test_golden_samples_are_never_edited(name: str) -> None:
    # Given a golden sample file
    digest = hashlib.sha256((SAMPLES / name).read_bytes()).hexdigest()[:32]
    # Then its bytes are the ones first committed
    assert digest == SAMPLE_SHA256[name], f"{name} was edited; add a new version instead"


@pytest.mark.parametrize("model", list(CATALOGUE.values()), ids=lambda model: model.__name__)
def test_every_documented_example_decodes(model: type[Any]) -> None:
    # Given the example envelope shown in docs/messages.md
    raw = _bytes(example_envelope(model))
    # When it is decoded
    message = decode(raw, LIMIT)
    # Then it has the model's class
    assert type(message.data) is model


def test_catalogue_schema_has_one_variant_per_type_and_version() -> None:
    # When the published schema is built
    schema = catalogue_schema()
    # Then it has one variant per entry, each pinning type, version and data model
    titles = [variant["title"] for variant in schema["oneOf"]]
    assert titles == [f"{type_} v{version}" for type_, version in CATALOGUE]
    shipped = schema["oneOf"][titles.index("order.shipped v1")]["properties"]
    assert shipped == {
        "type": {"const": "order.shipped"},
        "version": {"const": 1},
        "data": {"$ref": "#/$defs/OrderShippedV1"},
    }
    assert schema["$defs"]["Envelope"]["additionalProperties"] is False


# --- field handling --------------------------------------------------------------------------


def test_extra_amount_on_order_shipped_is_accepted_and_dropped() -> None:
    # Given the golden order.shipped sample, whose producer sends an amount
    raw = (SAMPLES / "order.shipped" / "v1.json").read_bytes()
    assert json.loads(raw)["data"]["amount"] == 25800
    # When it is decoded
    message = decode(raw, LIMIT)
    # Then the amount is nowhere on the model (captures take the amount from the database)
    assert isinstance(message.data, OrderShippedV1)
    assert "amount" not in message.data.model_dump()
    assert not hasattr(message.data, "amount")
    assert message.data.model_extra is None


def test_order_shipped_sample_has_the_expected_values() -> None:
    # When the golden order.shipped sample is decoded
    message = decode(_bytes(_sample("order.shipped")), LIMIT)
    # Then every field is read as written, notify_customer included
    data = message.data
    assert isinstance(data, OrderShippedV1)
    assert data.number == "M9681118"
    assert data.tracking_numbers == ["00340434161234567890"]
    assert data.carrier == "DHL"
    assert data.notify_customer is True
    assert data.shipped_at is not None
    assert data.shipped_at.utcoffset() is not None


def test_defaults_apply_when_optional_fields_are_absent() -> None:
    # Given messages without their optional fields
    shipped = _sample("order.shipped")
    shipped["data"] = {"number": "M1", "tracking_numbers": []}
    oem = _sample("manufacturer.upserted")
    del oem["data"]["sla_business_days"]
    backlog = _sample("paid_backlog.requested")
    backlog["data"] = {"all_eligible": True}
    # When they are decoded
    shipped_data = decode(_bytes(shipped), LIMIT).data
    oem_data = decode(_bytes(oem), LIMIT).data
    backlog_data = decode(_bytes(backlog), LIMIT).data
    # Then the documented defaults hold
    assert isinstance(shipped_data, OrderShippedV1)
    assert (shipped_data.notify_customer, shipped_data.note, shipped_data.carrier) == (
        True,
        None,
        None,
    )
    assert isinstance(oem_data, ManufacturerUpsertedV1)
    assert oem_data.sla_business_days == 1
    assert isinstance(backlog_data, PaidBacklogRequestedV1)
    assert (backlog_data.dry_run, backlog_data.order_numbers) == (False, None)


def test_enums_are_read_as_enums() -> None:
    # When an order.placed sample is decoded
    data = decode(_bytes(_sample("order.placed")), LIMIT).data
    # Then its payment method is the enum member and its lines are typed
    assert isinstance(data, OrderPlacedV1)
    assert data.payment_method is PaymentMethod.STRIPE_CARD
    assert [(line.sku, line.quantity, line.unit_price) for line in data.lines] == [
        ("DRILL-18V", 2, 12900),
        ("LEAFLET-DE", 1, 0),
    ]
    fulfillment = decode(_bytes(_sample("order.fulfillment_changed")), LIMIT).data
    assert getattr(fulfillment, "status", None) is FulfillmentStatus.ON_HOLD


def test_inventory_set_accepts_zero_but_received_does_not() -> None:
    # Given a stock count of zero and a receipt of zero
    counted = decode(_with_data("inventory.set", quantity=0), LIMIT).data
    # Then the count is fine and the receipt is refused
    assert isinstance(counted, InventorySetV1)
    assert counted.quantity == 0
    detail = _data_violation("inventory.received", quantity=0)
    assert detail == "data.quantity: Input should be greater than 0"


# --- refusals, one reason code at a time -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (
            b"{",
            "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes",
        ),
        (b"", "invalid JSON at line 1 column 1: Expecting value"),
        (b"\xff\xfe{}", "not UTF-8 (byte 0)"),
        (
            "\ufeff{}".encode(),
            "invalid JSON at line 1 column 1: Unexpected UTF-8 BOM (decode using utf-8-sig)",
        ),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": -Infinity}', "-Infinity is not allowed"),
        (b'{"a": 1, "a": 2}', "an object has a duplicate key"),
        (b'{"a": "\\ud800"}', "a string has an unpaired surrogate"),
        (b"[" * 5000 + b"]" * 5000, "a number too long to read, or nesting too deep to parse"),
        (b'{"a": ' + b"9" * 5000 + b"}", "a number too long to read, or nesting too deep to parse"),
    ],
    ids=[
        "truncated",
        "empty",
        "latin",
        "bom",
        "nan",
        "infinity",
        "dup",
        "surrogate",
        "deep",
        "big",
    ],
)
def test_not_json(raw: bytes, detail: str) -> None:
    # When bytes that are not I-JSON are decoded
    rejected = _reject(raw)
    # Then the reason is not_json with a precise detail
    assert rejected.reason_code is ReasonCode.NOT_JSON
    assert rejected.detail == detail


def test_oversized_is_refused_before_parsing() -> None:
    # Given a valid message one byte over the limit
    raw = _bytes(_sample("order.archived"))
    # When it is decoded with a limit one byte short
    rejected = _reject(raw, max_bytes=len(raw) - 1)
    # Then it is oversized; at exactly the limit it decodes
    assert rejected.reason_code is ReasonCode.OVERSIZED
    assert rejected.detail == f"message is {len(raw)} bytes; the limit is {len(raw) - 1}"
    assert decode(raw, len(raw)).envelope.type == "order.archived"
    assert _reject(b"x" * 10, max_bytes=9).reason_code is ReasonCode.OVERSIZED


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def _envelope_with(**changes: Any) -> bytes:
    envelope = _sample("order.archived")
    envelope.update(changes)
    return _bytes({key: value for key, value in envelope.items() if value is not ...})


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"[]", "the message must be a JSON object"),
        (b'"order.placed"', "the message must be a JSON object"),
        (_envelope_with(id=...), "id: Field required"),
        (
            _envelope_with(id="00000000-0000-0000-0000-000000000000"),
            "id: Value error, the nil UUID is not a valid message id",
        ),
        (_envelope_with(version="1"), "version: Input should be a valid integer"),
        (_envelope_with(version=1.0), "version: Input should be a valid integer"),
        (_envelope_with(version=True), "version: Input should be a valid integer"),
        (_envelope_with(version=0), "version: Input should be greater than or equal to 1"),
        (
            _envelope_with(occurred_at="2026-03-04T12:00:00"),
            "occurred_at: Input should have timezone info",
        ),
        (_envelope_with(occurred_at=1772625600), "occurred_at: Input should be a valid datetime"),
        (
            _envelope_with(producer="two words"),
            "producer: String does not fit the rule: no whitespace or control characters",
        ),
        (_envelope_with(data=[]), "data: Input should be an object"),
        (_envelope_with(options={"max_retries": 99}), "options: Extra inputs are not permitted"),
        (
            _envelope_with(signature={"key_id": "k1", "alg": "md5", "value": "0" * 64}),
            "signature.alg: Input should be 'hmac-sha256'",
        ),
        (_envelope_with(signature="abc"), "signature: Input should be an object"),
        (_envelope_with(data={"number": "M1", "x": _nested(31)}), "nested deeper than 32 levels"),
    ],
    ids=[
        "array",
        "string",
        "no-id",
        "nil-id",
        "str-version",
        "float-version",
        "bool-version",
        "version-0",
        "naive",
        "epoch",
        "producer",
        "data-list",
        "extra",
        "alg",
        "sig-str",
        "deep",
    ],
)
def test_invalid_envelope(raw: bytes, detail: str) -> None:
    # When JSON that is not a valid envelope is decoded
    rejected = _reject(raw)
    # Then the reason is invalid_envelope and the detail names the field
    assert rejected.reason_code is ReasonCode.INVALID_ENVELOPE
    assert rejected.detail == detail


def test_unknown_type_and_version() -> None:
    # Given an unknown type, a known type in an unknown version and an odd type name
    unknown_type = _envelope_with(type="order.teleported")
    unknown_version = _envelope_with(version=2)
    odd_name = _envelope_with(type="x\n" * 30)
    # When they are decoded
    type_rejection = _reject(unknown_type)
    version_rejection = _reject(unknown_version)
    odd_rejection = _reject(odd_name)
    # Then each gets its reason; the odd name is quoted and cut, never echoed raw
    assert type_rejection.reason_code is ReasonCode.UNKNOWN_TYPE
    assert type_rejection.detail == "unknown message type order.teleported"
    assert version_rejection.reason_code is ReasonCode.UNKNOWN_VERSION
    assert version_rejection.detail == "order.archived has no version 2 (known: 1)"
    assert odd_rejection.reason_code is ReasonCode.UNKNOWN_TYPE
    assert odd_rejection.detail == 'unknown message type "' + "x\\n" * 20 + '..."'


def test_schema_violation_names_every_broken_field_up_to_five() -> None:
    # Given an order.placed with six broken fields
    raw = _with_data(
        "order.placed",
        number="has space",
        currency="eur",
        manufacturer_id="",
        payment_method="cash",
        placed_at="2026-03-02T09:15:00",
        customer={"id": "C1", "email": "not-an-email", "name": "Ada"},
    )
    # When it is decoded
    rejected = _reject(raw)
    # Then the detail lists five paths, in words, and counts the rest
    assert rejected.reason_code is ReasonCode.SCHEMA_VIOLATION
    assert rejected.detail == (
        "data.number: String does not fit the rule: no whitespace or control characters; "
        "data.customer.email: String does not fit the rule: a simple local@domain.tld check; "
        "data.manufacturer_id: String should have at least 1 character; "
        "data.currency: String does not fit the rule: 3 uppercase letters; "
        "data.payment_method: Input should be 'stripe_card', 'on_account', 'offline' or 'other'; "
        "and 1 more"
    )


def test_naive_datetimes_are_refused_in_data() -> None:
    # When a data datetime has no offset
    detail = _data_violation("order.accepted", at="2026-03-02T11:00:00")
    # Then it is refused
    assert detail == "data.at: Input should have timezone info"


@pytest.mark.parametrize(
    ("type_", "field", "value", "detail"),
    [
        (
            "invoice.issued",
            "amount",
            25800.0,
            "data.amount: floats are not allowed (money is integer minor units)",
        ),
        (
            "payment.recorded",
            "amount",
            12.5,
            "data.amount: floats are not allowed (money is integer minor units)",
        ),
        ("invoice.issued", "amount", True, "data.amount: Input should be a valid integer"),
        ("invoice.issued", "amount", "25800", "data.amount: Input should be a valid integer"),
        ("invoice.issued", "amount", -1, "data.amount: Input should be greater than or equal to 0"),
        (
            "invoice.issued",
            "amount",
            2**53,
            "data.amount: integers must be within +/-9007199254740991",
        ),
        (
            "order.shipped",
            "amount",
            258.0,
            "data.amount: floats are not allowed (money is integer minor units)",
        ),
        ("payment.recorded", "amount", 0, "data.amount: Value error, amount must not be 0"),
    ],
    ids=["float", "fraction", "bool", "string", "negative", "unsafe", "ignored-float", "zero"],
)
def test_money_is_strictly_integer_minor_units(
    type_: str, field: str, value: Any, detail: str
) -> None:
    # When money arrives as anything but a bounded int (even in a field that is ignored)
    # Then it is a schema violation
    assert _data_violation(type_, **{field: value}) == detail


def test_float_in_a_nested_line_is_located() -> None:
    # Given an order whose second line has a float price
    envelope = _sample("order.placed")
    envelope["data"]["lines"][1]["unit_price"] = 0.5
    # When it is decoded
    rejected = _reject(_bytes(envelope))
    # Then the detail points at the line
    assert rejected.detail == (
        "data.lines[1].unit_price: floats are not allowed (money is integer minor units)"
    )


@pytest.mark.parametrize(
    ("type_", "changes", "detail"),
    [
        (
            "order.placed",
            {"currency": "EURO"},
            "data.currency: String should have at most 3 characters",
        ),
        (
            "order.placed",
            {"payment_method": "stripe_card", "stripe_payment_intent_id": None},
            "data: Value error, stripe_payment_intent_id is required for stripe_card orders",
        ),
        (
            "order.placed",
            {"payment_method": "offline"},
            "data: Value error, stripe_payment_intent_id is only allowed for stripe_card orders",
        ),
        (
            "order.placed",
            {
                "payment_method": "offline",
                "stripe_payment_intent_id": None,
                "capture_before": "2026-03-09T09:15:00+01:00",
            },
            "data: Value error, capture_before is only allowed for stripe_card orders",
        ),
        (
            "order.placed",  # the sample is placed at 09:15 +01:00, which is 08:15 UTC
            {"capture_before": "2026-03-02T08:15:00Z"},
            "data: Value error, capture_before must be later than placed_at",
        ),
        (
            "order.placed",
            {"capture_before": "2026-03-09T09:15:00"},
            "data.capture_before: Input should have timezone info",
        ),
        (
            "order.placed",
            {"lines": []},
            "data.lines: List should have at least 1 item after validation, not 0",
        ),
        (
            "order.placed",
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": 1}] * 2},
            "data: Value error, each sku may appear on only one line",
        ),
        (
            "order.placed",
            {"lines": [{"sku": "A", "quantity": 1_000_000, "unit_price": 10**12}]},
            "data: Value error, order total exceeds 1000000000000 minor units",
        ),
        (
            "order.lines_changed",
            {"lines": [{"sku": "A", "quantity": 0, "unit_price": 1}]},
            "data.lines[0].quantity: Input should be greater than 0",
        ),
        (
            "order.placed",
            {"number": "M 1"},
            "data.number: String does not fit the rule: no whitespace or control characters",
        ),
        (
            "order.archived",
            {"number": "M1\u0085"},
            "data.number: String does not fit the rule: no whitespace or control characters",
        ),
        (
            "order.archived",
            {"number": "M" * 65},
            "data.number: String should have at most 64 characters",
        ),
        (
            "order.shipped",
            {"note": "n" * 2001},
            "data.note: String should have at most 2000 characters",
        ),
        (
            "order.shipped",
            {"notify_customer": "yes"},
            "data.notify_customer: Input should be a valid boolean",
        ),
        (
            "order.fulfillment_changed",
            {"status": "shipped"},
            "data.status: Value error, status shipped must be sent as order.shipped",
        ),
        (
            "order.fulfillment_changed",
            {"status": "cancelled"},
            "data.status: Value error, status cancelled must be sent as order.cancelled",
        ),
        (
            "order.fulfillment_changed",
            {"status": "lost"},
            "data.status: Input should be 'unfulfilled', 'processing', 'on_hold', 'backordered', "
            "'shipped', 'fulfilled' or 'cancelled'",
        ),
        (
            "manufacturer.upserted",
            {"timezone": "Mars/Olympus"},
            "data.timezone: Value error, not an IANA time zone name known to this system",
        ),
        (
            "manufacturer.upserted",
            {"timezone": "../../etc/passwd"},
            "data.timezone: String does not fit the rule: a known IANA zone name",
        ),
        (
            "manufacturer.upserted",
            {"holiday_country": "DEU"},
            "data.holiday_country: String should have at most 2 characters",
        ),
        (
            "manufacturer.upserted",
            {"cutoff_hour": 24},
            "data.cutoff_hour: Input should be less than or equal to 23",
        ),
        (
            "manufacturer.upserted",
            {"sla_business_days": 31},
            "data.sla_business_days: Input should be less than or equal to 30",
        ),
        (
            "manufacturer.upserted",
            {"notify_webhook_url": "https://user:pw@acme.example/hook"},
            "data.notify_webhook_url: Value error, must not contain credentials",
        ),
        (
            "manufacturer.upserted",
            {"notify_webhook_url": "ftp://acme.example/hook"},
            "data.notify_webhook_url: Value error, must be an absolute http:// or https:// URL",
        ),
        (
            "paid_backlog.requested",
            {"all_eligible": True},
            "data: Value error, give exactly one of order_numbers (non-empty) "
            "or all_eligible: true",
        ),
        (
            "paid_backlog.requested",
            {"order_numbers": None},
            "data: Value error, give exactly one of order_numbers (non-empty) "
            "or all_eligible: true",
        ),
        (
            "paid_backlog.requested",
            {"order_numbers": []},
            "data.order_numbers: List should have at least 1 item after validation, not 0",
        ),
        (
            "paid_backlog.requested",
            {"order_numbers": ["M1", "M1"]},
            "data: Value error, order_numbers must not repeat a number",
        ),
        (
            "delivery_note.requested",
            {"lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]},
            "data: Value error, each sku may appear on only one line",
        ),
        (
            "stripe.event",
            {"id": "ch_123"},
            "data.id: String should match pattern '^evt_[A-Za-z0-9_]+$'",
        ),
    ],
)
def test_field_rules(type_: str, changes: dict[str, Any], detail: str) -> None:
    # When one rule of a type is broken
    # Then the message is a schema violation naming the rule
    assert _data_violation(type_, **changes) == detail


@pytest.mark.parametrize("email", ["ada@example.com", "a.b+tag@mail.example.co.uk", "x@y.io"])
def test_plain_emails_are_accepted(email: str) -> None:
    # Given an order whose customer has a plain address
    envelope = _sample("order.placed")
    envelope["data"]["customer"]["email"] = email
    # Then it decodes
    data = decode(_bytes(envelope), LIMIT).data
    assert isinstance(data, OrderPlacedV1)
    assert data.customer.email == email


@pytest.mark.parametrize(
    "email", ["ada", "ada@example", "a b@example.com", "a@b@example.com", "@x.io"]
)
def test_odd_emails_are_refused(email: str) -> None:
    # Given an order whose customer has an odd address
    envelope = _sample("order.placed")
    envelope["data"]["customer"]["email"] = email
    # Then it is a schema violation on that field
    rejected = _reject(_bytes(envelope))
    assert rejected.reason_code is ReasonCode.SCHEMA_VIOLATION
    assert rejected.detail.startswith("data.customer.email: ")


def test_details_never_repeat_field_values() -> None:
    # Given a secret-looking value put into every field of every sample, one at a time
    secret = "sk_live_51SECRETvalue \x00"
    leaked = []
    for type_, _version in CATALOGUE:
        for field in _sample(type_)["data"]:
            raw = _with_data(type_, **{field: secret})
            # When it is decoded
            try:
                decode(raw, LIMIT)
            except RejectedMessage as rejected:
                # Then the refusal detail never contains the value
                if "SECRET" in rejected.detail:
                    leaked.append((type_, field, rejected.detail))
    assert leaked == []


# --- fuzzing: decode raises RejectedMessage or returns, nothing else -------------------------

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=24,
)
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_reject(raw: bytes) -> DecodedMessage | RejectedMessage:
    try:
        message = decode(raw, 4096)
    except RejectedMessage as rejected:
        return rejected
    return message


@_FUZZ
@given(st.binary(max_size=300))
def test_decode_of_arbitrary_bytes_only_ever_rejects(raw: bytes) -> None:
    # When arbitrary bytes are decoded
    outcome = _decode_or_reject(raw)
    # Then the outcome is a refusal with a known reason (random bytes are never an envelope)
    assert isinstance(outcome, RejectedMessage)
    assert outcome.reason_code in set(ReasonCode)
    assert outcome.detail


@_FUZZ
@given(_JSON)
def test_decode_of_arbitrary_json_only_ever_rejects(value: Any) -> None:
    # When any JSON value (NaN and huge numbers included) is decoded
    outcome = _decode_or_reject(json.dumps(value).encode())
    # Then the outcome is a refusal with a known reason
    assert isinstance(outcome, RejectedMessage)
    assert outcome.reason_code in set(ReasonCode)
    assert outcome.detail


@_FUZZ
@given(
    st.sampled_from(sorted(CATALOGUE)),
    st.dictionaries(st.text(max_size=8), _JSON, max_size=3),
    st.dictionaries(
        st.sampled_from(["id", "type", "version", "occurred_at", "producer", "data", "signature"]),
        _JSON,
        max_size=2,
    ),
)
def test_decode_of_mutated_samples_never_raises_anything_else(
    key: tuple[str, int], data_changes: dict[str, Any], envelope_changes: dict[str, Any]
) -> None:
    # Given a golden sample with arbitrary data fields and envelope fields replaced
    envelope = copy.deepcopy(_sample(key[0]))
    if isinstance(envelope["data"], dict):
        envelope["data"].update(data_changes)
    envelope.update(envelope_changes)
    # When it is decoded
    outcome = _decode_or_reject(json.dumps(envelope, ensure_ascii=False).encode("utf-8"))
    # Then it either decodes to the registered class or is refused
    if isinstance(outcome, DecodedMessage):
        assert type(outcome.data) is CATALOGUE[(outcome.envelope.type, outcome.envelope.version)]
    else:
        assert outcome.reason_code in set(ReasonCode)
        assert outcome.detail
