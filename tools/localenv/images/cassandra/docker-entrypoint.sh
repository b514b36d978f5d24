#!/usr/bin/env bash
# Entrypoint of the Cassandra test image. Like the official image's, for what the
# collection uses (docs/images.md):
#   - arguments starting with '-' are options of `cassandra -f`;
#   - started as root, it hands the data, log and configuration directories to cassandra
#     (999) and drops to that user;
#   - for `cassandra`, the CASSANDRA_* variables are written into cassandra.yaml and
#     cassandra-rackdc.properties in $CASSANDRA_CONF before the server starts.
set -Eeuo pipefail

CASSANDRA_CONF="${CASSANDRA_CONF:-/etc/cassandra}"

# Rewrites a file through a copy, so only the file (not its directory) must be writable.
edit() {  # file sed-expression
  local tmp
  tmp="$(mktemp)"
  sed -E "$2" "$1" >"$tmp"
  cat "$tmp" >"$1"
  rm -f "$tmp"
}

# A value as a sed replacement: its own backslashes, '&' and the '|' delimiter escaped.
literal() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

first_address() { hostname -i | awk '{print $1}'; }

configure() {
  local yaml="$CASSANDRA_CONF/cassandra.yaml" key var value
  : "${CASSANDRA_RPC_ADDRESS:=0.0.0.0}"
  : "${CASSANDRA_LISTEN_ADDRESS:=auto}"
  [ "$CASSANDRA_LISTEN_ADDRESS" = auto ] && CASSANDRA_LISTEN_ADDRESS="$(first_address)"
  : "${CASSANDRA_BROADCAST_ADDRESS:=$CASSANDRA_LISTEN_ADDRESS}"
  [ "$CASSANDRA_BROADCAST_ADDRESS" = auto ] && CASSANDRA_BROADCAST_ADDRESS="$(first_address)"
  : "${CASSANDRA_BROADCAST_RPC_ADDRESS:=$CASSANDRA_BROADCAST_ADDRESS}"
  : "${CASSANDRA_SEEDS:=$CASSANDRA_BROADCAST_ADDRESS}"
  edit "$yaml" 's|^([[:space:]]*- seeds:).*|\1 "'"$(literal "$CASSANDRA_SEEDS")"'"|'
  for key in broadcast_address broadcast_rpc_address cluster_name endpoint_snitch listen_address \
      num_tokens rpc_address; do
    var="CASSANDRA_${key^^}"
    value="${!var:-}"
    [ -n "$value" ] && edit "$yaml" 's|^(# )?('"$key"':).*|\2 '"$(literal "$value")"'|'
  done
  for key in dc rack; do
    var="CASSANDRA_${key^^}"
    value="${!var:-}"
    [ -n "$value" ] && edit "$CASSANDRA_CONF/cassandra-rackdc.properties" \
      's|^('"$key"'=).*|\1'"$(literal "$value")"'|'
  done
  return 0
}

main() {
  if [ "${1:0:1}" = - ]; then
    set -- cassandra -f "$@"
  fi
  if [ "$1" = cassandra ] && [ "$(id -u)" = 0 ]; then
    find /var/lib/cassandra /var/log/cassandra "$CASSANDRA_CONF" \! -user cassandra -exec chown cassandra '{}' +
    exec setpriv --reuid=cassandra --regid=cassandra --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [ "$1" = cassandra ]; then
    configure
  fi
  exec "$@"
}

main "$@"
