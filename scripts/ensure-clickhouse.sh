#!/usr/bin/env bash
# Make sure a ClickHouse server answers on 127.0.0.1:9000 (or $CLICKHOUSE_PORT). Idempotent: a running server is left
# alone; a missing one is installed from Debian (clickhouse-server 18.16) and started detached.
set -euo pipefail

config=${CLICKHOUSE_CONFIG:-/etc/clickhouse-server/config.xml}
port=${CLICKHOUSE_PORT:-9000}  # the native port that config listens on
log_dir=${CLICKHOUSE_LOG_DIR:-/var/log/clickhouse-server}
log=$log_dir/dedup-start.log

say() { echo "ensure-clickhouse: $*"; }
answers() { clickhouse-client --host 127.0.0.1 --port "$port" -q 'SELECT 1' >/dev/null 2>&1; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "ensure-clickhouse: need root (or sudo) to run: $*" >&2; return 1
  fi
}

if command -v clickhouse-client >/dev/null && answers; then
  say "server already answers; nothing to do"
  exit 0
fi

if ! command -v clickhouse-server >/dev/null || ! command -v clickhouse-client >/dev/null; then
  say "installing clickhouse-server and clickhouse-client"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client
fi

# Started by hand rather than through systemd, which containers and CI runners often lack.
as_root mkdir -p "$log_dir"
say "starting clickhouse-server --config-file=$config (output in $log)"
as_root setsid --fork clickhouse-server --config-file="$config" >>"$log" 2>&1 </dev/null

for _ in $(seq 60); do
  if answers; then
    say "server answers: $(clickhouse-client --host 127.0.0.1 --port "$port" -q 'SELECT version()')"
    exit 0
  fi
  sleep 1
done
echo "ensure-clickhouse: server did not answer within 60 s; see $log" >&2
exit 1
