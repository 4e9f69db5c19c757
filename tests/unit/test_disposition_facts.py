"""Folding dated facts into what the disposition rules read, as of a moment and as known at
another (services/disposition/facts.py), and the workflow transition tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.disposition.facts import Dated, fold
from services.disposition.rules import disposition, exchange_eligibility
from services.disposition.workflow import (
    DISPOSITION_STEPS,
    LIST_STEPS,
    Disposition,
    DispositionStage,
    ExchangeList,
    ListStage,
    StepConflict,
)
from shared.contracts.disposition import DispositionKind, DispositionStep, ListStep

CAPTIVE = "CAP-0000-0000-0001"


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_counter = iter(range(1, 10_000))


def fact(type_: str, effective: str, recorded: str | None = None, **data) -> Dated:
    n = next(_counter)
    return Dated(f"ev-{n}-{type_}", type_, day(effective), day(recorded or effective), data, n)


REGISTERED = fact(
    "CaptiveRegistered",
    "2025-01-11",
    captured_at="2025-01-11T00:00:00Z",
    nationality=None,
    armed_force={"force": "Korean People's Army", "force_state": "KP", "integrated_in_forces_of": "RU"},
)
POW = fact("StatusDetermined", "2025-01-11", status="PRESUMED_POW")


def verified(wish: str, effective: str, third_state=None, recorded=None) -> Dated:
    return fact(
        "WishDeclared",
        effective,
        recorded,
        wish=wish,
        third_state=third_state,
        setting="PRIVATE_ICRC_INTERVIEW",
        free_and_informed=True,
        standing="ICRC_DELEGATE",  # recorded by an ICRC delegate as herself
    )


def assessed(destination: str, outcome: str, effective: str, recorded=None, **more) -> Dated:
    return fact(
        "RiskAssessed",
        effective,
        recorded,
        destination=destination,
        outcome=outcome,
        would_hand_on=more.pop("would_hand_on", False),
        onward_states=more.pop("onward_states", []),
        diplomatic_assurances=False,
        relies_on_assurances=False,
        standing=more.pop("standing", "DETAINING_STATE_OFFICER"),
        **more,
    )


BASE = [REGISTERED, POW]


def test_the_home_state_is_his_force_s_state_never_his_nationality():
    folded = fold(CAPTIVE, BASE, day("2025-02-01"))
    assert folded.home_state == "KP" and folded.parties == ("KP", "RU")
    no_force = fact("CaptiveRegistered", "2025-01-11", captured_at="2025-01-11T00:00:00Z", nationality="KR")
    assert fold(CAPTIVE, [no_force], day("2025-02-01")).home_state is None


def test_the_newest_assessment_by_its_own_date_stands_whatever_the_recording_order():
    newer_real = assessed("RU", "REAL_RISK", "2025-03-01", recorded="2025-03-01")
    older_clear = assessed("RU", "NO_REAL_RISK", "2025-02-01", recorded="2025-03-05")  # entered later
    folded = fold(CAPTIVE, [*BASE, newer_real, older_clear], day("2025-04-01"))
    assert folded.risks["RU"].outcome.value == "REAL_RISK"


def test_a_media_statement_never_overrides_a_verified_wish():
    facts = [
        *BASE,
        verified("REPATRIATE", "2025-02-01"),
        fact(
            "WishDeclared", "2025-03-01", wish="THIRD_STATE", third_state="KR", setting="MEDIA", free_and_informed=True
        ),
    ]
    folded = fold(CAPTIVE, facts, day("2025-04-01"))
    assert folded.wish.wish.value == "REPATRIATE" and folded.unverified_wish.setting.value == "MEDIA"


def test_a_later_verified_wish_replaces_the_earlier_one():
    facts = [*BASE, verified("REPATRIATE", "2025-02-01"), verified("THIRD_STATE", "2025-03-01", "KR")]
    assert fold(CAPTIVE, facts, day("2025-04-01")).wish.describe() == "THIRD_STATE to KR"
    assert fold(CAPTIVE, facts, day("2025-02-15")).wish.describe() == "REPATRIATE"


def test_eligibility_as_of_a_date_before_the_wish_was_first_heard_does_not_use_it():
    facts = [*BASE, verified("REPATRIATE", "2025-04-01"), assessed("RU", "NO_REAL_RISK", "2025-02-01")]
    before = exchange_eligibility(fold(CAPTIVE, facts, day("2025-03-15")), "RU")
    after = exchange_eligibility(fold(CAPTIVE, facts, day("2025-04-02")), "RU")
    assert not before.allowed and [r.rule_id for r in before.blocked_by] == ["D3"]
    assert after.allowed


def test_known_at_leaves_out_facts_recorded_later():
    late = verified("REPATRIATE", "2025-02-01", recorded="2025-05-01")  # effective in February, learned in May
    facts = [*BASE, late, assessed("RU", "NO_REAL_RISK", "2025-02-01")]
    assert fold(CAPTIVE, facts, day("2025-03-01"), known_at=day("2025-04-01")).wish is None
    assert fold(CAPTIVE, facts, day("2025-03-01")).wish is not None


def test_an_exposure_makes_older_assessments_of_his_home_state_and_those_who_would_hand_him_on_stale():
    facts = [
        *BASE,
        assessed("KP", "NO_REAL_RISK", "2025-02-01"),
        assessed("RU", "NO_REAL_RISK", "2025-02-01", would_hand_on=True, onward_states=["KP"]),
        assessed("KR", "NO_REAL_RISK", "2025-02-01"),
        fact("MediaExposureRecorded", "2025-03-01", kind="IMAGES_PUBLISHED"),
    ]
    folded = fold(CAPTIVE, facts, day("2025-04-01"))
    assert folded.risks["KP"].stale_since and folded.risks["RU"].stale_since
    assert folded.risks["KR"].stale_since is None  # would not hand him on: not concerned
    again = fold(CAPTIVE, [*facts, assessed("KP", "NO_REAL_RISK", "2025-03-10")], day("2025-04-01"))
    assert again.risks["KP"].stale_since is None


def test_a_wish_to_defect_made_public_raises_the_risk():
    facts = [
        *BASE,
        assessed("KP", "NO_REAL_RISK", "2025-02-01"),
        fact(
            "WishDeclared", "2025-03-01", wish="THIRD_STATE", third_state="KR", setting="MEDIA", free_and_informed=False
        ),
    ]
    assert fold(CAPTIVE, facts, day("2025-04-01")).risks["KP"].stale_since


def test_hostilities_cease_and_resume_per_party_from_their_dates():
    ceased_1999 = fact("ConflictFactRecorded", "1999-06-01", kind="HOSTILITIES_CEASED", state=None, conflict="main")
    ceased_2000 = fact("ConflictFactRecorded", "2000-06-01", kind="HOSTILITIES_CEASED", state="KP", conflict="main")
    before_capture = fold(CAPTIVE, [*BASE, ceased_1999, ceased_2000], day("2025-06-01")).hostilities
    assert before_capture.ceased and before_capture.contradiction  # taken after both: a contradiction
    ceased = fact("ConflictFactRecorded", "2025-09-01", kind="HOSTILITIES_CEASED", state=None, conflict="main")
    assert fold(CAPTIVE, [*BASE, ceased], day("2025-10-01")).hostilities.ceased
    assert not fold(CAPTIVE, [*BASE, ceased], day("2025-08-01")).hostilities.ceased
    only_kp = fact("ConflictFactRecorded", "2025-09-01", kind="HOSTILITIES_CEASED", state="KP", conflict="main")
    assert not fold(CAPTIVE, [*BASE, only_kp], day("2025-10-01")).hostilities.ceased  # not yet with RU
    resumed = fact("ConflictFactRecorded", "2025-11-01", kind="HOSTILITIES_RESUMED", state="RU", conflict="main")
    assert not fold(CAPTIVE, [*BASE, ceased, resumed], day("2025-12-01")).hostilities.ceased


def test_a_capture_after_a_cessation_is_a_contradiction_for_the_legal_officer_never_a_lifelong_block():
    # Captured in 2025 after a cessation recorded in 1999 with no resumption: either hostilities
    # went on unrecorded or he was taken after their end; he may not be held for ever on that
    # account (Art. 118), and the contradiction is named.
    sick = fact(
        "MedicalAssessed",
        "2025-02-01",
        seriously_wounded_or_sick=True,
        by_mixed_medical_commission=True,
        standing="MIXED_MEDICAL_COMMISSION",
    )
    ceased_1999 = fact("ConflictFactRecorded", "1999-06-01", kind="HOSTILITIES_CEASED", state=None, conflict="main")
    facts = [*BASE, sick, ceased_1999, assessed("KP", "NO_REAL_RISK", "2025-02-01")]
    folded = fold(CAPTIVE, facts, day("2025-06-01"))
    assert folded.hostilities.ceased
    assert "captured on 2025-01-11" in folded.hostilities.contradiction
    verdict = disposition(DispositionKind.REPATRIATION_AFTER_HOSTILITIES, folded, None)
    assert verdict.allowed
    assert any(f.name == "contradiction" for f in verdict.facts)
    # A resumption recorded after it resolves the contradiction: he was taken in hostilities.
    resumed = fact("ConflictFactRecorded", "2000-01-01", kind="HOSTILITIES_RESUMED", state=None, conflict="main")
    again = fold(CAPTIVE, [*facts, resumed], day("2025-06-01"))
    assert not again.hostilities.ceased and again.hostilities.contradiction is None


def test_a_prosecution_is_open_from_its_opening_until_it_is_closed():
    opened = fact("ProsecutionRecorded", "2025-02-01", proceedings_id="P-1", stage="OPENED")
    closed = fact("ProsecutionRecorded", "2025-05-01", proceedings_id="P-1", stage="CLOSED")
    assert fold(CAPTIVE, [*BASE, opened, closed], day("2025-03-01")).open_prosecutions == {"P-1": opened.event_id}
    assert fold(CAPTIVE, [*BASE, opened, closed], day("2025-06-01")).open_prosecutions == {}


def test_death_ends_custody_for_good():
    died = fact("MovementRecorded", "2025-03-01", kind="DIED")
    recaptured = fact("MovementRecorded", "2025-04-01", kind="RECAPTURED")
    folded = fold(CAPTIVE, [*BASE, died, recaptured], day("2025-05-01"))
    assert folded.dead and not folded.in_custody


def test_escape_and_recapture():
    escaped = fact("MovementRecorded", "2025-03-01", kind="ESCAPED")
    recaptured = fact("MovementRecorded", "2025-04-01", kind="RECAPTURED")
    assert not fold(CAPTIVE, [*BASE, escaped, recaptured], day("2025-03-15")).in_custody
    assert fold(CAPTIVE, [*BASE, escaped, recaptured], day("2025-04-15")).in_custody


def test_every_answer_names_the_events_it_used():
    facts = [*BASE, verified("REPATRIATE", "2025-04-01")]
    assert fold(CAPTIVE, facts, day("2025-03-01")).used_events == (REGISTERED.event_id, POW.event_id)


# -- the transition tables --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(DispositionStage))
@pytest.mark.parametrize("step", list(DISPOSITION_STEPS))
def test_a_disposition_step_follows_only_the_stages_its_table_names(stage, step):
    allowed_from, leads_to = DISPOSITION_STEPS[step]
    kind = (
        DispositionKind.NEUTRAL_REPATRIATION_COMMISSION
        if step is DispositionStep.HAND_TO_COMMISSION or stage is DispositionStage.WITH_COMMISSION
        else DispositionKind.ART_12_TRANSFER
    )
    state = Disposition("DSP-1", CAPTIVE, kind=kind, stage=stage)
    if stage in allowed_from and not (
        step is DispositionStep.COMPLETE
        and kind.name.startswith("NEUTRAL")
        and stage is not DispositionStage.WITH_COMMISSION
    ):
        assert state.next_stage(step) is leads_to
    else:
        with pytest.raises(StepConflict):
            state.next_stage(step)


def test_a_commission_release_needs_the_hand_over_first():
    approved = Disposition(
        "DSP-1", CAPTIVE, kind=DispositionKind.NEUTRAL_REPATRIATION_COMMISSION, stage=DispositionStage.APPROVED
    )
    with pytest.raises(StepConflict, match="handed to the commission"):
        approved.next_stage(DispositionStep.COMPLETE)
    transfer = Disposition("DSP-2", CAPTIVE, kind=DispositionKind.ART_12_TRANSFER, stage=DispositionStage.APPROVED)
    with pytest.raises(StepConflict, match="not a hand-over"):
        transfer.next_stage(DispositionStep.HAND_TO_COMMISSION)


@pytest.mark.parametrize("stage", list(ListStage))
@pytest.mark.parametrize("step", list(LIST_STEPS))
def test_a_list_step_follows_only_the_stages_its_table_names(stage, step):
    allowed_from, leads_to = LIST_STEPS[step]
    state = ExchangeList("XL-1", stage=stage)
    if stage in allowed_from:
        assert state.next_stage(step) is leads_to
    else:
        with pytest.raises(StepConflict, match=f"{step.value} needs it to be"):
            state.next_stage(step)


def test_an_executed_list_cannot_be_checked_or_executed_again():
    done = ExchangeList("XL-1", stage=ListStage.EXECUTED)
    for step in (ListStep.CHECK, ListStep.EXECUTE, ListStep.APPROVE):
        with pytest.raises(StepConflict):
            done.next_stage(step)
