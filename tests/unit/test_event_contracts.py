"""The envelope, the registry and the payload models, with no broker and no database."""

from datetime import UTC, datetime

import orjson
import pytest

from shared.contracts import EventEnvelope, InvalidEvent, UnknownEventType, decode, encode, registered_types
from shared.contracts.intake import Art17Text, CaptiveRegistered
from tests.support import registration


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

    for (name, _version), model in registered_types().items():
        if model.__module__ != "shared.contracts.intake":
            continue
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
