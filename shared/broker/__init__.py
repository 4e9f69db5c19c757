"""Kafka: every client the project makes (clients.py), who it connects as (access.py), and each
principal's ACLs (acls.py)."""
