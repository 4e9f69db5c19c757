"""What every service is made of, wired once, without the web: its definition (definition.py) and
its runtime (runtime.py: database and migrations, event store, outbox relay, consumer)."""
