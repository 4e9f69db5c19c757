"""A captive's audit timeline across the three services, from the log of record: every event
about him, in the order it was recorded, with who recorded it for which agency, and for each
decision the rules and facts behind it. Rendered for a terminal or as one self-contained HTML
page (no scripts, no external resources; every value escaped).

Intake's events carry identity data sealed with each captive's key: `with_identity` opens them
with intake's database; without it (or after erasure) the values read [sealed] / [erased]."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from shared.contracts import DecodedEvent, InvalidEvent, decode


@dataclass(frozen=True)
class Entry:
    event: DecodedEvent

    @property
    def service(self) -> str:
        return self.event.envelope.source.rsplit("/", 1)[-1]

    def summary(self) -> str:
        envelope, data = self.event.envelope, self.event.envelope.data
        match envelope.type:
            case "StatusDetermined":
                return f"{data['status']} under rulebook {data['rulebook_version']}"
            case "ExchangeEligibilityChanged":
                verdict = "eligible" if data["eligible"] else "not eligible"
                return f"exchange to {data['counterpart_state']}: {verdict}"
            case "WishDeclared":
                where = f" ({data['third_state']})" if data.get("third_state") else ""
                return f"wish {data['wish']}{where}, {data['provenance']['setting']}"
            case "MovementRecorded":
                return f"{data['kind']}" + (f" at {_shown(data['location'])}" if data.get("location") else "")
            case "RiskAssessed":
                return f"risk in {data['destination']}: {data['outcome']}"
            case _:
                return ", ".join(
                    f"{key}={_shown(value)}"
                    for key, value in data.items()
                    if key != "captive_id"
                    and value is not None
                    and (_withheld(value) or not isinstance(value, (dict, list)))
                )[:160]

    def reasons(self) -> list[str]:
        data = self.event.envelope.data
        rules = data.get("rules") or data.get("reasons") or []
        return [f"{rule['rule_id']} {rule['article']}: {rule['finding']}" for rule in rules]


def _withheld(value) -> str | None:
    return value["withheld"] if isinstance(value, dict) and set(value) == {"withheld"} else None


def _shown(value) -> str:
    return f"[{marker}]" if (marker := _withheld(value)) else str(value)


def with_identity(entries: list[Entry], session: Session, keyring) -> list[Entry]:
    """`entries` with what `keyring`'s service sealed in them opened with the captives' keys
    (`session`: that service's database); erased values read `[erased]`."""
    mine = [index for index, entry in enumerate(entries) if keyring.holds(entry.event)]
    opened = keyring.open(session, [entries[index].event for index in mine])
    result = list(entries)
    for index, event in zip(mine, opened, strict=True):
        result[index] = Entry(event)
    return result


def timeline(records: Iterable, captive_id: str) -> list[Entry]:
    """The captive's events among `records` (keyed by captive id), in recorded order, each once:
    a relay that crashed after publishing and before marking it published publishes it again."""
    entries, seen = [], set()
    for record in records:
        if record.key is None or record.key.decode(errors="replace") != captive_id:
            continue
        try:
            event = decode(record.value)
        except InvalidEvent:
            continue  # not part of the record: the consumers dead-lettered it
        if event.envelope.id not in seen:
            seen.add(event.envelope.id)
            entries.append(Entry(event))
    return sorted(entries, key=lambda e: (e.event.envelope.recorded_at, e.service, e.event.envelope.stream_version))


def render_html(captive_id: str, entries: list[Entry]) -> str:
    def esc(value) -> str:
        return html.escape(str(value), quote=True)

    rows = []
    for entry in entries:
        envelope = entry.event.envelope
        reasons = "".join(f"<li>{esc(reason)}</li>" for reason in entry.reasons())
        rows.append(
            f"<tr><td>{esc(envelope.recorded_at.isoformat())}</td><td>{esc(envelope.occurred_at.isoformat())}</td>"
            f"<td class=svc>{esc(entry.service)}</td><td><b>{esc(envelope.type)}</b><br>{esc(entry.summary())}"
            f"{f'<ul>{reasons}</ul>' if reasons else ''}</td>"
            f"<td>{esc(envelope.actor)}<br><small>{esc(envelope.agency)}</small></td>"
            f"<td><small>{esc(envelope.id)}</small></td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Audit timeline {esc(captive_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: .4em .6em; vertical-align: top; text-align: left; }}
th {{ background: #f0f0f0; }} .svc {{ font-weight: bold; }} ul {{ margin: .3em 0 0 1.2em; padding: 0; }}
</style></head><body>
<h1>Audit timeline of {esc(captive_id)}</h1>
<p>{len(entries)} events from intake, status and disposition, in the order they were recorded.
Decisions list the rules that produced them.</p>
<table><thead><tr><th>recorded</th><th>happened</th><th>service</th><th>event</th><th>who, for whom</th>
<th>event id</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
