"""Synthetic, fictional events for the benchmarks: one shape of registration, one way to wrap a
payload in an envelope as an upstream service would have."""

from __future__ import annotations

import uuid

from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.intake import CaptiveRegistered


def registration(captive_id: str) -> CaptiveRegistered:
    return CaptiveRegistered.model_validate(
        {
            "captive_id": captive_id,
            "surname": {"answer": "GIVEN", "value": "리", "romanised": "Ri"},
            "first_names": {"answer": "DECLINED"},
            "rank": {"answer": "UNKNOWN"},
            "date_of_birth": {"answer": "UNKNOWN"},
            "service_number": {"answer": "DECLINED"},
            "nationality": "KP",
            "claimed_affiliation": "INTEGRATED_IN_COBELLIGERENT_FORCES",
            "capture": {"captured_at": "2025-01-11T09:00:00Z", "place": "Kursk oblast", "capturing_unit": "unit"},
            # R3 reads the force, not the nationality: B8's acknowledgement of KP re-decides him.
            "armed_force": {"force": "Korean People's Army", "force_state": "KP"},
        }
    )


# The standing a benchmark's wishes are recorded with: an ICRC delegate as herself, as verifies them.
ICRC_DELEGATE = {"actor_id": "person:bench-delegate", "agency_kind": "icrc"}


def envelope(
    payload: EventPayload, subject: str, source: str = "/services/intake", author: dict | None = None
) -> EventEnvelope:
    return EventEnvelope(
        id=str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        subject=subject,
        occurred_at="2025-01-12T00:00:00Z",
        recorded_at="2025-01-12T00:00:00Z",
        stream_version=1,
        schema_version=payload.schema_version,
        correlation_id="bench",
        actor="bench",
        agency="bench",
        **(author or {}),
        data=payload.model_dump(mode="json"),
    )


def registration_body(surname: str = "리", romanised: str = "Ri") -> dict:
    """A registration as an intake officer sends it over HTTP (fictional person)."""
    return {
        "surname": {"answer": "GIVEN", "value": surname, "romanised": romanised},
        "first_names": {"answer": "DECLINED"},
        "rank": {"answer": "GIVEN", "value": "전사", "romanised": "Private"},
        "date_of_birth": {"answer": "UNKNOWN"},
        "service_number": {"answer": "DECLINED"},
        "nationality": "KP",
        "claimed_affiliation": "INTEGRATED_IN_COBELLIGERENT_FORCES",
        "capture": {"captured_at": "2025-01-11T09:00:00Z", "place": "Kursk oblast", "capturing_unit": "unit"},
    }
