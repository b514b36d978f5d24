#!/usr/bin/env bash
# Start-up and readiness of an Elasticsearch node of the datastore.kubernetes elasticsearch role.
#
#   elasticsearch.sh start   (main container) Elasticsearch in the foreground; with
#                            cluster.initial_master_nodes only while no cluster has formed
#   elasticsearch.sh ready   (readiness probe) the node has joined a cluster with a master
#
# The image provides bash and Elasticsearch under ES_HOME (/usr/share/elasticsearch); the role's
# elasticsearch.yml is mounted into its configuration directory.
#
# cluster.initial_master_nodes bootstraps a new cluster. Left in place after the cluster formed, a
# node that comes back with an empty volume and cannot reach the others could bootstrap a second
# cluster beside the first. So it is given only when this node has never seen a formed cluster (no
# mark in its data directory, which the readiness check writes once the cluster has a UUID) and
# no other node answers with a formed cluster.
#
# Environment (set by the role): ES_INITIAL_MASTER_NODES (comma separated node names),
# ES_SERVICE (the headless Service's DNS name), POD_IP; optional ES_HOME, ES_DATA, ES_HTTP_PORT.
set -euo pipefail

ES_HOME=${ES_HOME:-/usr/share/elasticsearch}
DATA=${ES_DATA:-$ES_HOME/data}
HTTP_PORT=${ES_HTTP_PORT:-9200}
MARK=$DATA/.datastore-cluster-formed

log() { printf 'elasticsearch.sh: %s\n' "$*" >&2; }

# GET <path> from <host> over plain HTTP with bash alone (the image needs no HTTP client):
# prints the status line's code, a blank line, then the body.
http_get() {
  exec 3<>"/dev/tcp/$1/$HTTP_PORT"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n\r\n' "$2" "$1" >&3
  local status
  read -r _ status _ <&3
  printf '%s\n\n' "$status"
  tr -d '\r' <&3
}

# Whether the node at <host> belongs to a formed cluster: the cluster state it holds has a cluster
# UUID ("_na_" until the node has joined a cluster).
formed_at() {
  local reply
  reply=$(timeout 5 bash "$0" http-get "$1" '/_cluster/state/metadata?local=true&filter_path=metadata.cluster_uuid' \
    2>/dev/null) || return 1
  [ "${reply%%$'\n'*}" = 200 ] && [[ "$reply" == *'"cluster_uuid"'* ]] && [[ "$reply" != *'"_na_"'* ]]
}

formed_elsewhere() {
  local ip
  for ip in $({ getent ahostsv4 "$ES_SERVICE" 2>/dev/null || true; } | awk '{print $1}' | sort -u); do
    [ "$ip" = "${POD_IP:-}" ] && continue
    if formed_at "$ip"; then
      log "the node at $ip belongs to a formed cluster"
      return 0
    fi
  done
  return 1
}

case "${1:-}" in
  start)
    args=()
    if [ -e "$MARK" ]; then
      log "this node has been part of a formed cluster: no cluster.initial_master_nodes"
    elif formed_elsewhere; then
      log "joining the formed cluster: no cluster.initial_master_nodes"
    else
      log "no formed cluster found: cluster.initial_master_nodes=$ES_INITIAL_MASTER_NODES"
      args+=("-Ecluster.initial_master_nodes=$ES_INITIAL_MASTER_NODES")
    fi
    exec "$ES_HOME/bin/elasticsearch" "${args[@]}"
    ;;
  ready)
    reply=$(timeout 5 bash "$0" http-get 127.0.0.1 '/_cluster/health?local=true' 2>/dev/null) || exit 1
    [ "${reply%%$'\n'*}" = 200 ] || exit 1
    if [ ! -e "$MARK" ] && formed_at 127.0.0.1; then
      touch "$MARK"
    fi
    ;;
  http-get)
    http_get "$2" "$3"
    ;;
  *)
    log "usage: elasticsearch.sh start|ready"
    exit 2
    ;;
esac
