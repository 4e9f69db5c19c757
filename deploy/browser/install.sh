#!/usr/bin/env bash
# Installs Debian's Chromium when missing: the tests open the HTML audit report in it (headless)
# and save a screenshot, as a person reading the report would see it.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Please install Chromium (the audit report test renders the HTML report in it)." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing Chromium from Debian's packages (once per machine)..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
