"""Conflict-level facts with dates that mean something (services/status/conflict.py): what a
conflict's record refuses, and the state of hostilities with each party at a date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.status.conflict import (
    GENEVA_CONVENTIONS,
    ConflictFactRefused,
    ConflictRecord,
    Entry,
    HostilitiesConflict,
)
from shared.contracts.status import DEFAULT_CONFLICT, ConflictFact, ConflictFactKind

KIND = ConflictFactKind
BEGAN = datetime(2022, 2, 24, tzinfo=UTC)


def on(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def entry(kind: ConflictFactKind, when: datetime, state: str | None = None, *, n: int = 0, conflict="main") -> Entry:
    return Entry(when, n, f"ev-{n}", ConflictFact(kind=kind, state=state, source="s", conflict=conflict))


def record(*entries: Entry, conflict: str = DEFAULT_CONFLICT) -> ConflictRecord:
    built = ConflictRecord(conflict)
    for n, item in enumerate(entries, start=1):
        built = built.with_fact(Entry(item.effective_at, n, f"ev-{n}", item.fact))
    return built


BEGINNING = entry(KIND.CONFLICT_INTERNATIONAL, BEGAN)


def test_the_state_field_per_kind():
    with pytest.raises(ValueError, match="state is required"):
        ConflictFact(kind=KIND.STATE_ACKNOWLEDGED_AS_PARTY, source="s")
    with pytest.raises(ValueError, match="state is absent for CONFLICT_INTERNATIONAL"):
        ConflictFact(kind=KIND.CONFLICT_INTERNATIONAL, state="RU", source="s")
    for kind in (KIND.HOSTILITIES_CEASED, KIND.HOSTILITIES_RESUMED):
        assert ConflictFact(kind=kind, source="s").state is None
        assert ConflictFact(kind=kind, state="KP", source="s").state == "KP"
    assert ConflictFact(kind=KIND.CONFLICT_INTERNATIONAL, source="s").conflict == "main"
    with pytest.raises(ValueError, match="pattern"):
        ConflictFact(kind=KIND.CONFLICT_INTERNATIONAL, source="s", conflict="Main Conflict")


@pytest.mark.parametrize("kind", list(ConflictFactKind))
def test_nothing_before_the_geneva_conventions(kind):
    state = None if kind is KIND.CONFLICT_INTERNATIONAL else "KP"
    with pytest.raises(ConflictFactRefused, match="before 1949-08-12"):
        record().with_fact(entry(kind, on(1949, 8, 11), state))
    record().with_fact(entry(KIND.CONFLICT_INTERNATIONAL, GENEVA_CONVENTIONS))


def test_an_acknowledgement_with_no_recorded_beginning_is_fine():
    acknowledged = record(entry(KIND.STATE_ACKNOWLEDGED_AS_PARTY, on(2025, 4, 28), "KP"))
    assert acknowledged.acknowledged_at("KP", on(2025, 5, 1)).event_id == "ev-1"
    assert acknowledged.acknowledged_at("KP", on(2025, 4, 1)) is None
    assert acknowledged.international_at(on(2025, 5, 1)) is None


@pytest.mark.parametrize("kind", [KIND.STATE_ACKNOWLEDGED_AS_PARTY, KIND.HOSTILITIES_CEASED, KIND.HOSTILITIES_RESUMED])
def test_no_fact_before_the_beginning_of_its_conflict(kind):
    with pytest.raises(ConflictFactRefused, match="before the beginning of the conflict 'main' on 2022-02-24"):
        record(BEGINNING).with_fact(entry(kind, on(1999), "KP"))


@pytest.mark.parametrize("kind", [KIND.HOSTILITIES_CEASED, KIND.HOSTILITIES_RESUMED])
def test_hostilities_cannot_cease_or_resume_in_a_conflict_with_no_recorded_beginning(kind):
    with pytest.raises(ConflictFactRefused, match="needs the beginning of the conflict 'main' first"):
        record().with_fact(entry(kind, on(2025, 6, 1)))


def test_a_beginning_after_facts_already_recorded_is_refused():
    acknowledged = record(entry(KIND.STATE_ACKNOWLEDGED_AS_PARTY, on(2025, 4, 28), "KP"))
    with pytest.raises(ConflictFactRefused, match="would fall before its beginning.*STATE_ACKNOWLEDGED_AS_PARTY KP"):
        acknowledged.with_fact(entry(KIND.CONFLICT_INTERNATIONAL, on(2025, 5, 1)))
    # A beginning at or before them is fine, and an earlier one moves the beginning back.
    begun = acknowledged.with_fact(entry(KIND.CONFLICT_INTERNATIONAL, on(2025, 4, 28), n=2))
    earlier = begun.with_fact(entry(KIND.CONFLICT_INTERNATIONAL, BEGAN, n=3))
    assert earlier.beginning().effective_at == BEGAN
    # A second CONFLICT_INTERNATIONAL after the beginning moves nothing and is fine.
    earlier.with_fact(entry(KIND.CONFLICT_INTERNATIONAL, on(2025, 6, 1), n=4))


def test_facts_of_another_conflict_neither_begin_nor_bound_this_one():
    other = ConflictRecord.of("main", [entry(KIND.CONFLICT_INTERNATIONAL, on(2023), conflict="other"), BEGINNING])
    assert [item.fact.conflict for item in other.entries] == ["main"]
    with pytest.raises(ConflictFactRefused, match="conflict 'other'"):
        record(conflict="other").with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025), conflict="other"))


def test_hostilities_cease_and_resume_per_party_each_from_its_date():
    history = record(
        BEGINNING,
        entry(KIND.STATE_ACKNOWLEDGED_AS_PARTY, on(2025, 4, 28), "KP"),
        entry(KIND.HOSTILITIES_CEASED, on(2025, 6, 1), "KP"),
        entry(KIND.HOSTILITIES_RESUMED, on(2025, 8, 1), "KP"),
        entry(KIND.HOSTILITIES_CEASED, on(2026, 1, 1)),
    )
    assert history.hostilities_at(on(2025, 5, 1)).ceased_with("KP") is None
    assert history.hostilities_at(on(2025, 7, 1)).ceased_with("KP").effective_at == on(2025, 6, 1)
    assert history.hostilities_at(on(2025, 7, 1)).ceased_with("RU") is None
    assert history.hostilities_at(on(2025, 7, 1)).ceased_with(None) is None
    assert history.hostilities_at(on(2025, 9, 1)).ceased_with("KP") is None
    assert history.hostilities_at(on(2026, 2, 1)).ceased_with("RU").effective_at == on(2026, 1, 1)
    assert history.hostilities_at(on(2026, 2, 1)).ceased_with(None) is not None


def test_a_cessation_of_hostilities_that_already_stand_ceased_is_refused():
    ceased = record(BEGINNING, entry(KIND.HOSTILITIES_CEASED, on(2025, 6, 1)))
    with pytest.raises(HostilitiesConflict, match="with KP already stand ceased on 2025-07-01"):
        ceased.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 7, 1), "KP"))
    with pytest.raises(HostilitiesConflict, match="with every party already stand ceased"):
        ceased.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 7, 1)))
    # Before that cessation, hostilities with KP could cease, but the later general one would then
    # still cease the others: fine. Ceasing with every party before it would leave it standing on nothing.
    ceased.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 5, 1), "KP"))
    with pytest.raises(HostilitiesConflict, match="would come before HOSTILITIES_CEASED dated 2025-06-01"):
        ceased.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 5, 1)))


def test_a_resumption_of_hostilities_that_are_not_ceased_is_refused():
    begun = record(BEGINNING)
    with pytest.raises(HostilitiesConflict, match="not ceased with any party on 2025-07-01"):
        begun.with_fact(entry(KIND.HOSTILITIES_RESUMED, on(2025, 7, 1)))
    with pytest.raises(HostilitiesConflict, match="with KP are not ceased on 2025-07-01"):
        begun.with_fact(entry(KIND.HOSTILITIES_RESUMED, on(2025, 7, 1), "KP"))
    ceased_with_kp = begun.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 6, 1), "KP", n=2))
    with pytest.raises(HostilitiesConflict, match="with RU are not ceased"):
        ceased_with_kp.with_fact(entry(KIND.HOSTILITIES_RESUMED, on(2025, 7, 1), "RU", n=3))
    with pytest.raises(HostilitiesConflict, match="with KP are not ceased on 2025-05-01"):
        ceased_with_kp.with_fact(entry(KIND.HOSTILITIES_RESUMED, on(2025, 5, 1), "KP", n=3))
    resumed = ceased_with_kp.with_fact(entry(KIND.HOSTILITIES_RESUMED, on(2025, 7, 1), n=3))
    assert resumed.hostilities_at(on(2025, 8, 1)).ceased_with("KP") is None


def test_a_general_cessation_then_a_resumption_with_one_party():
    history = record(
        BEGINNING,
        entry(KIND.HOSTILITIES_CEASED, on(2025, 6, 1)),
        entry(KIND.HOSTILITIES_RESUMED, on(2025, 7, 1), "KP"),
    )
    after = history.hostilities_at(on(2025, 8, 1))
    assert after.ceased_with("KP") is None and after.ceased_with("RU") is not None
    assert after.ceased_with(None) is None  # not ceased with every party
    with pytest.raises(HostilitiesConflict, match="with RU already stand ceased"):
        history.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 8, 1), "RU"))
    history.with_fact(entry(KIND.HOSTILITIES_CEASED, on(2025, 8, 1)))  # ceases with KP again, and so with all


moments = st.integers(min_value=0, max_value=20).map(lambda d: on(2025, 1, 1 + d))
proposals = st.lists(
    st.tuples(
        st.sampled_from([KIND.HOSTILITIES_CEASED, KIND.HOSTILITIES_RESUMED]),
        moments,
        st.sampled_from([None, "KP", "RU"]),
    ),
    max_size=12,
)


@given(proposals)
def test_whatever_is_accepted_leaves_a_record_every_fact_of_which_follows_from_the_ones_before(proposed):
    current = record(BEGINNING)
    for n, (kind, when, state) in enumerate(proposed, start=2):
        try:
            current = current.with_fact(entry(kind, when, state, n=n))
        except HostilitiesConflict:
            continue
    current.check_hostilities(current.entries[-1])  # folds the whole record without a refusal
