"""Personal data kept private: each captive's key, wrapped with the service's KEK, sealing his
identity in events; erasure destroys the key (sealing.py)."""
