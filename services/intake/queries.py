"""The reads intake's commands and its read routes share: a captive's record, folded from his
events (identity opened with his key) and the hand-overs out of custody recorded for him."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.intake import deadlines
from services.intake.obligations import NOTIFIED, Obligation, Overdue
from services.intake.projections import clock_facts_as_of, handovers_of
from services.intake.record import CaptiveRecord, fold
from shared.contracts.tiers import DataTier
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import NotFound
from shared.web.http import iso


def load_record(runtime: ServiceRuntime, session: Session, captive_id: str) -> CaptiveRecord:
    stored = runtime.reveal(session, runtime.store.read_stream(session, captive_id))  # identity in clear
    record = fold((item.event for item in stored), handovers_of(session, captive_id))
    if record is None:
        raise NotFound(f"no captive {captive_id}")
    return record


def overdue_view(item: Overdue) -> dict[str, Any]:
    shown = {
        "captive_id": item.captive_id,
        "obligation": item.obligation,
        "to": item.to,
        "article": item.article,
        "trigger": item.trigger,
        "started_by": item.started_by,
        "started_at": iso(item.started_at),
        "due_at": iso(item.due_at),
        "days_overdue": item.days_overdue,
    }
    if item.obligation in NOTIFIED:
        shown |= {
            "required_fields": list(item.required_fields),
            "missing_fields": list(item.missing_fields),
            "insufficient_notifications": list(item.insufficient_notifications),
        }
    if item.obligation == Obligation.HEALTH_REPORT:
        # the week runs from the finding (first report) or from the report before it
        shown |= {"week_from": item.since, "week_from_at": iso(item.since_at)}
    return shown


def overdue_as_of(session: Session, moment: datetime, medical: bool) -> tuple[dict[str, Any], list[str]]:
    """The obligations overdue at `moment`, from the facts in effect then, and the captives whose
    medical-tier items it lists (a read of that tier). Without `medical`, those items are left
    out and the tier is named withheld."""
    # nothing is overdue before its window has run out, and every clock starts at or after capture
    captured_before = moment - deadlines.SHORTEST_WINDOW
    captives_facts = clock_facts_as_of(session, moment, captured_before)
    found = [item for facts in captives_facts for item in deadlines.overdue(facts, moment)]
    if not medical:
        found = [item for item in found if not item.medical]
    answer = {
        "as_of": iso(moment),
        "count": len(found),
        "overdue": [overdue_view(item) for item in found],
    }
    if not medical:
        answer["withheld_tiers"] = [DataTier.MEDICAL.value]
    return answer, sorted({item.captive_id for item in found if item.medical})
