#!/usr/bin/env bash
# Backup Jobs of the datastore.kubernetes backup role for Cassandra (backup_engine: cassandra).
#
#   cassandra-backup.sh ship      one node's snapshot BACKUP_ID (its volume mounted read-only at
#                                 BACKUP_DATA) and the schema taken with it, to the store
#   cassandra-backup.sh mark      backup.json, once every node of BACKUP_NODES has its part stored
#   cassandra-backup.sh list      the complete snapshots, one JSON object a line
#   cassandra-backup.sh restore   a complete snapshot into the ring BACKUP_HOSTS: the schema first
#                                 (cqlsh), then every node's SSTables streamed by sstableloader
#
# The snapshot itself is taken in the datastore's pods (the cassandra_snapshot module: nodetool
# snapshot -t <id> on every node at once, and DESCRIBE SCHEMA written to
# <data>/snapshot-schema/<id>.cql); these Jobs only move files.
#
# Layout under BACKUP_URL (an rclone on-the-fly S3 remote ":s3,...:bucket/prefix", or a directory on
# a mounted volume):
#   snapshot/<id>/<node>/<keyspace>/<table>/...   the node's snapshot files of the table (SSTables,
#                                                 the snapshot's manifest.json and the table's schema.cql)
#   snapshot/<id>/<node>/schema.cql               DESCRIBE SCHEMA, taken right after the node's snapshot
#   snapshot/<id>/<node>/node.json                written after the node's files: {node, files, bytes}
#   snapshot/<id>/backup.json                     written LAST, once every node's node.json is there: a
#                                                 snapshot without it is incomplete and is neither listed
#                                                 nor restored
# Only the keyspaces of the datastore's users go (not system, system_*).
#
# Environment: BACKUP_URL, BACKUP_ID; ship: BACKUP_NODE, BACKUP_DATA, BACKUP_BWLIMIT (optional,
# rclone --bwlimit); mark: BACKUP_NODES (comma separated), BACKUP_RING; restore: BACKUP_HOSTS (the new
# ring's nodes, comma separated), BACKUP_ID optional (else the newest complete one).
set -euo pipefail

export BACKUP_SCRIPT=cassandra-backup.sh
# shellcheck source=backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/backup-common.sh"
export HOME=$TMP

# The content of a stored file; fails when there is none. (rclone cat of a path that is no file
# reads it as a directory: an empty one, and succeeds.)
stored() {
  local content
  content=$(rc cat "$1" 2>/dev/null) || return 1
  [ -n "$content" ] || return 1
  printf '%s\n' "$content"
}

# ------------------------------------------------------------------------------ ship

ship() {
  local node=${BACKUP_NODE:?BACKUP_NODE is not set} id=${BACKUP_ID:?BACKUP_ID is not set}
  local data=${BACKUP_DATA:-/var/lib/cassandra} dest dir table_dir keyspace table tables=0 files bytes bw=()
  dest=$BACKUP_URL/snapshot/$id/$node
  [ -n "${BACKUP_BWLIMIT:-}" ] && bw=(--bwlimit "$BACKUP_BWLIMIT")
  [ -s "$data/snapshot-schema/$id.cql" ] || die "$node has no schema of snapshot $id ($data/snapshot-schema/$id.cql)"
  log "shipping snapshot $id of $node to $dest"
  for dir in "$data"/data/*/*/snapshots/"$id"; do
    [ -d "$dir" ] || continue
    table_dir=${dir%/snapshots/*}
    keyspace=$(basename "$(dirname "$table_dir")")
    table=$(basename "$table_dir")
    table=${table%-*}
    case $keyspace in system | system_*) continue ;; esac
    rc copy "${bw[@]}" "$dir" "$dest/$keyspace/$table"
    tables=$((tables + 1))
  done
  rc copyto "$data/snapshot-schema/$id.cql" "$dest/schema.cql"
  files=$(rc lsf -R --files-only "$dest" | wc -l)
  bytes=$(rc size --json "$dest" | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')
  printf '{"node": "%s", "tables": %s, "files": %s, "bytes": %s, "completed": "%s"}\n' \
    "$node" "$tables" "$files" "${bytes:-0}" "$(now)" | rc rcat "$dest/node.json"
  log "snapshot $id of $node stored: $tables tables, $files files, ${bytes:-0} bytes"
}

# ------------------------------------------------------------------------------ mark

mark() {
  local id=${BACKUP_ID:?BACKUP_ID is not set} node json bytes=0 files=0 n nodes=() started
  IFS=, read -r -a nodes <<<"${BACKUP_NODES:?BACKUP_NODES is not set}"
  started=${BACKUP_STARTED:-$(now)}
  for node in "${nodes[@]}"; do
    json=$(stored "$BACKUP_URL/snapshot/$id/$node/node.json") || die "$node's part of snapshot $id is not stored"
    n=$(printf '%s' "$json" | sed -n 's/.*"bytes": \([0-9]*\).*/\1/p')
    bytes=$((bytes + ${n:-0}))
    n=$(printf '%s' "$json" | sed -n 's/.*"files": \([0-9]*\).*/\1/p')
    files=$((files + ${n:-0}))
  done
  printf '{"kind": "snapshot", "id": "%s", "ring": "%s", "nodes": ["%s"], "started": "%s", "completed": "%s", "files": %s, "bytes": %s}\n' \
    "$id" "${BACKUP_RING:-}" "$(printf '%s' "${BACKUP_NODES}" | sed 's/,/", "/g')" "$started" "$(now)" "$files" "$bytes" \
    | rc rcat "$BACKUP_URL/snapshot/$id/backup.json"
  log "snapshot $id complete: ${#nodes[@]} nodes, $files files, $bytes bytes"
  rc cat "$BACKUP_URL/snapshot/$id/backup.json"
}

# ------------------------------------------------------------------------------ list

# Only what carries its marker: an interrupted backup has none.
list() {
  local id
  for id in $(rc lsf --dirs-only "$BACKUP_URL/snapshot" 2>/dev/null | tr -d /); do
    stored "$BACKUP_URL/snapshot/$id/backup.json" || true
  done
}

# ------------------------------------------------------------------------------ restore

newest() {
  local id best=""
  for id in $(rc lsf --dirs-only "$BACKUP_URL/snapshot" 2>/dev/null | tr -d / | sort); do
    stored "$BACKUP_URL/snapshot/$id/backup.json" >/dev/null && best=$id
  done
  printf '%s' "$best"
}

cql() {  # host cqlsh-arguments...
  local host=$1
  shift
  cqlsh --request-timeout=120 "$host" "$@"
}

restore() {
  local hosts=${BACKUP_HOSTS:?BACKUP_HOSTS is not set} first id json node dir keyspace existing taken="" tables=0
  local work=$TMP/restore nodes=()
  first=${hosts%%,*}
  id=${BACKUP_ID:-$(newest)}
  [ -n "$id" ] || die "no complete snapshot in $BACKUP_URL/snapshot"
  json=$(stored "$BACKUP_URL/snapshot/$id/backup.json") || die "snapshot $id is not complete (no backup.json)"
  mapfile -t nodes < <(printf '%s' "$json" | sed -n 's/.*"nodes": \[\([^]]*\)\].*/\1/p' | tr -d ' "' | tr , '\n')
  [ "${#nodes[@]}" -gt 0 ] || die "snapshot $id names no nodes"
  rm -rf "$work"
  mkdir -p "$work"
  # From the first statement on: cqlsh may print a warning line ahead of DESCRIBE's output.
  rc cat "$BACKUP_URL/snapshot/$id/${nodes[0]}/schema.cql" | sed -n '/^CREATE /,$p' >"$work/schema.cql"
  # The keyspaces of the backup must not exist in the new ring: nothing is restored over data.
  existing=$(cql "$first" -e 'SELECT keyspace_name FROM system_schema.keyspaces' | sed -n 's/^ *\([A-Za-z0-9_]*\) *$/\1/p')
  while read -r keyspace; do
    if grep -qxF "$keyspace" <<<"$existing"; then taken="$taken $keyspace"; fi
  done < <(sed -n 's/^CREATE KEYSPACE \("\{0,1\}\)\([A-Za-z0-9_]*\)\1 .*/\2/p' "$work/schema.cql")
  [ -z "$taken" ] || die "the ring at $first already has the keyspace(s)$taken: a restore goes into a fresh ring only; nothing was written"
  log "restoring snapshot $id (${nodes[*]}) into the ring at $hosts: the schema first"
  cql "$first" -f "$work/schema.cql"
  for node in "${nodes[@]}"; do
    log "loading the SSTables of $node"
    rc copy --exclude schema.cql --exclude manifest.json --exclude node.json \
      "$BACKUP_URL/snapshot/$id/$node" "$work/$node"
    for dir in "$work/$node"/*/*; do
      [ -d "$dir" ] || continue
      sstableloader --no-progress -d "$hosts" "$dir" >"$work/loader.log" 2>&1 \
        || { tail -n 30 "$work/loader.log" >&2; die "sstableloader failed for $dir"; }
      tables=$((tables + 1))
    done
    rm -rf "${work:?}/$node"
  done
  printf '{"kind": "restore", "id": "%s", "nodes": %s, "tables_loaded": %s, "into": "%s", "completed": "%s"}\n' \
    "$id" "${#nodes[@]}" "$tables" "$hosts" "$(now)"
}

store_credentials
case "${1:-}" in
  ship) ship ;;
  mark) mark ;;
  list) list ;;
  restore) restore ;;
  *) die "usage: cassandra-backup.sh ship|mark|list|restore" ;;
esac
