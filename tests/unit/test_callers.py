"""Who a verified token says the caller is, as events record it: a person by his subject (the
two-person rule compares those), shown by name and username; a system by its client id."""

from __future__ import annotations

import pytest

from shared.auth.agencies import Agency
from shared.auth.gate import Caller, Grant, second_factor_missing
from shared.auth.oidc import VerifiedCaller
from shared.auth.roles import ROLE_SCOPES, SECOND_FACTOR_ROLES, AgencyKind, Role, Scope

HQ = Agency(agency_id="ua-coordination-hq", name="HQ", kind=AgencyKind.DETAINING_STATE)
KR = Agency(agency_id="kr-liaison", name="KR", kind=AgencyKind.PARTNER_STATE, state="KR")


def caller(agency: Agency = HQ, roles=(Role.DISPOSITION_OFFICER,), **verified) -> Caller:
    fields = {
        "subject": "0b6f2c1e-5d2a-4c8e-9f1a-7e3d2b1c0a99",
        "agency_id": agency.agency_id,
        "roles": frozenset(roles),
        "client_id": None,
        "username": "i.bondarenko",
        "name": "Iryna Bondarenko",
        "token_id": "t1",
        "expires_at": 0,
    }
    return Caller(Grant(VerifiedCaller(**fields | verified), agency, frozenset(roles)), purpose=None)


def test_a_person_is_recorded_by_subject_and_shown_by_name_and_username():
    person = caller()
    assert person.is_person
    assert person.actor_id == "person:0b6f2c1e-5d2a-4c8e-9f1a-7e3d2b1c0a99"
    assert person.actor == "Iryna Bondarenko (i.bondarenko)"
    assert person.may(Scope.DISPOSITION_PROPOSE) and not person.may(Scope.DISPOSITION_APPROVE)


def test_a_system_is_never_a_person():
    system = caller(client_id="hq-disposition", username="service-account-hq-disposition", name=None)
    assert not system.is_person
    assert (system.actor_id, system.actor, system.client_id) == (
        "client:hq-disposition",
        "client hq-disposition",
        "hq-disposition",
    )


def test_a_name_the_person_edited_cannot_carry_controls_or_bidi_overrides_or_overflow_the_event():
    spoofed = caller(name="Mariia\u202e Shevchenko\x85", username="m" * 300)
    assert "\u202e" not in spoofed.actor and "\x85" not in spoofed.actor
    assert len(spoofed.actor) <= 200  # the envelope's limit
    # The identity the rules compare is the subject, whatever the name says.
    assert spoofed.actor_id == caller().actor_id


def test_a_partner_state_s_caller_speaks_for_its_state_only():
    liaison = caller(KR, roles=(Role.PARTNER_STATE_LIAISON,), username="kim.jiwoo", name="Jiwoo Kim")
    assert liaison.partner_state == "KR" and caller().partner_state is None


def test_a_recorded_name_has_one_spelling_and_no_embedding_or_isolate_to_dress_it():
    # Issue 25: a person who edits his own name got bidi isolates and embeddings into the actor.
    dressed = caller(name="\u2067Mariia\u2069 \u202bShevchenko\u202c", username="m.shevchenko")
    assert dressed.actor == "Mariia Shevchenko (m.shevchenko)"
    decomposed = caller(name="Lysenko\u0301", username="d.lysenko")  # combining acute accent
    assert decomposed.actor.startswith("Lysenk\u00f3")
    hebrew = caller(name="\u05d3\u05d5\u05d3\u200f", username="d.levi")  # a right-to-left mark stays
    assert "\u200f" in hebrew.actor


def test_provisioning_refuses_a_demo_person_whose_name_is_dressed(tmp_path):
    from deploy.keycloak.provision import demo_persons

    persons = tmp_path / "persons.toml"
    persons.write_text(
        '[[persons]]\nusername = "x.y"\nfirst_name = "X\u2066"\nlast_name = "Y"\n'
        'agency_id = "icrc"\nroles = ["icrc_delegate"]\n'
    )
    with pytest.raises(ValueError, match="not a name as events record it"):
        demo_persons(persons)


def verified(roles=(Role.DISPOSITION_APPROVER,), **fields) -> VerifiedCaller:
    return caller(roles=roles, **fields).grant.verified


def test_a_person_who_decides_needs_a_second_factor_his_token_shows():
    assert second_factor_missing(verified(methods=frozenset({"pwd"}))) == {Role.DISPOSITION_APPROVER}
    assert second_factor_missing(verified(methods=frozenset())) == {Role.DISPOSITION_APPROVER}  # silent: refused
    assert second_factor_missing(verified(methods=frozenset({"pwd", "otp"}))) == frozenset()
    assert second_factor_missing(verified(methods=frozenset({"hwk"}))) == frozenset()
    # A person whose roles decide nothing, and an agency's system, sign in as before.
    assert second_factor_missing(verified(roles=(Role.INTAKE_OFFICER,), methods=frozenset({"pwd"}))) == frozenset()
    system = verified(client_id="hq-approver", username="service-account-hq-approver", name=None)
    assert second_factor_missing(system) == frozenset()


def test_every_role_of_a_two_person_step_a_ruling_or_a_weighty_record_needs_a_second_factor():
    deciding = {
        role
        for role, scopes in ROLE_SCOPES.items()
        if scopes & {Scope.DISPOSITION_PROPOSE, Scope.DISPOSITION_APPROVE, Scope.STATUS_TRIBUNAL, Scope.INTAKE_ICRC}
    }
    assert deciding - {Role.INTAKE_OFFICER} <= SECOND_FACTOR_ROLES, deciding - SECOND_FACTOR_ROLES
    assert Role.PARTNER_STATE_LIAISON not in SECOND_FACTOR_ROLES and Role.AUDITOR not in SECOND_FACTOR_ROLES
