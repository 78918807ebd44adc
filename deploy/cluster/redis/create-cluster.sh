#!/bin/sh
# Once, after the six nodes answer: join them into one cluster of three masters with one
# replica each. Does nothing if they already form one (a second `up`).
set -eu
nodes="redis-1 redis-2 redis-3 redis-4 redis-5 redis-6"
if redis-cli -h redis-1 cluster info | grep -q '^cluster_state:ok'; then
  echo "redis cluster already formed"; exit 0
fi
addresses=""
for node in $nodes; do
  addresses="$addresses $(getent hosts "$node" | cut -d' ' -f1):6379"
done
# shellcheck disable=SC2086  # one argument per node
redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
