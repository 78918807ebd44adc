#!/usr/bin/env bash
# Install the JavaScript SDKs the end-to-end tests drive (tests/e2e/js: @segment/analytics-node,
# and @segment/analytics-next, whose browser bundle the browser test serves) exactly as
# package-lock.json pins them. Idempotent: `npm ci` runs only when the lock file changed.
set -euo pipefail

dir=$(cd "$(dirname "$0")/../tests/e2e/js" && pwd)
if ! command -v npm >/dev/null; then
  echo "ensure-npm: npm is missing (Node.js 18 or newer is needed for the SDK tests)" >&2
  exit 1
fi
stamp="$dir/node_modules/.installed-$(cksum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -e "$stamp" ]; then
  exit 0
fi
echo "ensure-npm: npm ci in $dir"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
rm -f "$dir"/node_modules/.installed-*
touch "$stamp"
