"""idempotency keys"""

from shared.migrations import steps

revision: str = "disposition_0002"
down_revision: str | None = "disposition_0001"
upgrade, downgrade, shared_steps = steps.revision(steps.idempotency_keys)
