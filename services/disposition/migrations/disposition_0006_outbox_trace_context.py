"""outbox trace context"""

from shared.migrations import steps

revision: str = "disposition_0006"
down_revision: str | None = "disposition_0005"
upgrade, downgrade, shared_steps = steps.revision(steps.outbox_trace_context)
