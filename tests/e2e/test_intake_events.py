"""Every intake event type travels end to end: through the outbox and the real broker, decodable
by every consumer, with nothing sent to a dead-letter topic."""

from __future__ import annotations

import pytest

from shared.contracts import decode, registered_types
from shared.contracts.registry import declared_in
from shared.contracts.topics import dead_letter
from tests.support import HEADERS, caught_up, read_topic, registration, wait_until

pytestmark = pytest.mark.integration

INTAKE_TYPES = {
    name for (name, _), model in registered_types().items() if declared_in(model, "shared.contracts.intake")
} - {"IdentityErased"}  # appended by `captives erase`, not the API: tests/e2e/test_erasure.py


def test_each_intake_event_type_reaches_the_topic_and_every_consumer_takes_it(stack):
    intake = stack["intake"]
    captive_id = intake.post("/v1/captives", json=registration(), headers=HEADERS).json()["captive_id"]
    facts = [
        ("medical-assessments", {"assessor": "Dr. K", "findings": "fit", "seriously_wounded_or_sick": False}),
        ("movements", {"kind": "ARRIVED_AT_CAMP", "location": "Camp 1"}),
        ("icrc-visits", {"delegate": "D. Müller", "place": "Camp 1", "private_interview": True}),
        (
            "wishes",
            {
                "wish": "UNDECIDED",
                "provenance": {
                    "interviewer": "O. Petrenko",
                    "interviewer_agency": "UA-HQ",
                    "setting": "OFFICIAL_INTERVIEW",
                    "free_and_informed": True,
                },
            },
        ),
        ("capture-card", {"action": "OFFERED"}),
        (
            "disclosure-consents",
            {
                "recipient_state": "KR",
                "given": True,
                "purpose": "resettlement request",
                "provenance": {
                    "interviewer": "D. Müller",
                    "interviewer_agency": "ICRC",
                    "setting": "PRIVATE_ICRC_INTERVIEW",
                    "free_and_informed": True,
                },
            },
        ),
        ("notifications", {"recipient": "CENTRAL_TRACING_AGENCY", "fields_sent": ["surname"]}),
        ("force-membership", {"force": "Korean People's Army", "force_state": "KP", "basis": "unit papers"}),
        (
            "prosecutions",
            {"proceedings_id": "UA-1", "stage": "OPENED", "court": "Kyiv military court", "offence": "a charge"},
        ),
        ("media-exposures", {"kind": "IDENTITY_PUBLISHED", "outlet": "a television channel", "details": "his name"}),
    ]
    for what, body in facts:
        answer = intake.post(f"/v1/captives/{captive_id}/{what}", json=body, headers=HEADERS)
        assert answer.status_code == 201, (what, answer.text)
    amended = intake.post(
        f"/v1/captives/{captive_id}/identity-amendments",
        headers={**HEADERS, "If-Match": '"11"'},
        json={"field": "service_number", "current": {"answer": "GIVEN", "value": "7-771"}, "reason": "recalled"},
    )
    assert amended.status_code == 201, amended.text

    topic = f"{stack['topic_prefix']}intake.events.v1"

    def published():
        mine = [decode(r.value) for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == captive_id]
        return mine if len(mine) == 12 else None

    events = wait_until(published, timeout_s=30, what="the captive's 12 events on the topic")
    assert {event.envelope.type for event in events} == INTAKE_TYPES
    assert [event.envelope.stream_version for event in events] == list(range(1, 13))
    history = intake.get(f"/v1/captives/{captive_id}/events").json()
    assert [event.envelope.id for event in events] == [event["id"] for event in history]

    # Both consumers have read past these events...
    prefix = stack["topic_prefix"]
    for group in (f"{prefix}status", f"{prefix}disposition"):
        wait_until(
            lambda group=group: caught_up(stack["bootstrap"], group, topic),
            timeout_s=30,
            what=f"{group} to consume the whole topic",
        )
    assert stack["disposition"].get(f"/v1/captives/{captive_id}").json()["registered"] is True
    assert stack["status"].get(f"/v1/captives/{captive_id}").json()["status"] == "PRESUMED_POW"
    # ...and none of them found an event it could not decode.
    assert read_topic(stack["bootstrap"], dead_letter(topic)) == []
