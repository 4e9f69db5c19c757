#!/bin/sh
# docker-compose: the stack's PostgreSQL, run once by the image's entrypoint as its superuser
# (/docker-entrypoint-initdb.d). One database per service, owned by `captives`, the services'
# login, which is no superuser; and Keycloak's own database, owned by `keycloak`, which holds the
# realm's signing keys and every client secret: no other login may connect to it, and `keycloak`
# may connect to nothing else. The passwords are docker secrets `make compose-secrets` made
# (SECRETS_DIR, default /run/secrets); psql binds them as variables, never into the SQL text.
set -eu
secrets="${SECRETS_DIR:-/run/secrets}"
captives_password="$(cat "$secrets/postgres-captives")"
keycloak_password="$(cat "$secrets/postgres-keycloak")"

psql -v ON_ERROR_STOP=1 --no-psqlrc -d postgres \
    -v captives_password="$captives_password" -v keycloak_password="$keycloak_password" <<'SQL'
CREATE ROLE captives LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'captives_password';
CREATE ROLE keycloak LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'keycloak_password';
CREATE DATABASE intake OWNER captives;
CREATE DATABASE status OWNER captives;
CREATE DATABASE disposition OWNER captives;
CREATE DATABASE keycloak OWNER keycloak;
-- Only a database's owner connects to it (and the superuser, whose password only this container has).
REVOKE CONNECT, TEMPORARY ON DATABASE intake, status, disposition, keycloak, postgres FROM PUBLIC;
GRANT CONNECT ON DATABASE intake, status, disposition TO captives;
GRANT CONNECT ON DATABASE keycloak TO keycloak;
SQL
