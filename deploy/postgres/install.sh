#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when it is missing, for the tests' throwaway clusters.
# Does nothing when a server is already installed, or when DATABASE_URL names one to use.
set -euo pipefail
if [ -n "${DATABASE_URL:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing PostgreSQL from Debian's packages (once per machine)..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
# Debian starts a system cluster on 5432; the tests start their own on a free port instead.
$sudo systemctl disable --now postgresql >/dev/null 2>&1 || $sudo service postgresql stop >/dev/null 2>&1 || true
