#!/usr/bin/env bash
# What the ClickHouse cluster tests (pytest -m cluster) start for themselves: Debian's
# `zookeeper` (and a Java runtime, its dependency) beside the clickhouse-server that
# ensure-clickhouse.sh installs. Only installs: the tests start ZooKeeper and four
# clickhouse-server processes on their own ports (tests/clickhouse_cluster.py), never systemd.
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "ensure-cluster: need root (or sudo) to run: $*" >&2; return 1
  fi
}

if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null; then
  echo "ensure-cluster: zookeeper already installed; nothing to do"
  exit 0
fi
echo "ensure-cluster: installing zookeeper"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper
