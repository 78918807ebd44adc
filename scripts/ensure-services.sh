#!/usr/bin/env bash
# Make sure the distributed profile's servers answer on loopback: Redis, RabbitMQ, ClickHouse.
# Idempotent: a running server is left alone; a missing one is installed (Debian) and started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
wait_for() {  # wait_for NAME SECONDS CMD...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "ensure-services: $name did not become ready in ${seconds}s" >&2; return 1
}

# The suites also start redis-servers of their own (a Redis Cluster on 17101-17106), so the
# binaries are needed even where the shared Redis answers from elsewhere.
command -v redis-server >/dev/null || apt_install redis-server
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  echo "ensure-services: starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis 30 redis-cli -h 127.0.0.1 ping
fi

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  echo "ensure-services: starting rabbitmq"
  rabbitmq-server -detached || true
  wait_for rabbitmq 90 rabbitmq-diagnostics -q check_port_connectivity
fi

"$here/ensure-clickhouse.sh"
