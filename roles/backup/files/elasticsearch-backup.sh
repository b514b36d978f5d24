#!/usr/bin/env bash
# Jobs of the datastore.kubernetes backup role for Elasticsearch (backup_engine: elasticsearch).
#
#   elasticsearch-backup.sh ship    copy the snapshot repository (a shared-filesystem "fs" repository on the
#                                   volume every Elasticsearch pod mounts) to BACKUP_URL, the off-site copy
#   elasticsearch-backup.sh fetch   copy it back from BACKUP_URL into an EMPTY repository directory (a
#                                   fresh cluster, a lost volume) before a restore
#
# Elasticsearch itself says whether a snapshot is complete; the repository's root "index.latest" names
# the generation (index-N) that lists the complete snapshots, and everything it points at is written
# before it. The copy keeps that order: the new files first, index.latest after them, and only then the
# files the repository no longer uses are removed from the copy. An interrupted ship leaves the previous
# consistent copy readable.
#
# Environment: BACKUP_URL (an rclone on-the-fly S3 remote ":s3,...:bucket/prefix", or a directory of a
# mounted volume), REPOSITORY_DIR (the repository on the mounted snapshot volume). The store's keys are
# read from files and reach rclone through its environment only. Nothing secret is printed.
set -euo pipefail

export BACKUP_SCRIPT=elasticsearch-backup.sh
# shellcheck source=backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/backup-common.sh"
: "${REPOSITORY_DIR:?REPOSITORY_DIR is not set}"

# The generation index.latest names (8 bytes, big-endian), -1 when there is none.
generation() {  # file
  [ -s "$1" ] || { echo -1; return; }
  echo $((16#$(od -An -tx1 -N8 "$1" | tr -d ' \n')))
}

ship() {
  [ -s "$REPOSITORY_DIR/index.latest" ] \
    || die "$REPOSITORY_DIR holds no snapshot repository (no index.latest): nothing shipped, the copy is left as it is"
  local here there tmp
  tmp=$(mktemp -d)
  here=$(generation "$REPOSITORY_DIR/index.latest")
  rc copyto "$BACKUP_URL/index.latest" "$tmp/index.latest" 2>/dev/null || true
  there=$(generation "$tmp/index.latest")
  # A repository that went back (a volume made anew) must not replace a copy that is ahead of it.
  [ "$here" -ge "$there" ] || die "the copy is at generation $there, the repository at $here: not shipped over a newer copy"
  log "shipping repository generation $here (the copy was at $there) to the store"
  rc copy --exclude /index.latest "$REPOSITORY_DIR" "$BACKUP_URL"
  rc copyto "$REPOSITORY_DIR/index.latest" "$BACKUP_URL/index.latest"
  rc sync "$REPOSITORY_DIR" "$BACKUP_URL"
  printf '{"kind": "ship", "generation": %s, "files": %s, "bytes": %s, "completed": "%s"}\n' "$here" \
    "$(find "$REPOSITORY_DIR" -type f | wc -l)" "$(du -sb "$REPOSITORY_DIR" | cut -f1)" "$(now)"
  rm -rf "$tmp"
}

fetch() {
  if [ -s "$REPOSITORY_DIR/index.latest" ]; then
    log "$REPOSITORY_DIR already holds a repository (generation $(generation "$REPOSITORY_DIR/index.latest")): nothing fetched"
    printf '{"kind": "fetch", "fetched": false}\n'
    return 0
  fi
  # (rclone lsf of a file that is not there prints nothing and succeeds)
  [ -n "$(rc lsf "$BACKUP_URL/index.latest" 2>/dev/null || true)" ] || die "the store holds no copy of the repository"
  mkdir -p "$REPOSITORY_DIR"
  # index.latest last: Elasticsearch sees the repository only once the rest is there.
  rc copy --exclude /index.latest "$BACKUP_URL" "$REPOSITORY_DIR"
  rc copyto "$BACKUP_URL/index.latest" "$REPOSITORY_DIR/index.latest"
  log "fetched repository generation $(generation "$REPOSITORY_DIR/index.latest")"
  printf '{"kind": "fetch", "fetched": true, "generation": %s, "files": %s}\n' \
    "$(generation "$REPOSITORY_DIR/index.latest")" "$(find "$REPOSITORY_DIR" -type f | wc -l)"
}

store_credentials
case "${1:-}" in
  ship) ship ;;
  fetch) fetch ;;
  *) die "usage: elasticsearch-backup.sh ship|fetch" ;;
esac
