"""Deployment and local-run tooling: the real Kafka broker and PostgreSQL cluster that `make up`,
the tests and the benchmarks start, and the container/compose files for machines with Docker."""
