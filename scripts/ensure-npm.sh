#!/usr/bin/env bash
# Install the JavaScript SDKs the end-to-end tests drive (tests/e2e/js: @segment/analytics-node,
# and @segment/analytics-next, whose browser bundle the browser test serves) exactly as
# package-lock.json pins them. Idempotent: `npm ci` runs only when the lock file changed.
set -euo pipefail

dir=$(cd "$(dirname "$0")/../tests/e2e/js" && pwd)
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "ensure-npm: need root (or sudo) to run: $*" >&2; return 1
  fi
}
if ! command -v npm >/dev/null; then
  echo "ensure-npm: installing Debian's nodejs and npm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
# @segment/analytics-node 3.x declares node >= 20 (Debian 12 ships 18: it runs, unsupported).
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "ensure-npm: warning: node $(node --version); @segment/analytics-node wants 20 or newer" >&2
fi
stamp="$dir/node_modules/.installed-$(cksum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -e "$stamp" ]; then
  exit 0
fi
echo "ensure-npm: npm ci in $dir"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
rm -f "$dir"/node_modules/.installed-*
touch "$stamp"
