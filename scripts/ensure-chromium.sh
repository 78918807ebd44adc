#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser test (tests/e2e/test_live_page.py).
# Idempotent: an installed browser is left alone. No tool downloads a browser of its own here.
set -euo pipefail

browser=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$browser" ]; then
  exit 0
fi
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "ensure-chromium: need root (or sudo) to run: $*" >&2; return 1
  fi
}
echo "ensure-chromium: installing chromium"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
"$browser" --version
