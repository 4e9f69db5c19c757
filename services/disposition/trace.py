"""The facts behind a disposition verdict, as its trace records them: what each answer rests on,
so that it can be reproduced and audited (services/disposition/reproduce.py)."""

from __future__ import annotations

from services.disposition.facts import DispositionFacts
from services.disposition.refoulement import non_refoulement
from shared.contracts.status import FactUsed


def facts_behind(facts: DispositionFacts, states: tuple[str | None, ...] = ()) -> tuple[FactUsed, ...]:
    """Every fact a verdict read, with the event that recorded it (None where none did: a fact
    never recorded is named too, so the verdict shows what it lacked); for each state the
    verdict concerns, its risks, onward questions, assurance and claim."""
    wish, statement = facts.wish, facts.unverified_wish
    used = [
        FactUsed(name="force", value=facts.force, source_event_id=facts.force_event_id),
        FactUsed(name="home_state", value=facts.home_state, source_event_id=facts.force_event_id),
        FactUsed(name="nationality", value=facts.nationality, source_event_id=facts.registration_event_id),
        FactUsed(name="status", value=facts.status, source_event_id=facts.status_event_id),
        FactUsed(name="in_custody", value=facts.in_custody, source_event_id=facts.custody_event_id),
        FactUsed(name="dead", value=facts.dead, source_event_id=facts.custody_event_id if facts.dead else None),
        FactUsed(name="verified_wish", value=wish.describe() if wish else None, source_event_id=wish and wish.event_id),
        FactUsed(
            name="unverified_statement",
            value=statement.describe() if statement else None,
            source_event_id=statement and statement.event_id,
        ),
        FactUsed(
            name="seriously_wounded_or_sick",
            value=facts.seriously_wounded_or_sick,
            source_event_id=facts.medical_event_id,
        ),
        FactUsed(
            name="hostilities_ceased",
            value=facts.hostilities.ceased,
            source_event_id=facts.hostilities.event_ids[-1] if facts.hostilities.event_ids else None,
        ),
        FactUsed(name="conflict", value=facts.conflict, source_event_id=None),
        FactUsed(name="fit_to_travel", value=facts.fitness.fit, source_event_id=facts.fitness.event_id),
    ]
    if facts.hostilities.contradiction:
        used.append(
            FactUsed(
                name="contradiction",
                value=facts.hostilities.contradiction,
                source_event_id=facts.hostilities.event_ids[-1] if facts.hostilities.event_ids else None,
            )
        )
    used += [
        FactUsed(name=f"prosecution:{pid}", value="OPEN", source_event_id=event)
        for pid, event in sorted(facts.open_prosecutions.items())
    ]
    used += [
        FactUsed(name=f"consent_to_leave:{pid}", value=True, source_event_id=event)
        for pid, event in sorted(facts.consented_proceedings.items())
    ]
    used += [FactUsed(name="exposure", value=True, source_event_id=event) for event in facts.exposures]
    for state in dict.fromkeys(s for s in states if s):
        for checked in non_refoulement(facts, state).checked:
            risk = facts.risks.get(checked)
            used.append(
                FactUsed(
                    name=f"risk:{checked}",
                    value=None if risk is None else risk.outcome.value + (" (stale)" if risk.stale_since else ""),
                    source_event_id=risk.event_id if risk else None,
                )
            )
            if risk is not None:
                onward = None if risk.would_hand_on is None else ",".join(risk.onward_states) or "none"
                used.append(FactUsed(name=f"onward:{checked}", value=onward, source_event_id=risk.event_id))
        assurance = facts.assurances.get(state)
        if assurance is not None:
            used.append(FactUsed(name=f"assurance:{state}", value=True, source_event_id=assurance.event_id))
        if state in facts.partner_claims:
            used.append(FactUsed(name=f"claim:{state}", value=True, source_event_id=facts.partner_claims[state]))
    return tuple(used)
