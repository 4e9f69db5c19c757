"""The two read models every service keeps for access control, rebuilt from events like any other:

- `partner_visibility`: which partner states may see which captives. A partner state sees a
  captive only while his standing verified wish is to go to that state AND his free and informed
  consent to disclosure to it stands (both intake events, which every service receives).
- `access_log`: one row per captive per recorded read of sensitive data (DataAccessed events on
  the service's own topic), what auditors query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.access import DataAccessed
from shared.contracts.intake import DisclosureConsentRecorded, InterviewSetting, Wish, WishDeclared
from shared.contracts.standing import Standing, standing, verifies_wish
from shared.eventstore.projector import Projection
from shared.eventstore.rows import rows
from shared.platform.db import UtcDateTime

VISIBILITY_EVENTS = ("WishDeclared", "DisclosureConsentRecorded")


@dataclass(frozen=True)
class AccessTables:
    partner_visibility: sa.Table
    access_log: sa.Table

    @property
    def all(self) -> tuple[sa.Table, ...]:
        return (self.partner_visibility, self.access_log)

    # -- applying events ------------------------------------------------------------------------

    def apply(self, session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
        match payload:
            case WishDeclared():
                self._wish(session, standing(envelope), payload)
            case DisclosureConsentRecorded():
                self._consent(session, standing(envelope), payload)
            case DataAccessed():
                self._accessed(session, envelope, payload)

    def projections(self) -> tuple[Projection, ...]:
        """For the service's projector: visibility from intake's events, wherever they are read
        (intake's own, the others' upstream); the access log from the service's own reads only,
        since the topics it consumes carry the other services' reads."""
        return (
            Projection(VISIBILITY_EVENTS, self.apply),
            Projection({"DataAccessed"}, self.apply, own_only=True),
        )

    def _upsert(self, session: Session, captive_id: str, state: str, **values) -> None:
        key = {"captive_id": captive_id, "state": state}
        if not rows(session).update(self.partner_visibility, key, **values):
            rows(session).insert(self.partner_visibility, {**key, "wish": False, "consent": False, **values})

    def _wish(self, session: Session, author: Standing, payload: WishDeclared) -> None:
        # Only a verified wish (an ICRC delegate's own record of a private interview, free and
        # informed) opens a partner state's view, and only another verified wish closes it: a
        # media statement, or anyone else's record naming a private interview, changes nothing.
        # A new verified wish replaces the last one, so no state keeps a wish he no longer holds.
        provenance = payload.provenance
        if not verifies_wish(author, provenance.setting, provenance.free_and_informed):
            return
        rows(session).update_where(self.partner_visibility, {"captive_id": payload.captive_id}, wish=False)
        if payload.wish is Wish.THIRD_STATE and payload.third_state:
            self._upsert(session, payload.captive_id, str(payload.third_state), wish=True)

    def _consent(self, session: Session, author: Standing, payload: DisclosureConsentRecorded) -> None:
        # A consent counts only as an ICRC delegate recorded it, as herself, from an interview she
        # judged free and informed (the same weight as a wish); a withdrawal always counts.
        given = payload.given and verifies_wish(
            author, InterviewSetting.PRIVATE_ICRC_INTERVIEW, payload.provenance.free_and_informed
        )
        self._upsert(session, payload.captive_id, str(payload.recipient_state), consent=given)

    def _accessed(self, session: Session, envelope: EventEnvelope, payload: DataAccessed) -> None:
        found = [
            {
                "event_id": envelope.id,
                "captive_id": captive_id,
                "accessed_at": envelope.occurred_at,
                "client_id": payload.client_id,
                "actor": envelope.actor,
                "agency": envelope.agency,
                "purpose": payload.purpose,
                "method": payload.method,
                "path": payload.path,
                "tiers": ",".join(sorted(payload.tiers)),
            }
            for captive_id in payload.captive_ids or [""]
        ]
        rows(session).insert(self.access_log, *found)

    # -- questions ------------------------------------------------------------------------------

    def visible(self, session: Session, state: str, captive_ids: Iterable[str]) -> set[str]:
        """Of `captive_ids`, those the partner `state` may see."""
        table = self.partner_visibility
        wanted = sorted(set(captive_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 1000):
            found.update(
                session.execute(
                    sa.select(table.c.captive_id).where(
                        table.c.state == state,
                        table.c.wish.is_(True),
                        table.c.consent.is_(True),
                        table.c.captive_id.in_(wanted[start : start + 1000]),
                    )
                ).scalars()
            )
        return found


def access_tables(metadata: sa.MetaData) -> AccessTables:
    partner_visibility = sa.Table(
        "partner_visibility",
        metadata,
        sa.Column("captive_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(2), primary_key=True),
        sa.Column("wish", sa.Boolean, nullable=False),
        sa.Column("consent", sa.Boolean, nullable=False),
    )
    access_log = sa.Table(
        "access_log",
        metadata,
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("captive_id", sa.String(64), primary_key=True),  # "" for a read about no captive
        sa.Column("accessed_at", UtcDateTime(), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("agency", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(500)),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("tiers", sa.String(200), nullable=False),
        sa.Index("ix_access_log_captive", "captive_id", "accessed_at"),
        sa.Index("ix_access_log_agency", "agency", "accessed_at"),
    )
    return AccessTables(partner_visibility=partner_visibility, access_log=access_log)
