#!/usr/bin/env bash
# Backup Jobs of the datastore.kubernetes backup role for PostgreSQL (backup_engine: postgres).
#
#   postgres-backup.sh base-backup   a base backup of the primary (pg_basebackup, WAL included)
#   postgres-backup.sh dump          a logical dump (pg_dump, custom format) of BACKUP_DATABASE
#   postgres-backup.sh list          the complete base backups and dumps, one JSON object a line
#   postgres-backup.sh prune         the retention (BACKUP_KEEP_LAST, BACKUP_MAX_AGE_DAYS): older complete base
#                                    backups, the WAL before the oldest kept one and interrupted backups older
#                                    than it removed (BACKUP_PRUNE_DRY_RUN=1: only listed); base-backup runs it
#                                    after a successful backup when a retention is set
#   postgres-backup.sh restore       a base backup, recovered to BACKUP_TARGET_TIME (or to the end
#                                    of the archived WAL), into the empty data directory PGDATA
#
# Layout under BACKUP_URL (an rclone on-the-fly S3 remote ":s3,...:bucket/prefix", or a directory on
# a mounted volume):
#   base/<id>/base.tar.gz    the data directory as pg_basebackup's tar, with the WAL to make it consistent
#   base/<id>/backup.json    written last, only after everything else is stored: a backup without it is
#                            incomplete (interrupted) and is neither listed nor restored
#   dump/<database>/<id>.dump and <id>.json, the same way
#   wal/<segment>            continuous WAL archiving (the postgres role's wal-archive.sh)
#
# Environment: BACKUP_URL, PGHOST, PGPORT; base-backup: BACKUP_REPLICATION_USER (password in
# $BACKUP_SECRETS/replication/password), BACKUP_MAX_RATE (optional, pg_basebackup --max-rate);
# dump: BACKUP_DATABASE (login in $BACKUP_SECRETS/superuser/{username,password}); restore: PGDATA,
# BACKUP_ID (optional, else the newest complete one that ended before the target time),
# BACKUP_TARGET_TIME (optional, a PostgreSQL timestamp with time zone).
# Passwords are read from files and given to libpq through a 0600 password file; the store's keys
# reach rclone through its environment only. Nothing secret is printed.
set -euo pipefail

export BACKUP_SCRIPT=postgres-backup.sh
# shellcheck source=backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/backup-common.sh"

find_programs() {
  command -v pg_basebackup >/dev/null 2>&1 && return 0
  local dir newest=""
  # The newest major version installed (the glob sorts 9.6 after 17: compare numbers).
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_basebackup" ] || continue
    if [ -z "$newest" ] || [ "$(basename "$(dirname "$dir")" | cut -d. -f1)" -gt "$(basename "$(dirname "$newest")" | cut -d. -f1)" ]; then
      newest=$dir
    fi
  done
  if [ -n "$newest" ]; then PATH=$newest:$PATH; export PATH; return 0; fi
  die "no PostgreSQL programs (pg_basebackup) on PATH or in /usr/lib/postgresql/*/bin"
}

pgpass() {  # user password-file
  local escaped
  escaped=$(sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' "$2")
  (umask 077 && printf '*:*:*:%s:%s\n' "$1" "$escaped" >"$TMP/backup.pgpass")
  export PGPASSFILE=$TMP/backup.pgpass PGUSER=$1
}

# ------------------------------------------------------------------------------ base backup

base_backup() {
  pgpass "${BACKUP_REPLICATION_USER:?BACKUP_REPLICATION_USER is not set}" "$SECRETS/replication/password"
  local id started rate=() size
  id=$(new_id)
  started=$(now)
  [ -n "${BACKUP_MAX_RATE:-}" ] && rate=(--max-rate="$BACKUP_MAX_RATE")
  log "base backup $id of $PGHOST to $BACKUP_URL/base/$id"
  # One tar on stdout with the WAL written during the backup (-X fetch), so the backup restores on
  # its own; WAL archiving adds the WAL after it for point-in-time recovery.
  pg_basebackup --pgdata=- --format=tar --wal-method=fetch --checkpoint=fast --compress=gzip:1 \
    --label="datastore-backup-$id" --no-password "${rate[@]}" | rc rcat "$BACKUP_URL/base/$id/base.tar.gz"
  size=$(rc lsf --format s "$BACKUP_URL/base/$id/base.tar.gz")
  printf '{"kind": "base", "id": "%s", "host": "%s", "started": "%s", "completed": "%s", "bytes": %s, "start_wal": "%s"}\n' \
    "$id" "$PGHOST" "$started" "$(now)" "${size:-0}" "$(tar_start_wal "$id")" | rc rcat "$BACKUP_URL/base/$id/backup.json"
  log "base backup $id complete (${size:-0} bytes)"
  rc cat "$BACKUP_URL/base/$id/backup.json"
  if [ -n "${BACKUP_KEEP_LAST:-}${BACKUP_MAX_AGE_DAYS:-}" ]; then prune; fi
}

# ------------------------------------------------------------------------------ retention

# The WAL segment a stored base backup starts from, read from the backup_label at the head of its tar
# (the first megabyte is enough; the rest is not fetched).
tar_start_wal() {  # id
  { rc cat --count 1048576 "$BACKUP_URL/base/$1/base.tar.gz" 2>/dev/null || true; } \
    | { tar -xzOf - backup_label 2>/dev/null || true; } \
    | sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*/\1/p'
}

json_field() {  # json key
  printf '%s' "$1" | sed -n "s/.*\"$2\": \"\([^\"]*\)\".*/\1/p"
}

json_list() { local IFS=,; printf '[%s]' "$(for item in "$@"; do printf '"%s",' "$item"; done | sed 's/,$//')"; }

# A complete backup is kept when it is among the newest BACKUP_KEEP_LAST and not older than
# BACKUP_MAX_AGE_DAYS (each only when set); the newest complete backup is always kept. Ids are UTC
# times, so the kept ones are the newest few. Interrupted backups (no marker) older than the oldest
# kept one are removed; newer ones may still be running and stay. WAL segments before the oldest kept
# backup's start (same or older timeline) are removed; timeline history files stay.
prune() {
  local keep_last=${BACKUP_KEEP_LAST:-} max_age=${BACKUP_MAX_AGE_DAYS:-} dry=${BACKUP_PRUNE_DRY_RUN:-}
  if [ -z "$keep_last$max_age" ]; then log "no retention set: nothing pruned"; return 0; fi
  local id json completed age n=0 complete=() kept=() pruned=() interrupted=() start="" oldest="" file
  local now_epoch
  now_epoch=$(date -u +%s)
  for id in $(rc lsf --dirs-only "$BACKUP_URL/base" 2>/dev/null | tr -d / | sort -r); do
    # rclone cat prints nothing (and succeeds) for a file that is not there.
    json=$(rc cat "$BACKUP_URL/base/$id/backup.json" 2>/dev/null) || json=""
    if [ -n "$json" ]; then
      complete+=("$id")
      completed=$(json_field "$json" completed)
      age=$((now_epoch - $(date -u -d "${completed:-1970-01-01T00:00:00Z}" +%s)))
      if [ "$n" -eq 0 ] || { { [ -z "$keep_last" ] || [ "$n" -lt "$keep_last" ]; } && \
           { [ -z "$max_age" ] || awk -v a="$age" -v m="$max_age" 'BEGIN { exit !(a <= m * 86400) }'; }; } && \
           [ "${#pruned[@]}" -eq 0 ]; then
        kept+=("$id"); oldest=$id
        start=$(json_field "$json" start_wal)
      else
        pruned+=("$id")
      fi
      n=$((n + 1))
    else
      interrupted+=("$id")
    fi
  done
  if [ "${#complete[@]}" -eq 0 ]; then log "no complete base backup: nothing pruned"; return 0; fi
  [ -n "$start" ] || start=$(tar_start_wal "$oldest")
  local old_interrupted=()
  for id in "${interrupted[@]}"; do
    if [[ "$id" < "$oldest" ]]; then old_interrupted+=("$id"); fi
  done
  local wal_files=()
  if [ -n "$start" ]; then
    for file in $(rc lsf --files-only "$BACKUP_URL/wal" 2>/dev/null); do
      # <timeline 8><log 8><segment 8>[.partial | .<offset>.backup]; .history files are kept.
      [[ "$file" =~ ^([0-9A-F]{8})([0-9A-F]{16})(\.partial|\.[0-9A-F]{8}\.backup)?$ ]] || continue
      if [[ "${BASH_REMATCH[2]}" < "${start:8:16}" ]] && [[ ! "${BASH_REMATCH[1]}" > "${start:0:8}" ]]; then
        wal_files+=("$file")
      fi
    done
  else
    log "the start of base backup $oldest is unknown: no WAL pruned"
  fi
  local verb=pruning
  [ -z "$dry" ] || verb="would prune"
  log "retention (keep_last=${keep_last:-any}, max_age_days=${max_age:-any}): keeping ${kept[*]}; $verb ${pruned[*]:-no base backup}, ${#old_interrupted[@]} interrupted, ${#wal_files[@]} WAL files before ${start:-?}"
  if [ -z "$dry" ]; then
    for id in "${pruned[@]}" "${old_interrupted[@]}"; do
      # The marker first: a backup half removed is never taken for a complete one.
      rc deletefile "$BACKUP_URL/base/$id/backup.json" 2>/dev/null || true
      rc purge "$BACKUP_URL/base/$id"
    done
    if [ "${#wal_files[@]}" -gt 0 ]; then
      printf '%s\n' "${wal_files[@]}" >"$TMP/prune-wal"
      rc delete --files-from-raw "$TMP/prune-wal" "$BACKUP_URL/wal"
    fi
  fi
  printf '{"kind": "prune", "dry_run": %s, "kept": %s, "pruned": %s, "interrupted": %s, "wal_before": "%s", "wal_files": %s}\n' \
    "$([ -n "$dry" ] && echo true || echo false)" "$(json_list "${kept[@]}")" "$(json_list "${pruned[@]}")" \
    "$(json_list "${old_interrupted[@]}")" "$start" "${#wal_files[@]}"
}

# ------------------------------------------------------------------------------ dump

dump() {
  local db=${BACKUP_DATABASE:?BACKUP_DATABASE is not set} id started size
  pgpass "$(cat "$SECRETS/superuser/username")" "$SECRETS/superuser/password"
  id=$(new_id)
  started=$(now)
  log "dump $id of database $db on $PGHOST to $BACKUP_URL/dump/$db/$id.dump"
  pg_dump --format=custom --compress=1 --no-password --dbname="$db" | rc rcat "$BACKUP_URL/dump/$db/$id.dump"
  size=$(rc lsf --format s "$BACKUP_URL/dump/$db/$id.dump")
  printf '{"kind": "dump", "id": "%s", "database": "%s", "host": "%s", "started": "%s", "completed": "%s", "bytes": %s}\n' \
    "$id" "$db" "$PGHOST" "$started" "$(now)" "${size:-0}" | rc rcat "$BACKUP_URL/dump/$db/$id.json"
  log "dump $id complete (${size:-0} bytes)"
  rc cat "$BACKUP_URL/dump/$db/$id.json"
}

# ------------------------------------------------------------------------------ list

# Only what carries its marker: an interrupted backup has none.
list() {
  local id db file
  for id in $(rc lsf --dirs-only "$BACKUP_URL/base" 2>/dev/null | tr -d /); do
    rc cat "$BACKUP_URL/base/$id/backup.json" 2>/dev/null || true
  done
  for db in $(rc lsf --dirs-only "$BACKUP_URL/dump" 2>/dev/null | tr -d /); do
    for file in $(rc lsf --include '*.json' "$BACKUP_URL/dump/$db" 2>/dev/null); do
      rc cat "$BACKUP_URL/dump/$db/$file" 2>/dev/null || true
    done
  done
}

# ------------------------------------------------------------------------------ restore

# The newest complete base backup that ended before the target (all of them without a target).
choose_backup() {
  local target_epoch=""
  [ -n "${BACKUP_TARGET_TIME:-}" ] && target_epoch=$(date -u -d "$BACKUP_TARGET_TIME" +%s)
  local id json completed best=""
  for id in $(rc lsf --dirs-only "$BACKUP_URL/base" 2>/dev/null | tr -d / | sort); do
    json=$(rc cat "$BACKUP_URL/base/$id/backup.json" 2>/dev/null) || continue
    completed=$(printf '%s' "$json" | sed -n 's/.*"completed": "\([^"]*\)".*/\1/p')
    [ -n "$completed" ] || continue
    if [ -z "$target_epoch" ] || [ "$(date -u -d "$completed" +%s)" -lt "$target_epoch" ]; then best=$id; fi
  done
  printf '%s' "$best"
}

restore() {
  : "${PGDATA:?PGDATA is not set}"
  local root id socket wal state
  root=$(dirname "$PGDATA")
  if [ -s "$PGDATA/PG_VERSION" ]; then
    log "$PGDATA already holds a database cluster: nothing restored over it"
    return 0
  fi
  id=${BACKUP_ID:-$(choose_backup)}
  [ -n "$id" ] || die "no complete base backup in $BACKUP_URL/base${BACKUP_TARGET_TIME:+ that ended before $BACKUP_TARGET_TIME}"
  rc cat "$BACKUP_URL/base/$id/backup.json" >/dev/null 2>&1 || die "base backup $id is not complete (no backup.json)"
  log "restoring base backup $id into $PGDATA${BACKUP_TARGET_TIME:+, recovered to $BACKUP_TARGET_TIME}"
  rm -rf "$PGDATA.restore" "$root/restore-wal"
  mkdir -p "$PGDATA.restore" "$root/restore-wal"
  chmod 700 "$PGDATA.restore"
  rc cat "$BACKUP_URL/base/$id/base.tar.gz" | tar -xzf - -C "$PGDATA.restore"
  # The archived WAL after the backup, replayed by a private server (no TCP, a socket of its own,
  # archiving off) until the target; then it promotes, and is stopped with a checkpoint.
  wal=0
  if rc lsf "$BACKUP_URL/wal" >/dev/null 2>&1; then
    rc copy "$BACKUP_URL/wal" "$root/restore-wal"
    wal=$(find "$root/restore-wal" -type f | wc -l)
  fi
  log "$wal archived WAL files fetched"
  touch "$PGDATA.restore/recovery.signal"
  socket=$(mktemp -d "$TMP/restore.XXXXXX")
  local opts=(-c listen_addresses= -c "unix_socket_directories=$socket" -c archive_mode=off
    -c "restore_command=cp $root/restore-wal/%f %p" -c recovery_target_action=promote -c hot_standby=off)
  if [ -n "${BACKUP_TARGET_TIME:-}" ]; then
    opts+=(-c "recovery_target_time=$BACKUP_TARGET_TIME")
  fi
  pg_ctl --pgdata="$PGDATA.restore" --log="$TMP/restore.log" --no-wait --silent start -o "$(printf "%q " "${opts[@]}")"
  # Without hot standby the server takes connections only once the target is reached and it has
  # promoted; a server that stopped (the target is past the archived WAL, a segment is missing)
  # fails the Job with its log.
  sleep 1
  until pg_isready --host="$socket" --timeout=5 --quiet; do
    if ! pg_ctl --pgdata="$PGDATA.restore" status >/dev/null 2>&1; then
      tail -n 20 "$TMP/restore.log" >&2
      die "recovery stopped before it finished"
    fi
    sleep 1
  done
  state=$(pg_controldata "$PGDATA.restore" | sed -n 's/^Database cluster state: *//p')
  [ "$state" = "in production" ] || die "the recovered server is $state, not in production"
  pg_ctl --pgdata="$PGDATA.restore" --mode=fast --wait --silent stop
  rm -f "$PGDATA.restore/recovery.signal"
  tail -n 5 "$TMP/restore.log" >&2
  mv "$PGDATA.restore" "$PGDATA"
  rm -rf "$root/restore-wal" "$socket"
  printf '{"kind": "restore", "id": "%s", "target_time": "%s", "wal_files": %s, "completed": "%s"}\n' \
    "$id" "${BACKUP_TARGET_TIME:-}" "$wal" "$(now)" | tee "$root/.datastore-restored"
}

find_programs
store_credentials
case "${1:-}" in
  base-backup) base_backup ;;
  dump) dump ;;
  list) list ;;
  prune) prune ;;
  restore) restore ;;
  *) die "usage: postgres-backup.sh base-backup|dump|list|prune|restore" ;;
esac
