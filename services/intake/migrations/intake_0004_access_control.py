"""access control: partner-state visibility and the access log"""

from shared.migrations import steps

revision: str = "intake_0004"
down_revision: str | None = "intake_0003"
upgrade, downgrade, shared_steps = steps.revision(steps.access_control)
