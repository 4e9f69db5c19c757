"""The event feed each service offers agencies: its own events in append order, as CloudEvents
JSON, each cut down to the data tiers the caller may read, resumable from any cursor.

The cursor is the position of the last event the previous page looked at (opaque to callers:
pass back `next`). Events a caller may not see still advance it, so a partner state polling the
feed learns nothing from gaps, and no page scans more than a bounded number of events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from shared.auth.access_log import record_access
from shared.auth.gate import Caller, CallerDep, allow
from shared.auth.roles import Scope
from shared.contracts import DecodedEvent
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.tiers import DataTier, split_by_tier

router = APIRouter(prefix="/v1", tags=["feed"])

MAX_PAGE = 500
SCAN_FACTOR = 20  # at most this many events looked at per event returned
LAST_POSITION = 2**63 - 1  # events.position is a bigint
AUDIT_ONLY = frozenset({"DataAccessed"})  # who read what is for auditors


def redact(event: DecodedEvent, tiers: frozenset[DataTier]) -> tuple[dict[str, Any], set[DataTier]]:
    """The event as CloudEvents JSON with only the fields of `tiers` in its data; withheld field
    names are listed in the `redacted` extension attribute. Returns the tiers actually shown."""
    document = event.envelope.model_dump(mode="json")
    data, withheld, shown = {}, [], set()
    parts = split_by_tier(type(event.payload), event.payload.model_dump(mode="json"))
    for tier, part in parts.items():
        for name, value in part.items():
            # a nested part cut across tiers (armed_force: reference, its basis: identity)
            nested = isinstance(value, dict) and any(name in other for t, other in parts.items() if t is not tier)
            if tier in tiers:
                data[name] = {**data[name], **value} if nested and name in data else value
                if value is not None:
                    shown.add(tier)
            else:
                withheld.extend([f"{name}.{key}" for key in value] if nested else [name])
    document["data"] = {name: data[name] for name in type(event.payload).model_fields if name in data}
    if withheld:
        document["redacted"] = sorted(withheld)
    return document, shown


def visible_events(runtime, session, caller: Caller, events: Iterable) -> list[DecodedEvent]:
    """Of a page of stored events, those the caller may see at all (before tier redaction)."""
    events = [stored.event for stored in events]
    if not caller.may(Scope.AUDIT_READ):
        events = [event for event in events if event.envelope.type not in AUDIT_ONLY]
    if caller.partner_state:
        # A partner state sees events about the captives it may see, and nothing else.
        subjects = {event.envelope.subject for event in events if _is_captive(event.envelope.subject)}
        allowed = runtime.definition.access.visible(session, caller.partner_state, subjects)
        events = [event for event in events if event.envelope.subject in allowed]
    return events


def _is_captive(subject: str) -> bool:
    return re.fullmatch(CAPTIVE_ID_PATTERN, subject) is not None


@router.get("/feed", dependencies=[allow(Scope.FEED_READ)])
def get_feed(
    request: Request,
    caller: CallerDep,
    after: Annotated[str, Query(pattern=r"^\d{1,19}$", description="`next` of the previous page; 0 to start")] = "0",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """This service's events the caller's agency may see, oldest first, redacted to its tiers.
    Resume with `after=<next>`; `end` says the feed had nothing more when the page was read."""
    runtime = request.app.state.runtime
    # A cursor past the largest position the events table can hold has nothing after it.
    position, page, scanned = min(int(after), LAST_POSITION), [], 0
    end = False
    with runtime.sessions() as session:
        while len(page) < limit and scanned < limit * SCAN_FACTOR:
            stored = runtime.store.read_all(session, after=position, limit=limit)
            if not stored:
                end = True
                break
            scanned += len(stored)
            events = visible_events(runtime, session, caller, stored)
            # Opened for every reader: `redact` then keeps only the fields of the caller's tiers.
            events = runtime.reveal(session, events)
            for stored_event, event in _positions(stored, events):
                if len(page) == limit:
                    break
                page.append(event)
                position = stored_event
            else:
                position = stored[-1].position
    documents, shown, about = [], set(), []
    for event in page:
        document, tiers = redact(event, caller.tiers)
        documents.append(document)
        if tiers - {DataTier.REFERENCE}:
            shown |= tiers
            about.append(event.envelope.subject)
    record_access(runtime, request, caller, shown, about)
    return {"events": documents, "next": str(position), "end": end}


def _positions(stored: list, events: list[DecodedEvent]):
    """Pairs (position, event) for the visible events, in order."""
    by_id = {item.envelope.id: item.position for item in stored}
    return [(by_id[event.envelope.id], event) for event in events]
