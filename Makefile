# The two commands a user needs: `make up` (the whole stack) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test test-unit bench chaos deps kafka keycloak postgres browser lint clean contracts compose-secrets

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv"; exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

deps: $(VENV)/.installed kafka

kafka: $(VENV)/.installed
	@deploy/kafka/install.sh
	@$(BIN)/python -c "from deploy.kafka.node import fetch, pinned_version; fetch(); print('Kafka', pinned_version(), 'ready in deploy/kafka/lib')"

## Keycloak (the OpenID Connect provider whose tokens the services verify) from Maven Central,
## unpacked in deploy/keycloak/dist.
## Java and Maven, as for Kafka.
keycloak: $(VENV)/.installed
	@deploy/kafka/install.sh
	@$(BIN)/python -c "from deploy.keycloak.server import fetch, KEYCLOAK_VERSION; fetch(); print('Keycloak', KEYCLOAK_VERSION, 'ready in deploy/keycloak/dist')"

postgres:
	@deploy/postgres/install.sh

browser:
	@deploy/browser/install.sh

## Start Keycloak, Kafka and the three services on SQLite (./var); Ctrl-C stops everything.
up: deps keycloak
	$(BIN)/captives up

## Every test: unit, integration and end-to-end, against a real Kafka, PostgreSQL and Keycloak it starts itself.
test: deps postgres browser keycloak
	$(BIN)/pytest

## Benchmarks against a real Kafka and PostgreSQL: a table, bench/results/<timestamp>.json and
## docs/performance.md. Quick sizes; `make bench ARGS=--full` for the issue's (ARGS: see python -m bench --help).
bench: deps postgres keycloak
	$(BIN)/python -m bench $(ARGS)

## Only the fast tests that need no broker or database.
test-unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

## Faults and bad input: the long versions of the fuzz tests (schemathesis on every service's
## OpenAPI, hypothesis on every event version, raw HTTP edge cases), then 10,000 writes under two
## rounds of every fault and the history checker's table, on one Kafka broker and then on a
## cluster of three; fails on what `make test`'s short runs fail on.
chaos: deps postgres keycloak
	CHAOS_FULL=1 $(BIN)/pytest tests/integration/test_api_fuzz.py tests/integration/test_bad_input.py tests/unit/test_event_contracts.py
	$(BIN)/python -m tests.chaos

## The Kafka principals' passwords docker-compose.yml mounts as secrets (var/kafka/credentials),
## each service's key-encryption key as its env file (var/keys/<service>.env) and its signing key,
## and PostgreSQL's logins (var/postgres); git-ignored, kept if they exist: run once before
## `docker compose up`.
compose-secrets: $(VENV)/.installed
	$(BIN)/captives kafka credentials var/kafka/credentials --for-containers
	$(BIN)/captives keys compose-env var/keys
	$(BIN)/captives keys compose-database var/postgres

## Regenerate the contract documents under docs/ (AsyncAPI, OpenAPI, event JSON Schemas).
contracts: $(VENV)/.installed
	$(BIN)/captives contracts write

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf var .pytest_cache .ruff_cache
