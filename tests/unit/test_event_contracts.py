"""The envelope, the registry and the payload models, with no broker and no database."""

import contextlib
import functools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import orjson
import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contracts import EventEnvelope, InvalidEvent, UnknownEventType, decode, encode, registered_types
from shared.contracts.intake import Art17Text, CaptiveRegistered
from shared.contracts.registry import declared_in
from tests.support import CHAOS_FULL, registration


def envelope_for(payload, **overrides) -> EventEnvelope:
    fields = dict(
        id="4b8f7a52-8a9c-4f7e-9d0b-0a1c2e3f4a5b",
        source="/services/intake",
        type=payload.event_type,
        subject=payload.captive_id,
        occurred_at=datetime(2025, 1, 11, 9, tzinfo=UTC),
        recorded_at=datetime(2025, 1, 12, 10, tzinfo=UTC),
        stream_version=1,
        schema_version=payload.schema_version,
        correlation_id="corr-1",
        actor="officer-7",
        agency="UA-HQ",
        data=payload.model_dump(mode="json"),
    )
    return EventEnvelope(**{**fields, **overrides})


def registered() -> CaptiveRegistered:
    return CaptiveRegistered(captive_id="CAP-0000-0000-0001", **registration())


def test_an_event_survives_the_trip_through_bytes_unchanged():
    envelope = envelope_for(registered())
    decoded = decode(encode(envelope))
    assert decoded.envelope == envelope
    assert decoded.payload == registered()
    assert decoded.payload.surname.value == "리"


def test_the_wire_format_is_cloudevents_with_lowercase_extension_attributes():
    document = orjson.loads(encode(envelope_for(registered())))
    assert document["specversion"] == "1.0"
    assert document["datacontenttype"] == "application/json"
    assert document["subject"] == "CAP-0000-0000-0001"
    assert document["time"] == "2025-01-11T09:00:00Z"  # when it happened
    assert document["recordedat"] == "2025-01-12T10:00:00Z"  # when the system learned it
    for attribute in ("streamversion", "schemaversion", "correlationid", "causationid", "actor", "agency"):
        assert attribute in document
    assert all(key.isalnum() and key.islower() for key in document if key != "data")


def test_encoding_is_canonical_so_equal_events_have_equal_bytes():
    first = encode(envelope_for(registered()))
    again = encode(EventEnvelope.model_validate(orjson.loads(first)))
    assert first == again
    assert list(orjson.loads(first)) == sorted(orjson.loads(first))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xffnot json", "not JSON"),
        (b"[1, 2]", "invalid envelope"),
        (b'{"specversion": "1.0"}', "invalid envelope"),
        (None, "no value"),
    ],
)
def test_undecodable_records_raise_with_the_reason(raw, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode(raw)


def test_an_unknown_type_or_version_is_refused_not_dropped():
    with pytest.raises(UnknownEventType, match="CaptiveTeleported"):
        decode(encode(envelope_for(registered(), type="CaptiveTeleported")))
    with pytest.raises(UnknownEventType, match="version 99"):
        decode(encode(envelope_for(registered(), schema_version=99)))


def test_a_payload_that_does_not_match_its_model_is_refused():
    bad = envelope_for(registered())
    data = {**bad.data, "claimed_affiliation": "SPACE_FORCES"}
    with pytest.raises(InvalidEvent, match="claimed_affiliation"):
        decode(encode(bad.model_copy(update={"data": data})))
    with pytest.raises(InvalidEvent, match="smuggled: Extra inputs"):
        decode(encode(bad.model_copy(update={"data": {**bad.data, "smuggled": 1}})))


def test_a_declined_field_is_recorded_without_a_value_and_a_given_one_needs_one():
    assert Art17Text(answer="DECLINED").value is None
    with pytest.raises(ValueError, match="required when the answer is GIVEN"):
        Art17Text(answer="GIVEN")
    with pytest.raises(ValueError, match="must be absent"):
        Art17Text(answer="DECLINED", value="Kim")


def test_every_registered_type_has_a_name_and_version():
    types = registered_types()
    assert ("CaptiveRegistered", 1) in types and ("StatusDetermined", 1) in types
    for (name, version), model in types.items():
        assert model.event_type == name and model.schema_version == version


def test_every_field_of_every_intake_event_schema_carries_its_data_tier():
    """Including the parts of `capture`, which carry their own tiers (its time stays in clear)
    and fields that may hold a `withheld` marker instead of their value."""
    from shared.contracts.withheld import Withheld

    intake = {
        name: model for (name, _), model in registered_types().items() if declared_in(model, "shared.contracts.intake")
    }
    assert {"CaptiveRegistered", "MovementRecorded", "DisclosureConsentRecorded"} <= set(intake), sorted(intake)
    for name, model in intake.items():
        schema = model.model_json_schema()
        for field, spec in schema["properties"].items():
            assert "x-data-tier" in spec, f"{name}.{field}"
        if "Capture" in schema.get("$defs", {}):
            capture = schema["$defs"]["Capture"]["properties"]
            assert {field: spec.get("x-data-tier") for field, spec in capture.items()} == {
                "captured_at": "reference",
                "place": "identity",
                "capturing_unit": "identity",
                "circumstances": "identity",
                "uniform_worn": "identity",
                "papers_found": "identity",
            }
    assert Withheld.model_json_schema()["properties"]["withheld"]["enum"] == ["sealed", "erased"]


# --- Properties over every registered event version (hypothesis) ------------------------------
#
# Payloads are drawn from the committed JSON Schemas (docs/schemas), envelopes from the
# envelope's: what a producer following the documents could send. Short by default; CHAOS_FULL=1
# (`make chaos`) draws many more.

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
EXAMPLES = settings(max_examples=1000 if CHAOS_FULL else 30, deadline=None)

# The schemas say only that a country is two word characters and a language three letters; the
# models take ISO 3166 and ISO 639-3 codes. Real codes most of the time let most payloads through.
ISO_CODES = {
    r"^\w{2}$": sorted(country.alpha_2 for country in pycountry.countries),
    r"^[a-z]{3}$": ["kor", "rus", "ukr", "eng", "zho", "ara", "heb"],
}
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


def from_schema(schema: dict, defs: dict) -> st.SearchStrategy:
    """Documents valid under `schema`, for the keywords the committed schemas use."""
    if "$ref" in schema:
        return st.deferred(lambda: from_schema(defs[schema["$ref"].rpartition("/")[2]], defs))
    if "anyOf" in schema:
        return st.one_of([from_schema(choice, defs) for choice in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        # Within 64 bits, as RFC 8259 section 6 advises: `encode` (orjson) refuses larger ones.
        return st.integers(min_value=schema.get("minimum", -(2**63)), max_value=schema.get("maximum", 2**63 - 1))
    if kind == "array":
        items = from_schema(schema["items"], defs)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object":
        properties = {name: from_schema(spec, defs) for name, spec in schema.get("properties", {}).items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: properties[name] for name in properties if name in required},
            optional={name: properties[name] for name in properties if name not in required},
        )
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=OFFSETS).map(lambda moment: moment.isoformat())
        if schema.get("format") == "date":
            return st.dates().map(lambda day: day.isoformat())
        if "pattern" in schema:
            drawn = st.from_regex(schema["pattern"], fullmatch=True)
            codes = ISO_CODES.get(schema["pattern"])
            return st.sampled_from(codes) | drawn if codes else drawn
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 50))
    raise AssertionError(f"from_schema does not know {schema}")


@functools.cache
def committed_schema(path: str) -> dict:
    return json.loads((SCHEMAS / path).read_text(encoding="utf-8"))


@functools.cache
def validator(path: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(committed_schema(path))


def envelopes(event_type: str, version: int, data: st.SearchStrategy) -> st.SearchStrategy[dict]:
    """Whole event documents of one type and version as they travel (CloudEvents JSON)."""
    envelope = committed_schema("envelope.json")
    return st.builds(
        lambda document, payload: {**document, "type": event_type, "schemaversion": version, "data": payload},
        from_schema(envelope, {}),
        data,
    )


@functools.cache
def payloads(event_type: str, version: int) -> st.SearchStrategy[dict]:
    schema = committed_schema(f"{event_type}/v{version}.json")
    return from_schema(schema, schema.get("$defs", {}))


EVENT_VERSIONS = sorted(registered_types())


@pytest.mark.parametrize(("event_type", "version"), EVENT_VERSIONS, ids=[f"{t}-v{v}" for t, v in EVENT_VERSIONS])
@EXAMPLES
@given(data=st.data())
def test_every_event_version_survives_encode_and_decode_exactly(event_type, version, data):
    document = data.draw(envelopes(event_type, version, payloads(event_type, version)))
    model = registered_types()[(event_type, version)]
    try:
        payload = model.model_validate(document["data"])
    except ValidationError:
        # What the schema cannot say (a value only when the answer is GIVEN, a real ISO code):
        # the reader refuses it, with the reason, and nothing else goes wrong.
        with pytest.raises(InvalidEvent, match=f"invalid {event_type} v{version} payload"):
            decode(json.dumps(document).encode())
        return
    envelope = EventEnvelope.model_validate({**document, "data": payload.model_dump(mode="json")})
    raw = encode(envelope)
    decoded = decode(raw)
    assert decoded.envelope == envelope
    assert decoded.payload == payload
    assert encode(decoded.envelope) == raw  # canonical: the same event has the same bytes
    # What the model writes, the committed schema of its version accepts.
    validator(f"{event_type}/v{version}.json").validate(orjson.loads(raw)["data"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@EXAMPLES
@given(raw=st.binary(max_size=2000))
def test_any_bytes_decode_or_are_refused_as_invalid_events(raw):
    with contextlib.suppress(InvalidEvent):
        decode(raw)


@EXAMPLES
@given(document=json_values)
def test_any_json_decodes_or_is_refused_as_an_invalid_event(document):
    with contextlib.suppress(InvalidEvent):
        decode(json.dumps(document).encode())


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


@st.composite
def damaged_events(draw):
    """A valid-looking event of any type with one part replaced by any JSON or removed, or a
    `sealed` member of any shape added to its data."""
    event_type, version = draw(st.sampled_from(EVENT_VERSIONS))
    document = draw(envelopes(event_type, version, payloads(event_type, version)))
    if draw(st.booleans()):
        # Paths through the event's own fields, which may be objects, strings or absent.
        names = st.sampled_from(sorted(document["data"]) or ["x"])
        paths = st.lists(st.tuples(names, st.sampled_from(["", ".value", ".x.y"])).map("".join), max_size=3)
        document["data"]["sealed"] = draw(json_values | st.fixed_dictionaries({"paths": paths}))
        return document
    path = draw(st.sampled_from([path for path in _paths(document) if path]))
    *parents, last = path
    holder = document
    for key in parents:
        holder = holder[key]
    if draw(st.booleans()):
        holder[last] = draw(json_values)
    else:
        del holder[last]
    return document


@EXAMPLES
@given(document=damaged_events())
def test_a_damaged_event_decodes_or_is_refused_as_an_invalid_event(document):
    with contextlib.suppress(InvalidEvent):
        decode(json.dumps(document).encode())
