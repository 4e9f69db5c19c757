"""Which partner states see which captives (shared/auth/projections.py): only on a verified wish
to go there and a free and informed consent to disclosure (docs/legal-basis.md, "Wishes by
provenance")."""

from __future__ import annotations

from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.auth.projections import access_tables
from shared.contracts.intake import DisclosureConsentRecorded, WishDeclared

# Who recorded an event, as its envelope says: an ICRC delegate signed in as herself, unless a
# test says otherwise (shared/contracts/standing.py).
DELEGATE = SimpleNamespace(actor_id="person:c-favre", agency_kind="icrc")
OPERATOR_SYSTEM = SimpleNamespace(actor_id="client:captives-operator", agency_kind="operator")
DETAINING_OFFICER = SimpleNamespace(actor_id="person:o-kovalenko", agency_kind="detaining_state")

CAPTIVE = "CAP-0000-0000-0001"


def provenance(setting: str = "PRIVATE_ICRC_INTERVIEW", free: bool = True) -> dict:
    return {
        "interviewer": "ICRC delegate 4",
        "interviewer_agency": "ICRC",
        "setting": setting,
        "free_and_informed": free,
    }


def wish(kind: str, state: str | None = None, **how) -> WishDeclared:
    return WishDeclared(captive_id=CAPTIVE, wish=kind, third_state=state, provenance=provenance(**how))


def consent(given: bool = True, **how) -> DisclosureConsentRecorded:
    return DisclosureConsentRecorded(
        captive_id=CAPTIVE, recipient_state="KR", given=given, purpose="resettlement", provenance=provenance(**how)
    )


def sees(*events) -> bool:
    metadata = sa.MetaData()
    tables = access_tables(metadata)
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        for event in events:
            author, payload = event if isinstance(event, tuple) else (DELEGATE, event)
            tables.apply(session, author, payload)
        return tables.visible(session, "KR", [CAPTIVE]) == {CAPTIVE}


def test_a_verified_wish_and_a_free_consent_open_the_partner_s_view():
    assert sees(wish("THIRD_STATE", "KR"), consent())


def test_a_media_wish_never_opens_it():
    assert not sees(wish("THIRD_STATE", "KR", setting="MEDIA"), consent())


def test_a_media_statement_never_closes_what_a_verified_wish_opened():
    assert sees(wish("THIRD_STATE", "KR"), consent(), wish("REPATRIATE", setting="MEDIA"))


def test_a_consent_not_free_and_informed_counts_for_nothing():
    assert not sees(wish("THIRD_STATE", "KR"), consent(free=False))


def test_a_withdrawal_of_consent_always_counts():
    assert not sees(wish("THIRD_STATE", "KR"), consent(), consent(given=False, free=False))


def test_a_verified_change_of_wish_closes_it():
    assert not sees(wish("THIRD_STATE", "KR"), consent(), wish("STAY_IN_DETAINING_STATE"))


def test_a_private_interview_recorded_by_anyone_but_an_icrc_delegate_opens_nothing():
    # The operator client holds the ICRC scope among many others; a detaining state's officer may
    # name a private interview too: neither is the delegate who heard him.
    assert not sees((OPERATOR_SYSTEM, wish("THIRD_STATE", "KR")), consent())
    assert not sees((DETAINING_OFFICER, wish("THIRD_STATE", "KR")), consent())
    assert not sees(wish("THIRD_STATE", "KR"), (OPERATOR_SYSTEM, consent()))


def test_a_withdrawal_of_consent_counts_whoever_records_it():
    assert not sees(wish("THIRD_STATE", "KR"), consent(), (OPERATOR_SYSTEM, consent(given=False)))
