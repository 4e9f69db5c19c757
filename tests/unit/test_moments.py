"""Times are ISO 8601 strings with a zone, everywhere: a number, or a string of digits that lax
parsing would read as Unix time, is refused in request bodies and in event envelopes alike."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shared.contracts import decode
from shared.contracts.registry import InvalidEvent
from shared.web.http import Moment, When

MOMENT = TypeAdapter(Moment)
# What lax datetime parsing would take for a Unix time, or for some other reading of a time.
NOT_TIMES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=0).map(str),
    st.from_regex(r"\A\d{1,12}(\.\d{1,6})?\Z"),
    st.sampled_from(["2025-01-11", "2025-01-11T09:00:00", "11/01/2025 09:00Z", "now", "", "2025-W02-6"]),
)


@given(NOT_TIMES)
def test_a_request_time_that_is_not_an_iso_8601_string_with_a_zone_is_refused(value):
    with pytest.raises(ValidationError):
        When.model_validate_json(orjson.dumps({"occurred_at": value}))
    with pytest.raises(ValidationError):
        MOMENT.validate_python(value)


def test_iso_8601_times_with_a_zone_are_read_as_they_say():
    for text, expected in (
        ("2025-01-11T09:00:00Z", "2025-01-11T09:00:00+00:00"),
        ("2025-01-11T12:00:00+03:00", "2025-01-11T12:00:00+03:00"),
        ("2025-01-11T09:00:00.123456Z", "2025-01-11T09:00:00.123456+00:00"),
    ):
        assert When.model_validate_json(orjson.dumps({"occurred_at": text})).occurred_at.isoformat() == expected


def test_the_refusal_names_what_a_time_must_be():
    with pytest.raises(ValidationError, match="ISO 8601 string with a zone"):
        When.model_validate_json(b'{"occurred_at": "6"}')


ENVELOPE = {
    "specversion": "1.0",
    "id": "e1",
    "source": "/services/intake",
    "type": "IdentityErased",
    "subject": "CAP-0000-0000-0000",
    "datacontenttype": "application/json",
    "time": "2025-01-11T09:00:00Z",
    "recordedat": "2025-01-11T09:00:00Z",
    "streamversion": 1,
    "schemaversion": 1,
    "correlationid": "c1",
    "actor": "client captives-operator",
    "agency": "operator",
    "data": {"captive_id": "CAP-0000-0000-0000", "erased_by": "operator"},
}


def test_the_envelope_used_below_decodes():
    assert decode(orjson.dumps(ENVELOPE)).envelope.occurred_at.year == 2025


@given(NOT_TIMES, st.sampled_from(["time", "recordedat"]))
def test_an_event_whose_envelope_times_are_not_iso_8601_is_refused(value, field):
    with pytest.raises(InvalidEvent):
        decode(orjson.dumps({**ENVELOPE, field: value}))
