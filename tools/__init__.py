"""The operator tooling: the `captives` command line (tools/cli.py), the demo, and what they share.
Nothing in services/ imports it."""
