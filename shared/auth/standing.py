"""Steps that take their weight from who takes them: only a person, signed in as himself, of an
agency of a given kind. A field of the request (a name, a body that says "tribunal") proves
nothing; the verified token and the agency directory say who the caller is (shared/auth/gate.py).

A scope says what a caller's roles may do; it is not enough here. The deployment's operator
client holds every role, and an agency's system may hold its agency's: neither is a person, and
what it records could be anyone's. So a step such as a tribunal's ruling is refused (403) unless
the caller is a person of an agency of one of the named kinds (a tribunal), whatever scopes the
token carries. The weight a fact takes from its recorded author, when it is recorded by anyone
but only some authors' records count, is shared/contracts/standing.py's. Declared on a route
after its scope:

    dependencies=[allow(Scope.STATUS_TRIBUNAL), person_of(AgencyKind.TRIBUNAL, step="a tribunal's ruling")]
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException

from shared.auth.gate import Caller, CallerDep
from shared.auth.roles import AgencyKind


def require_person_of(caller: Caller, *kinds: AgencyKind, step: str) -> Caller:
    """`caller` if a person of an agency of one of `kinds`; HTTP 403 naming the step, who may
    take it and who the caller is, otherwise."""
    agency = caller.grant.agency
    if caller.is_person and agency.kind in kinds:
        return caller
    wanted = " or ".join(kind.value for kind in kinds)
    if not caller.is_person:
        who = f"{caller.actor} is a system of {agency.agency_id} (kind {agency.kind.value}), not a person"
    else:
        who = f"{caller.actor} acts for {agency.agency_id} (kind {agency.kind.value})"
    raise HTTPException(
        403,
        f"{step} counts only when taken by a person of an agency of kind {wanted}, signed in as himself or "
        f"herself, whatever roles the token holds: {who}",
    )


class PersonOf:
    """Route dependency: `require_person_of` for the caller of the request."""

    def __init__(self, *kinds: AgencyKind, step: str):
        if not kinds:
            raise ValueError("name at least one kind of agency whose persons may take the step")
        self.kinds = kinds
        self.step = step

    def __call__(self, caller: CallerDep) -> Caller:
        return require_person_of(caller, *self.kinds, step=self.step)

    def __repr__(self) -> str:
        return f"PersonOf({', '.join(kind.value for kind in self.kinds)}: {self.step})"


def person_of(*kinds: AgencyKind, step: str) -> Any:
    return Depends(PersonOf(*kinds, step=step))
