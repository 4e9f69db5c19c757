"""Checks of a command's times against the recording clock and the captive's record.

These run at the API boundary, where reading the clock is right: "in the future" means after the
moment the system records the fact. The decision logic elsewhere never reads the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.contracts.intake import Answer, Registration


def problem(loc: tuple, msg: str) -> dict[str, Any]:
    """One error in the shape FastAPI uses for 422 responses."""
    return {"type": "value_error", "loc": loc, "msg": msg}


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def registration_problems(body: Registration, occurred_at: datetime, now: datetime, loc: tuple = ("body",)) -> list:
    problems = []
    captured_at = body.capture.captured_at
    if captured_at > now:
        problems.append(
            problem((*loc, "capture", "captured_at"), f"{_iso(captured_at)} is in the future (recorded at {_iso(now)})")
        )
    if occurred_at > now:
        problems.append(
            problem((*loc, "occurred_at"), f"{_iso(occurred_at)} is in the future (recorded at {_iso(now)})")
        )
    elif occurred_at < captured_at:
        problems.append(
            problem(
                (*loc, "occurred_at"),
                f"registration at {_iso(occurred_at)} is before the capture at {_iso(captured_at)}",
            )
        )
    if body.date_of_birth.answer is Answer.GIVEN and body.date_of_birth.value > captured_at.date():
        problems.append(
            problem(
                (*loc, "date_of_birth", "value"),
                f"{body.date_of_birth.value} is after the capture on {captured_at.date()}",
            )
        )
    consent = body.consented_details.consent if body.consented_details else None
    if consent and consent.obtained_at and consent.obtained_at > now:
        problems.append(
            problem(
                (*loc, "consented_details", "consent", "obtained_at"),
                f"{_iso(consent.obtained_at)} is in the future (recorded at {_iso(now)})",
            )
        )
    return problems


def fact_time_problems(occurred_at: datetime, captured_at: datetime, now: datetime) -> list:
    if occurred_at > now:
        return [problem(("body", "occurred_at"), f"{_iso(occurred_at)} is in the future (recorded at {_iso(now)})")]
    if occurred_at < captured_at:
        return [problem(("body", "occurred_at"), f"{_iso(occurred_at)} is before the capture at {_iso(captured_at)}")]
    return []
