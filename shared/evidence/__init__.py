"""Tamper evidence: hash chains over each captive's events (chain.py), records signed by the
service that wrote them (signing.py), Merkle roots (merkle.py) and signed checkpoints of a topic
(checkpoints.py)."""
