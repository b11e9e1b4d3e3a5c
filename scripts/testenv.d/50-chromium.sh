#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser test (tests/e2e/test_dashboard.py), driven by
# Playwright with executable_path=/usr/bin/chromium: no Playwright browser download is needed,
# which matters on an offline machine. A no-op when /usr/bin/chromium already exists.
# Fonts come with it so text renders in screenshots. Installing needs root (apt-get); without it
# the step says what to run and the test skips.
set -euo pipefail
chromium="${DORAFLOW_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$chromium" ]]; then
  echo "  chromium: $("$chromium" --version 2>/dev/null || echo present) (installed)"
  exit 0
fi
if [[ "$(id -u)" != "0" ]]; then
  echo "  chromium: missing and not root; install it with: sudo apt-get install -y chromium" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium fonts-liberation fonts-dejavu-core >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y --no-install-recommends chromium fonts-liberation fonts-dejavu-core
}
echo "  chromium: $("$chromium" --version)"
