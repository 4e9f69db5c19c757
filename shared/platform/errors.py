"""Domain errors the API layer maps to HTTP answers. Plain exceptions, so domain code can raise
them without depending on the web framework."""


class DomainConflict(Exception):
    """The command contradicts what is already recorded (the API answers 409 with the message)."""
