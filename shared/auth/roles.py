"""Who may do what: the scopes each endpoint requires, the roles agencies' clients hold, and the
data tiers each role may read. One table, so a reviewer can check the whole policy at a glance
and the matrix test can walk it.

Least privilege, from ICRC data-protection practice: reading identities, health and what a
captive wishes or risks is granted only to the roles whose work needs it; everyone reads the
reference tier (pseudonymous case reference, status, custody state).
"""

from __future__ import annotations

from enum import StrEnum

from shared.contracts.tiers import DataTier


class Scope(StrEnum):
    # intake
    INTAKE_READ = "intake:read"  # one captive's record and history
    INTAKE_OVERVIEW = "intake:overview"  # questions across captives (overdue obligations)
    INTAKE_REGISTER = "intake:register"  # registration and the later facts an intake officer records
    INTAKE_MEDICAL = "intake:medical"  # health assessments
    INTAKE_ICRC = "intake:icrc"  # ICRC visits, wishes heard in private, consents to disclosure
    # status
    STATUS_READ = "status:read"
    STATUS_FACTS = "status:facts"  # conflict-level facts and findings of fact
    STATUS_RULEBOOK = "status:rulebook"  # adopting a rulebook version
    STATUS_CONVENE = "status:tribunal:convene"  # convening an Art. 5 tribunal
    STATUS_TRIBUNAL = "status:tribunal"  # hearings, rulings, reviews
    # disposition
    DISPOSITION_READ = "disposition:read"
    DISPOSITION_OVERVIEW = "disposition:overview"  # exchange lists (many captives at once)
    DISPOSITION_RISK = "disposition:risk"  # risk assessments, states' assurances
    DISPOSITION_CLAIMS = "disposition:claims"  # a partner state's claim of a captive
    DISPOSITION_PROPOSE = "disposition:propose"  # draft, check, propose and carry out
    DISPOSITION_APPROVE = "disposition:approve"  # the second person of the two-person rule
    # across services
    FEED_READ = "feed:read"
    AUDIT_READ = "audit:read"  # the access log
    # data tiers beyond reference
    TIER_IDENTITY = "tier:identity"
    TIER_MEDICAL = "tier:medical"
    TIER_WISHES_AND_RISK = "tier:wishes_and_risk"


class Role(StrEnum):
    INTAKE_OFFICER = "intake_officer"
    LEGAL_OFFICER = "legal_officer"
    TRIBUNAL = "tribunal"
    DISPOSITION_OFFICER = "disposition_officer"
    DISPOSITION_APPROVER = "disposition_approver"
    ICRC_DELEGATE = "icrc_delegate"
    MEDICAL_COMMISSION_MEMBER = "medical_commission_member"  # a mixed medical commission (Art. 112, Annex II)
    PARTNER_STATE_LIAISON = "partner_state_liaison"
    AUDITOR = "auditor"


S = Scope
_READ_ALL = {S.INTAKE_READ, S.STATUS_READ, S.DISPOSITION_READ}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.INTAKE_OFFICER: frozenset(
        _READ_ALL
        | {S.INTAKE_OVERVIEW, S.INTAKE_REGISTER, S.INTAKE_MEDICAL, S.FEED_READ, S.TIER_IDENTITY, S.TIER_MEDICAL}
    ),
    Role.LEGAL_OFFICER: frozenset(
        _READ_ALL
        | {
            S.INTAKE_OVERVIEW,
            S.STATUS_FACTS,
            S.STATUS_RULEBOOK,
            S.STATUS_CONVENE,
            S.DISPOSITION_OVERVIEW,
            S.DISPOSITION_RISK,
            S.DISPOSITION_CLAIMS,  # a claim that arrives by diplomatic note
            S.FEED_READ,
            S.TIER_IDENTITY,
            S.TIER_WISHES_AND_RISK,
        }
    ),
    Role.TRIBUNAL: frozenset(_READ_ALL | {S.STATUS_TRIBUNAL, S.TIER_IDENTITY}),
    Role.DISPOSITION_OFFICER: frozenset(
        _READ_ALL
        | {S.DISPOSITION_OVERVIEW, S.DISPOSITION_PROPOSE, S.DISPOSITION_RISK, S.FEED_READ, S.TIER_WISHES_AND_RISK}
    ),
    Role.DISPOSITION_APPROVER: frozenset(
        _READ_ALL | {S.DISPOSITION_OVERVIEW, S.DISPOSITION_APPROVE, S.TIER_WISHES_AND_RISK}
    ),
    # The Central Tracing Agency receives identities and health (Arts. 122-123); delegates hear wishes.
    Role.ICRC_DELEGATE: frozenset(
        _READ_ALL
        | {
            S.INTAKE_OVERVIEW,
            S.INTAKE_ICRC,
            S.DISPOSITION_OVERVIEW,
            S.FEED_READ,
            S.TIER_IDENTITY,
            S.TIER_MEDICAL,
            S.TIER_WISHES_AND_RISK,
        }
    ),
    # A mixed medical commission examines the sick and wounded and decides who is to be repatriated
    # (Arts. 110, 112; Annex II): it records its findings, and must know whom it examined.
    Role.MEDICAL_COMMISSION_MEMBER: frozenset(_READ_ALL | {S.INTAKE_MEDICAL, S.TIER_IDENTITY, S.TIER_MEDICAL}),
    # Only about captives who asked to go to that state and consented (see shared/auth/disclosure.py).
    Role.PARTNER_STATE_LIAISON: frozenset(
        _READ_ALL | {S.DISPOSITION_CLAIMS, S.FEED_READ, S.TIER_IDENTITY, S.TIER_WISHES_AND_RISK}
    ),
    # Auditors see who did and read what, never the sensitive data itself.
    Role.AUDITOR: frozenset(_READ_ALL | {S.INTAKE_OVERVIEW, S.DISPOSITION_OVERVIEW, S.FEED_READ, S.AUDIT_READ}),
}

TIER_SCOPES = {
    DataTier.IDENTITY: S.TIER_IDENTITY,
    DataTier.MEDICAL: S.TIER_MEDICAL,
    DataTier.WISHES_AND_RISK: S.TIER_WISHES_AND_RISK,
}
SENSITIVE_TIERS = frozenset(TIER_SCOPES)


class AgencyKind(StrEnum):
    DETAINING_STATE = "detaining_state"  # coordination headquarters, intelligence, legal, disposition
    TRIBUNAL = "tribunal"
    ICRC = "icrc"
    # Two neutral doctors appointed by the ICRC and one of the detaining Power (Annex II, Art. 1).
    MIXED_MEDICAL_COMMISSION = "mixed_medical_commission"
    PARTNER_STATE = "partner_state"
    OVERSIGHT = "oversight"  # auditors, ombudsman
    # The deployment's own tools (test suites, benchmarks, `captives` commands): every role but
    # a partner state's, which would narrow what they see. A system, never a person: whatever it
    # records names the client, and it cannot be either person of the two-person rule.
    OPERATOR = "operator"


# Which roles an agency of each kind may give its clients: a partner state cannot hold a
# detaining state's roles, however its client is configured.
KIND_ROLES: dict[AgencyKind, frozenset[Role]] = {
    AgencyKind.DETAINING_STATE: frozenset(
        {
            Role.INTAKE_OFFICER,
            Role.LEGAL_OFFICER,
            Role.DISPOSITION_OFFICER,
            Role.DISPOSITION_APPROVER,
        }
    ),
    AgencyKind.TRIBUNAL: frozenset({Role.TRIBUNAL}),
    AgencyKind.ICRC: frozenset({Role.ICRC_DELEGATE}),
    AgencyKind.MIXED_MEDICAL_COMMISSION: frozenset({Role.MEDICAL_COMMISSION_MEMBER}),
    AgencyKind.PARTNER_STATE: frozenset({Role.PARTNER_STATE_LIAISON}),
    AgencyKind.OVERSIGHT: frozenset({Role.AUDITOR}),
    AgencyKind.OPERATOR: frozenset(Role) - {Role.PARTNER_STATE_LIAISON},
}


def scopes_of(roles: set[Role] | frozenset[Role]) -> frozenset[Scope]:
    return frozenset().union(*(ROLE_SCOPES[role] for role in roles)) if roles else frozenset()


def tiers_of(scopes: set[str] | frozenset[str]) -> frozenset[DataTier]:
    """The reference tier always; the others as the scopes grant."""
    return frozenset({DataTier.REFERENCE} | {tier for tier, scope in TIER_SCOPES.items() if scope in scopes})


# The persons whose own record decides a captive's fate or gives a fact its legal weight: who
# proposes and approves a removal, rules as a tribunal, clears a destination or adopts the rules,
# hears a captive's wishes for the ICRC, or finds him fit or unfit as a medical commission. They
# sign in with a second factor (TOTP in the demo realm); the services refuse such a person's token
# that says it was issued on a password alone (shared/auth/gate.py), so a realm misconfigured or a
# factor removed fails closed. Agencies' systems and the other persons sign in as before.
SECOND_FACTOR_ROLES = frozenset(
    {
        Role.DISPOSITION_OFFICER,
        Role.DISPOSITION_APPROVER,
        Role.TRIBUNAL,
        Role.LEGAL_OFFICER,
        Role.ICRC_DELEGATE,
        Role.MEDICAL_COMMISSION_MEMBER,
    }
)
