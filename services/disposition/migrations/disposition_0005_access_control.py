"""access control: partner-state visibility and the access log"""

from shared.migrations import steps

revision: str = "disposition_0005"
down_revision: str | None = "disposition_0004"
upgrade, downgrade, shared_steps = steps.revision(steps.access_control)
