#!/usr/bin/env bash
# Start-up of a Cassandra node of the datastore.kubernetes cassandra role.
#
# The image provides the programs (`cassandra`, honouring CASSANDRA_CONF, MAX_HEAP_SIZE, HEAP_NEWSIZE
# and JVM_EXTRA_OPTS, and `nodetool`) and its default configuration directory (JVM options, logging).
# This script copies that directory to a writable one, writes the role's cassandra.yaml and
# cassandra-rackdc.properties into it with this pod's address and seeds, and runs Cassandra in the
# foreground.
#
# Environment (set by the role): HOSTNAME, POD_IP, CASSANDRA_SEEDS (the seeds' DNS names, comma
# separated), CASSANDRA_SERVICE (the headless Service's DNS name), CASSANDRA_CONF (the writable
# directory), CASSANDRA_ROLE_CONF (the role's ConfigMap), CASSANDRA_IMAGE_CONF (the image's
# configuration directory), CASSANDRA_REPLACE_ADDRESSES (optional, "<ordinal>=<address>,...").
set -euo pipefail

DATA=${CASSANDRA_DATA:-/var/lib/cassandra}
CQL_PORT=${CASSANDRA_CQL_PORT:-9042}
ordinal=${HOSTNAME##*-}
self="$HOSTNAME.$CASSANDRA_SERVICE"

log() { printf 'cassandra.sh: %s\n' "$*" >&2; }

# Addresses of the other nodes that serve CQL: a node opens its native port only once it has
# joined the ring, so any answer means the ring exists. The headless Service publishes every
# pod, ready or not.
live_peers() {
  local ip
  # No address yet (the first pod of a new ring) is an empty answer, not a failure.
  { getent ahostsv4 "$CASSANDRA_SERVICE" 2>/dev/null || true; } | awk '{print $1}' | sort -u | while read -r ip; do
    [ "$ip" = "$POD_IP" ] && continue
    if timeout 3 bash -c "exec 3<>/dev/tcp/$ip/$CQL_PORT" 2>/dev/null; then
      printf '%s\n' "$ip"
    fi
  done
}

seeds=$CASSANDRA_SEEDS
extra_opts=${JVM_EXTRA_OPTS:-}
# A node with data in its volume has been part of the ring before: it starts as it is.
if [ ! -d "$DATA/data/system" ]; then
  replace=""
  IFS=, read -r -a replacements <<<"${CASSANDRA_REPLACE_ADDRESSES:-}"
  for item in "${replacements[@]}"; do
    [ "${item%%=*}" = "$ordinal" ] && replace=${item#*=}
  done
  if [ -n "$replace" ]; then
    # The operator named the address of the dead node this one replaces: it streams that node's
    # data and takes over its tokens.
    log "empty data: replacing the node at $replace (streams its data)"
    extra_opts="$extra_opts -Dcassandra.replace_address_first_boot=$replace"
  fi
  if [[ ",$seeds," == *",$self,"* ]]; then
    # A seed never bootstraps: an empty seed that joined an existing ring as a seed would own
    # ranges without their data. So it leaves itself out of its seed list and bootstraps
    # (streams) from the live nodes; only a seed that finds no ring founds one.
    peers=$(live_peers | paste -sd, -)
    if [ -n "$peers" ]; then
      others=$(tr , '\n' <<<"$seeds" | grep -vxF "$self" | paste -sd, - || true)
      seeds=${others:+$others,}$peers
      log "seed with empty data and a ring already up ($peers): bootstrapping from it instead of seeding"
    else
      log "seed with empty data and no ring up: founding the ring"
    fi
  fi
fi

mkdir -p "$CASSANDRA_CONF"
cp -R "$CASSANDRA_IMAGE_CONF/." "$CASSANDRA_CONF/"
sed -e "s|__SEEDS__|$seeds|" -e "s|__ADDRESS__|$POD_IP|g" "$CASSANDRA_ROLE_CONF/cassandra.yaml" >"$CASSANDRA_CONF/cassandra.yaml"
cp "$CASSANDRA_ROLE_CONF/cassandra-rackdc.properties" "$CASSANDRA_CONF/cassandra-rackdc.properties"
log "node $HOSTNAME at $POD_IP, seeds $seeds"

export JVM_EXTRA_OPTS=$extra_opts
exec cassandra -f
