"""dead-letter parking: a captive's records held behind his dead letter, and operators' decisions"""

from shared.migrations import steps

revision: str = "disposition_0011"
down_revision: str | None = "disposition_0010_outbox_parking"
upgrade, downgrade, shared_steps = steps.revision(steps.dead_letter_parking)
