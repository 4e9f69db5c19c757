"""Pseudonymous case references, as every service and event carries them.

A captive's id is public-tier data (it travels in every event key and log line), so it must say
nothing about the person: intake makes it at random, never from a name, number or date."""

import secrets

# Crockford's base32: no I, L, O, U, so a reference read over a radio or copied by hand survives.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CAPTIVE_ID_PATTERN = r"^CAP-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"


def new_captive_id() -> str:
    """CAP-XXXX-XXXX-XXXX: 60 random bits."""
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"CAP-{symbols[0:4]}-{symbols[4:8]}-{symbols[8:12]}"
