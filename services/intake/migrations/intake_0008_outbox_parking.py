"""outbox parking: a row the broker refuses for good is set aside with its error; discarded events are kept"""

from shared.migrations import steps

revision: str = "intake_0008_outbox_parking"
down_revision: str | None = "intake_0007"
upgrade, downgrade, shared_steps = steps.revision(steps.outbox_parking)
