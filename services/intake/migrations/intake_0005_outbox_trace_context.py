"""outbox trace context"""

from shared.migrations import steps

revision: str = "intake_0005"
down_revision: str | None = "intake_0004"
upgrade, downgrade, shared_steps = steps.revision(steps.outbox_trace_context)
