"""The reads the disposition service's policies and its read routes share: the dated facts of many
captives at once, each one's facts folded as they stood at a moment, and the states his
eligibility is kept for. The pure cores that decide are services/disposition/facts.py and rules.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Query, Request
from sqlalchemy.orm import Session

from services.disposition.facts import Dated, DispositionFacts, fold
from services.disposition.rules import RULES, Verdict, disposition, exchange_eligibility
from services.disposition.tables import captives, eligibility, fact_log, list_entries
from services.disposition.workflow import ExchangeList, ListStage, dispositions_of, exchange_list
from shared.auth.access_log import record_access
from shared.auth.gate import Caller
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.disposition import DispositionKind, DispositionStepRefused, list_stream
from shared.contracts.envelope import utc_now
from shared.contracts.tiers import DataTier
from shared.platform.db import rows_where_in
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import NotFound
from shared.web.http import iso, parse_as_of


def dated_facts(session: Session, captive_ids: list[str]) -> tuple[dict[str, list[Dated]], list[Dated]]:
    """Each captive's dated facts, and the global ones (states, the conflict)."""

    def dated(row) -> Dated:
        return Dated(row.event_id, row.kind, row.effective_at, row.recorded_at, row.data, row.stream_version)

    own: dict[str, list[Dated]] = defaultdict(list)
    for row in rows_where_in(session, sa.select(fact_log), fact_log.c.captive_id, captive_ids):
        own[row.captive_id].append(dated(row))
    shared = [dated(row) for row in session.execute(sa.select(fact_log).where(fact_log.c.captive_id.is_(None))).all()]
    return own, shared


def gather(
    session: Session, captive_ids: list[str], at: datetime | None = None, known_at: datetime | None = None
) -> dict[str, DispositionFacts]:
    """The facts of each registered captive among `captive_ids` as they stood at `at` (default:
    the latest moment anything about him was recorded), as known at `known_at` (default: all
    recorded). Captives not registered by then are left out."""
    own, shared = dated_facts(session, captive_ids)
    found = {}
    for captive_id, facts in own.items():
        moment = at or latest_known(facts, shared)
        folded = fold(captive_id, [*facts, *shared], moment, known_at)
        if folded.registration_event_id is not None:
            found[captive_id] = folded
    return found


def latest_known(facts: list[Dated], shared: list[Dated]) -> datetime:
    """The moment an answer from the recorded facts alone stands for: the latest recording."""
    return max(fact.recorded_at for fact in (*facts, *shared))


def counterparts(session: Session, facts: dict[str, DispositionFacts]) -> dict[str, set[str]]:
    """The states each captive's eligibility is kept for: the state he depends on and the one
    recorded as his nationality, every state assessed for him or claiming him, and the
    counterpart of every exchange list he is on."""
    found = {
        captive_id: {state for state in (f.home_state, f.nationality) if state} | set(f.risks) | set(f.partner_claims)
        for captive_id, f in facts.items()
    }
    for row in rows_where_in(session, sa.select(list_entries), list_entries.c.captive_id, list(facts)):
        found[row.captive_id].add(row.counterpart_state)
    return found


# The reasons and facts behind eligibility and disposition answers speak of what a captive
# wishes and risks (the wishes_and_risk tier of their events): only callers who may read that
# tier see them, and each such read is logged.
RISK_KEYS = frozenset({"reasons", "facts", "blocked_by"})


def disclose(request: Request, caller: Caller, document: dict[str, Any], captive_ids: list[str]) -> dict[str, Any]:
    if DataTier.WISHES_AND_RISK in caller.tiers:
        record_access(request.app.state.runtime, request, caller, {DataTier.WISHES_AND_RISK}, captive_ids)
        return document
    return {**_without(document, RISK_KEYS), "withheld_tiers": [DataTier.WISHES_AND_RISK.value]}


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(item, keys) for item in value]
    return value


def get_captive(captive_id: str, session: Session) -> dict[str, Any]:
    row = session.execute(sa.select(captives).where(captives.c.captive_id == captive_id)).mappings().first()
    if row is None:
        raise NotFound(f"no captive {captive_id} known to disposition")
    answers = session.execute(sa.select(eligibility).where(eligibility.c.captive_id == captive_id)).all()
    return {
        "captive_id": captive_id,
        "registered": row["registration_event_id"] is not None,
        "nationality": row["nationality"],
        "captured_at": iso(row["captured_at"]),
        "custody": "INTERNED" if row["in_custody"] else "ENDED",
        "status": None
        if row["status"] is None
        else {
            "status": row["status"],
            "rulebook_version": row["status_rulebook_version"],
            "rules": row["status_rules"],
            "event_id": row["status_event_id"],
            "effective_from": iso(row["status_effective_from"]),
        },
        "exchange_eligibility": {
            answer.counterpart_state: {"eligible": answer.eligible, "event_id": answer.event_id} for answer in answers
        },
        **_for_the_legal_officer(gather(session, [captive_id]).get(captive_id)),
    }


def _for_the_legal_officer(facts: DispositionFacts | None) -> dict[str, Any]:
    """What a person must act on: the detaining state's duties to him (Art. 12(3)), and
    contradictions in the record that the rules name and cannot resolve (a capture dated after a
    cessation of hostilities with no resumption recorded)."""
    contradiction = facts.hostilities.contradiction if facts is not None else None
    return {"duties": _duties(facts), "contradictions": [contradiction] if contradiction else []}


def _duties(facts: DispositionFacts | None) -> list[dict[str, Any]]:
    """What the detaining state still owes him after he left its custody: the measures of Art.
    12(3) while the Power he was transferred to fails to carry out the Convention."""
    duty = facts.art_12_duty if facts is not None else None
    if duty is None:
        return []
    return [
        {
            "article": "GC III Art. 12(3)",
            "state": duty.state,
            "duty": "take effective measures to correct the situation, or request his return",
            "since": iso(duty.since),
            "notified_by": duty.notified_by,
            "event_id": duty.event_id,
        }
    ]


def _moments(as_of: str | None, known_at: str | None) -> tuple[datetime, datetime | None]:
    return (parse_as_of(as_of) if as_of else utc_now()), (parse_as_of(known_at, "known_at") if known_at else None)


def facts_of(session: Session, captive_id: str, at: datetime, known_at: datetime | None = None) -> DispositionFacts:
    """The captive's facts as they stood at `at` (as known at `known_at`); 404 if he was not yet
    registered then."""
    found = gather(session, [captive_id], at, known_at).get(captive_id)
    if found is None:
        known_captive(session, captive_id)
        raise NotFound(f"captive {captive_id} was not yet registered (or not yet known) on {iso(at)}")
    return found


def _answer(verdict: Verdict) -> dict[str, Any]:
    return {
        "eligible": verdict.allowed,
        "reasons": [reason.model_dump(mode="json") for reason in verdict.reasons],
        "facts": [fact.model_dump(mode="json") for fact in verdict.facts],
    }


def get_eligibility(
    captive_id: str,
    session: Session,
    request: Request,
    caller: Caller,
    as_of: str | None = None,
    known_at: str | None = None,
) -> dict[str, Any]:
    moment, known = _moments(as_of, known_at)
    facts = facts_of(session, captive_id, moment, known)
    # The states asked about are those his case concerns as now recorded, so that a date before
    # a state's assessment answers for that state too (not assessed then: blocked).
    latest = gather(session, [captive_id]).get(captive_id, facts)
    states = (
        counterparts(session, {captive_id: facts})[captive_id] | counterparts(session, {captive_id: latest})[captive_id]
    )
    document = {
        "captive_id": captive_id,
        "as_of": iso(moment),
        "known_at": iso(known),
        "counterparts": {state: _answer(exchange_eligibility(facts, state)) for state in sorted(states)},
        "events_used": list(facts.used_events),
    }
    return disclose(request, caller, document, [captive_id])


def check_disposition(
    captive_id: str,
    session: Session,
    request: Request,
    caller: Caller,
    kind: DispositionKind,
    destination: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    as_of: str | None = None,
    known_at: str | None = None,
) -> dict[str, Any]:
    moment, known = _moments(as_of, known_at)
    facts = facts_of(session, captive_id, moment, known)
    verdict = disposition(kind, facts, destination)
    document = {
        "captive_id": captive_id,
        "kind": kind.value,
        "destination": verdict.destination or destination,
        "as_of": iso(moment),
        "known_at": iso(known),
        "allowed": verdict.allowed,
        "reasons": [r.model_dump() for r in verdict.reasons],
        "facts": [f.model_dump() for f in verdict.facts],
        "events_used": list(facts.used_events),
    }
    return disclose(request, caller, document, [captive_id])


def list_dispositions(captive_id: str, session: Session, request: Request, caller: Caller) -> dict[str, Any]:
    known_captive(session, captive_id)
    events = stream_events(request.app.state.runtime, session, captive_id)
    document = {
        "captive_id": captive_id,
        "dispositions": [
            {
                "disposition_id": found.disposition_id,
                "kind": found.kind.value if found.kind else None,
                "destination": found.destination,
                "stage": found.stage.value,
                "proposed_by": found.proposed_by,
                "approved_by": found.approved_by,
                "reasons": [rule.model_dump(mode="json") for rule in found.stopped_by],
            }
            for found in dispositions_of(captive_id, events).values()
        ],
        "refusals": [
            {
                "event_id": envelope.id,
                "at": iso(envelope.occurred_at),
                "by": envelope.actor,
                "disposition_id": payload.disposition_id,
                "kind": payload.kind.value,
                "destination": payload.destination,
                "step": payload.step.value,
                "blocked_by": [rule.model_dump(mode="json") for rule in (*payload.stopped_by, *payload.blocked_by)],
            }
            for envelope, payload in events
            if isinstance(payload, DispositionStepRefused)
        ],
    }
    return disclose(request, caller, document, [captive_id])


def get_rules() -> list[dict[str, str]]:
    return [{"rule_id": rule.rule_id, "article": rule.article} for rule in RULES]


def get_list(list_id: str, session: Session, request: Request, caller: Caller) -> dict[str, Any]:
    found = list_of(request.app.state.runtime, session, list_id)
    document = {
        "list_id": found.list_id,
        "counterpart_state": found.counterpart_state,
        "agreement": found.agreement,
        "stage": found.stage.value,
        "entries": len(found.captive_ids),
        "proposed_by": found.proposed_by,
        "proposed": list(found.proposed_ids) or None,
        "approved_by": found.approved_by,
        "executed": list(found.executed_ids) if found.stage is ListStage.EXECUTED else None,
        "withheld": [result.model_dump(mode="json") for result in found.withheld],
        "last_check": [result.model_dump(mode="json") for result in found.check_results] or None,
    }
    return disclose(request, caller, document, list(found.captive_ids))


def known_captive(session: Session, captive_id: str):
    row = session.execute(sa.select(captives).where(captives.c.captive_id == captive_id)).first()
    if row is None or row.registration_event_id is None:
        raise NotFound(f"no captive {captive_id} known to disposition")
    return row


def stream_events(runtime: ServiceRuntime, session: Session, stream: str) -> list[tuple[EventEnvelope, EventPayload]]:
    return [(stored.envelope, stored.event.payload) for stored in runtime.store.read_stream(session, stream)]


def list_of(runtime: ServiceRuntime, session: Session, list_id: str) -> ExchangeList:
    found = exchange_list(list_id, stream_events(runtime, session, list_stream(list_id)))
    if found.stage is ListStage.NONE:
        raise NotFound(f"no exchange list {list_id}")
    return found
