"""How a command is carried out: once, whatever the retries (idempotency.py)."""
