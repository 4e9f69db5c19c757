"""Benchmarks against a real Kafka broker and PostgreSQL: `make bench` (python -m bench)."""

import warnings

# As pytest's configuration does: kafka-python's legacy importlib.resources calls, and Starlette's
# wish for httpx2 (its TestClient runs B6 and B8), are not ours to fix and would clutter the output.
warnings.filterwarnings("ignore", message="(open|read)_text is deprecated", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
