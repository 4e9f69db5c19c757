"""Topic names: one per producing service, the log of record (unlimited retention)."""

INTAKE_EVENTS = "intake.events.v1"
STATUS_EVENTS = "status.events.v1"
DISPOSITION_EVENTS = "disposition.events.v1"

ALL = (INTAKE_EVENTS, STATUS_EVENTS, DISPOSITION_EVENTS)

# Who publishes each topic: the one service whose key may sign its records (shared/evidence/signing.py).
PUBLISHERS = {INTAKE_EVENTS: "intake", STATUS_EVENTS: "status", DISPOSITION_EVENTS: "disposition"}


def dead_letter(topic: str) -> str:
    """Where a record that cannot be decoded or applied goes, beside its topic."""
    return f"{topic}.dlq"
