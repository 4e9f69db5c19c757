"""What every process stands on: its database (db.py), settings, structured logs, tracing, failure
points for the chaos suite, the shared errors, private folders."""
