"""Crypto-shredding in intake: one key per captive, and erasure by destroying it.

Intake seals, with the captive's own key, the identity-tier values of every event it appends
(names, date of birth, where he was taken and is held, documents, consented details) and the free
text about him (medical findings, ICRC visit notes, wish statements, consent purposes, capture-card
recipients): shared/privacy/keyring.py, the machinery every service uses; shared/contracts/withheld.py
says which paths. Other services never see the values: `decode` gives them `Withheld("sealed")`.

- `runtime.keyring.open(session, events)`: intake's own reads put the values back; where the key
  was destroyed they become `Withheld("erased")`.
- `erase(...)` (`captives erase <id>`): deletes the key, leaves a tombstone and appends
  `IdentityErased`, which status and disposition consume to destroy their own keys. Every sealed
  copy, in the databases, on the topics and in any backup of them, is then unreadable, and the
  log of record (its bytes, its chain, its checkpoints) is unchanged.

Events recorded before sealing began (before migration intake_0003; for the free text, before
sealing reached it) keep their values in clear; `erase` counts them in its answer, since
destroying the key cannot reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from shared.commands.pipeline import Decision, Pipeline
from shared.contracts import DecodedEvent, EventEnvelope, EventMetadata
from shared.contracts.intake import CaptiveRegistered, IdentityErased
from shared.contracts.withheld import SEALED_KEY, identity_paths, split
from shared.eventstore import StreamAppend
from shared.privacy.keyring import Keyring, PersonalDataErased, SealBroken

IdentityWasErased = PersonalDataErased  # an identity-tier value for an erased captive (409)
__all__ = ["Erasure", "IdentityWasErased", "SealBroken", "UnknownCaptive", "erase", "scrub_deleted_keys"]


class UnknownCaptive(LookupError):
    pass


# -- erasure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    captive_id: str
    event: EventEnvelope  # the IdentityErased event (the earlier one if he was already erased)
    already: bool  # erased before: nothing was done
    clear_events: int  # his events recorded before sealing began, whose identity stays in clear


def erase(
    sessions: sessionmaker[Session],
    pipeline: Pipeline,
    captive_id: str,
    *,
    reason: str | None,
    actor: str,
    agency: str,
) -> Erasure:
    """Append `IdentityErased` (with its outbox row, so the running relay publishes it) and let the
    privacy wing's policy destroy the captive's key (`pipeline`: intake's store, with that policy),
    in one transaction. A second erasure changes nothing. Raises UnknownCaptive. Call
    `scrub_deleted_keys` afterwards (outside any transaction)."""

    def decide(session: Session) -> Decision[Erasure]:
        stored = pipeline.store.read_stream(session, captive_id)
        if not stored or not isinstance(stored[0].event.payload, CaptiveRegistered):
            raise UnknownCaptive(f"no captive {captive_id} in intake's records")
        clear = sum(_in_clear(item.event) for item in stored)
        for item in stored:
            if isinstance(item.event.payload, IdentityErased):
                return Decision([], lambda _e, _r, item=item: Erasure(captive_id, item.envelope, True, clear))
        event = IdentityErased(captive_id=captive_id, reason=reason, erased_by=actor)
        append = StreamAppend(
            captive_id, stored[-1].envelope.stream_version, [event], EventMetadata(actor=actor, agency=agency)
        )
        return Decision([append], lambda envelopes, _r: Erasure(captive_id, envelopes[0], False, clear))

    return pipeline.run(sessions, decide)


def scrub_deleted_keys(keyring: Keyring, engine: sa.Engine) -> str:
    """After a key was deleted: make the database drop the deleted row's bytes now (Keyring.scrub)."""
    return keyring.scrub(engine)


def _in_clear(event: DecodedEvent) -> bool:
    """An event recorded before sealing began, with identity values in clear."""
    if SEALED_KEY in event.envelope.data:
        return False
    _, values = split(event.envelope.data, identity_paths(type(event.payload)))
    return any(value is not None for value in values.values())
