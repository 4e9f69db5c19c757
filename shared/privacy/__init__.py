"""Personal data kept private: each captive's key sealing his identity in events (keyring.py), wrapped
with the service's key-encryption key (kek.py), kept in tables of its own (tables.py); erasure destroys it."""
