#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (GraphiQL, dashboard). Needs root.
# Playwright's own browser download is never used: playwright-core drives /usr/bin/chromium.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
chromium --version
