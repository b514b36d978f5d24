#!/bin/sh
# Start-up of a PostgreSQL pod of the datastore.kubernetes postgres role.
#
#   postgres.sh wait-for-primary   (init container) a replica without data waits until the primary answers
#   postgres.sh clone-primary      (init container) a replica gets its replication slot and, when its
#                                  volume is empty or its slot was lost, a base backup of the primary
#   postgres.sh start              (main container) the primary or a hot standby, in the foreground
#   postgres.sh ready              (probes) whether the server accepts connections on its socket
#   postgres.sh stop [timeout] [delay]  (preStop hook) after delay seconds, a fast shutdown: clients
#                                  disconnected, a checkpoint written, instead of the smart one SIGTERM asks for
#
# The pod PRIMARY_POD names is the primary (the role sets it from the ConfigMap <name>-primary; without it,
# ordinal 0), every other pod a streaming replica of it. The image provides only
# the PostgreSQL programs (on PATH or in /usr/lib/postgresql/<major>/bin) and a POSIX shell; the
# configuration, the initialisation and the replication set-up are all here.
#
# Environment (set by the role): PGDATA, PRIMARY_HOST (ordinal 0's stable DNS name), POSTGRES_DB,
# POSTGRES_REPLICATION_USER, HOSTNAME; optional PRIMARY_POD (the primary's pod name, default ordinal 0; it
# replaces the pod name in PRIMARY_HOST), POSTGRES_INITDB_ARGS, POSTGRES_PORT (5432, the server's),
# PRIMARY_PORT (5432), POSTGRES_CONF_DIR (/etc/postgresql), POSTGRES_SECRETS_DIR (/etc/postgresql-secrets),
# POSTGRES_RUN_DIR (/var/run/postgresql).
# Secrets are read from files, never from the command line: <secrets>/superuser/username and
# password, <secrets>/replication/password, and for TLS <secrets>/tls/tls.crt and tls.key.
# HOSTNAME is the pod's name: the container runtime sets it, the shell need not.
# shellcheck disable=SC3028
set -eu

CONF_DIR=${POSTGRES_CONF_DIR:-/etc/postgresql}
SECRETS=${POSTGRES_SECRETS_DIR:-/etc/postgresql-secrets}
RUN_DIR=${POSTGRES_RUN_DIR:-/var/run/postgresql}
TMP=${TMPDIR:-/tmp}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
DATA_ROOT=$(dirname "$PGDATA")
# Written once the primary's databases and replication role match the settings (see setup).
SETUP_MARK=$DATA_ROOT/.datastore-setup
# Written by the switchover module (option reclone) into a replica whose timeline forked off the
# primary's: the next start of its pod clones the primary anew, its own data removed.
RECLONE_MARK=$DATA_ROOT/.datastore-reclone
# The primary: PRIMARY_POD when set, else ordinal 0. When PRIMARY_HOST is ordinal 0's stable DNS name,
# the primary's is the same with its pod name.
PRIMARY_POD=${PRIMARY_POD:-${HOSTNAME%-*}-0}
case $PRIMARY_HOST in
  "${HOSTNAME%-*}-0".*) PRIMARY_HOST=$PRIMARY_POD.${PRIMARY_HOST#*.} ;;
esac
# A physical replication slot per replica, named after the pod (slot names allow [a-z0-9_]).
SLOT=$(printf '%s' "$HOSTNAME" | tr -c 'a-z0-9_' '_')
PGPASSFILE=$TMP/postgres-replication.pgpass
export PGPASSFILE

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The official image puts the programs on PATH; Debian packages keep them in a versioned directory.
find_programs() {
  command -v pg_ctl >/dev/null 2>&1 && return 0
  # shellcheck disable=SC2012 # Debian's directories, named by major version: ls then a numeric sort
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r) /usr/local/pgsql/bin; do
    if [ -x "$dir/pg_ctl" ]; then
      PATH=$dir:$PATH
      export PATH
      return 0
    fi
  done
  die "no PostgreSQL programs (pg_ctl) on PATH or in /usr/lib/postgresql/*/bin"
}

# initdb needs a passwd entry for the UID it runs as. A platform that assigns an arbitrary UID
# gets one through nss_wrapper when the image has it.
ensure_passwd_entry() {
  id -un >/dev/null 2>&1 && return 0
  for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /usr/lib64/libnss_wrapper.so; do
    [ -e "$lib" ] || continue
    grep -v '^postgres:' /etc/passwd >"$TMP/passwd"
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$DATA_ROOT" >>"$TMP/passwd"
    NSS_WRAPPER_PASSWD=$TMP/passwd NSS_WRAPPER_GROUP=/etc/group LD_PRELOAD=$lib
    export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP LD_PRELOAD
    return 0
  done
  log "UID $(id -u) has no passwd entry and the image has no nss_wrapper; initdb may refuse to run"
}

read_secret() {  # file -> value without trailing newlines; fails when missing or empty
  [ -s "$1" ] || die "$1 is missing or empty"
  cat "$1"
}

replication_user() {
  [ -n "${POSTGRES_REPLICATION_USER:-}" ] || die "POSTGRES_REPLICATION_USER is not set"
  printf '%s' "$POSTGRES_REPLICATION_USER"
}

# libpq reads the replication password from a password file it accepts only with mode 0600, so
# the Secret's file is copied into one; the password never appears in a connection string, a
# command line or postgresql.auto.conf.
write_pgpass() {
  password=$(read_secret "$SECRETS/replication/password")
  escaped=$(printf '%s' "$password" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g')
  (umask 077 && printf '%s:%s:*:%s:%s\n' "$PRIMARY_HOST" "$PRIMARY_PORT" "$(replication_user)" "$escaped" >"$PGPASSFILE")
}

primary_conninfo() {  # dbname -> connection string to the primary as the replication user
  printf 'host=%s port=%s user=%s dbname=%s passfile=%s application_name=%s sslmode=prefer connect_timeout=10' \
    "$PRIMARY_HOST" "$PRIMARY_PORT" "$(replication_user)" "$1" "$PGPASSFILE" "$HOSTNAME"
}

# TLS is served when the role mounts a certificate. The key is copied to a file only this user
# can read, which the server requires (a Secret volume's files belong to root).
tls_options() {
  [ -s "$SECRETS/tls/tls.crt" ] || return 0
  (umask 077 && cp "$SECRETS/tls/tls.key" "$TMP/postgres-tls.key")
  printf '%s\n' -c ssl=on -c "ssl_cert_file=$SECRETS/tls/tls.crt" -c "ssl_key_file=$TMP/postgres-tls.key"
}

# ------------------------------------------------------------------------------ primary

initialise() {
  superuser=$(read_secret "$SECRETS/superuser/username")
  read_secret "$SECRETS/superuser/password" >/dev/null
  # An interrupted earlier attempt leaves a directory without PG_VERSION; it holds nothing.
  rm -rf "$PGDATA" "$PGDATA.init"
  log "initialising a new database cluster in $PGDATA"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words
  initdb --pgdata="$PGDATA.init" --username="$superuser" --pwfile="$SECRETS/superuser/password" \
    --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-}
  mv "$PGDATA.init" "$PGDATA"
  rm -f "$SETUP_MARK"
}

# The database, the replication role and its password are made to match the settings with a
# private server: no TCP listener and a socket in a directory of its own, so neither clients nor
# the readiness probe (which asks the socket in RUN_DIR) can reach it while it works. It runs
# after initdb, and again only when the replication password or the database name changed.
setup() {
  want=$({ replication_user; printf '\n%s\n' "$POSTGRES_DB"; read_secret "$SECRETS/replication/password"; } | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$SETUP_MARK" 2>/dev/null || true)" = "$want" ]; then
    return 0
  fi
  superuser=$(read_secret "$SECRETS/superuser/username")
  socket_dir=$(mktemp -d "$TMP/postgres-setup.XXXXXX")
  log "setting up the database $POSTGRES_DB and the replication role $(replication_user)"
  # A failure below must not leave the private server running under the real one.
  trap 'pg_ctl --pgdata="$PGDATA" --mode=immediate --silent stop >/dev/null 2>&1 || true' EXIT
  # Statements are never logged here: one of them carries the replication password.
  pg_ctl --pgdata="$PGDATA" --wait --timeout=3600 --silent start -o "-c config_file=$CONF_DIR/postgresql.conf \
    -c hba_file=$CONF_DIR/pg_hba.conf -c listen_addresses='' -c unix_socket_directories='$socket_dir' -c ssl=off \
    -c log_statement=none -c log_min_error_statement=panic -c log_min_duration_statement=-1 \
    -c archive_mode=off"
  psql --no-psqlrc --quiet --host="$socket_dir" --port="${POSTGRES_PORT:-5432}" --username="$superuser" \
    --dbname=postgres -v ON_ERROR_STOP=1 \
    --set=db="$POSTGRES_DB" --set=repl="$(replication_user)" --set=secret="$SECRETS/replication/password" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('CREATE ROLE %I WITH LOGIN REPLICATION', :'repl')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'repl') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'repl',
              rtrim(pg_read_file(:'secret'), E'\n')) \gexec
SQL
  pg_ctl --pgdata="$PGDATA" --wait --timeout=3600 --silent --mode=fast stop
  trap - EXIT
  rmdir "$socket_dir"
  printf '%s\n' "$want" >"$SETUP_MARK"
}

start_primary() {
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialise
  fi
  if [ -e "$PGDATA/standby.signal" ]; then
    # A switchover names the new primary before it promotes it: until then it stays a standby.
    log "the primary $PRIMARY_POD holds a standby (standby.signal): it starts as one until it is promoted"
  else
    setup
  fi
  # shellcheck disable=SC2046 # one option per line
  exec postgres -c "config_file=$CONF_DIR/postgresql.conf" -c "hba_file=$CONF_DIR/pg_hba.conf" $(tls_options)
}

# ------------------------------------------------------------------------------ replicas

wait_for_primary() {
  # A replica with data starts as a hot standby without the primary and streams once it answers: after a
  # switchover the primary may have a higher ordinal, which OrderedReady creates only after this pod is Ready.
  if [ -s "$PGDATA/PG_VERSION" ]; then
    return 0
  fi
  until pg_isready --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username="$(replication_user)" --timeout=5 >/dev/null; do
    log "waiting for the primary $PRIMARY_HOST:$PRIMARY_PORT"
    sleep 2
  done
}

# Asks the primary for this replica's slot: missing, or its wal_status (reserved, extended,
# unreserved, lost).
slot_state() {
  psql --no-psqlrc --quiet --tuples-only --no-align -v ON_ERROR_STOP=1 "$(primary_conninfo postgres)" <<SQL
SELECT coalesce((SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$SLOT'), 'missing');
SQL
}

clone_primary() {
  write_pgpass
  if [ -s "$PGDATA/PG_VERSION" ] && ! pg_isready --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --timeout=5 >/dev/null; then
    log "the primary $PRIMARY_HOST does not answer: starting from the data present, the slot $SLOT as it is"
    return 0
  fi
  if [ -e "$RECLONE_MARK" ]; then
    log "asked to clone the primary anew (this replica's timeline forked off it): its data goes"
    rm -rf "$PGDATA"
    rm -f "$RECLONE_MARK"
  fi
  state=$(slot_state)
  if [ "$state" = lost ]; then
    # The primary removed WAL this replica still needed: its data can no longer catch up.
    log "slot $SLOT lost WAL this replica needs (max_slot_wal_keep_size): cloning the primary again"
    rm -rf "$PGDATA"
    psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 "$(primary_conninfo postgres)" \
      -c "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
    state=missing
  fi
  if [ "$state" = missing ]; then
    log "creating the replication slot $SLOT on the primary"
    psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 "$(primary_conninfo postgres)" \
      -c "SELECT pg_create_physical_replication_slot('$SLOT', true)" >/dev/null
  fi
  if [ -s "$PGDATA/PG_VERSION" ]; then
    log "data present: following the primary from where it stopped"
    return 0
  fi
  log "cloning the primary $PRIMARY_HOST into $PGDATA"
  rm -rf "$PGDATA" "$PGDATA.clone"
  # No --write-recovery-conf: it would store the connection, password included, in
  # postgresql.auto.conf. The start command passes the connection instead.
  pg_basebackup --dbname="$(primary_conninfo replication)" --pgdata="$PGDATA.clone" --wal-method=stream \
    --slot="$SLOT" --checkpoint=fast --no-password
  touch "$PGDATA.clone/standby.signal"
  mv "$PGDATA.clone" "$PGDATA"
}

start_replica() {
  [ -s "$PGDATA/PG_VERSION" ] || die "$PGDATA is empty: the clone-primary init container did not run"
  write_pgpass
  touch "$PGDATA/standby.signal"
  # Replicas cloned with --write-recovery-conf keep a connection (and password) there; the
  # command line below replaces it.
  if grep -q '^primary_\(conninfo\|slot_name\)' "$PGDATA/postgresql.auto.conf" 2>/dev/null; then
    sed -i -e '/^primary_conninfo/d' -e '/^primary_slot_name/d' "$PGDATA/postgresql.auto.conf"
  fi
  # shellcheck disable=SC2046 # one option per line
  exec postgres -c "config_file=$CONF_DIR/postgresql.conf" -c "hba_file=$CONF_DIR/pg_hba.conf" \
    -c "primary_conninfo=$(primary_conninfo replication)" -c "primary_slot_name=$SLOT" $(tls_options)
}

# ------------------------------------------------------------------------------ main

find_programs
ensure_passwd_entry
case "${1:-}" in
  wait-for-primary)
    [ "$HOSTNAME" = "$PRIMARY_POD" ] || wait_for_primary
    ;;
  clone-primary)
    [ "$HOSTNAME" = "$PRIMARY_POD" ] || clone_primary
    ;;
  start)
    if [ "$HOSTNAME" = "$PRIMARY_POD" ]; then start_primary; else start_replica; fi
    ;;
  ready)
    # Only the final server listens on this socket: the set-up server has a directory of its own.
    exec pg_isready --host="$RUN_DIR" --port="${POSTGRES_PORT:-5432}" --timeout=5 --quiet
    ;;
  stop)
    # An optional delay first: the pod's endpoint is being removed from the Services meanwhile.
    if [ "${3:-0}" -gt 0 ]; then sleep "$3"; fi
    exec pg_ctl stop --pgdata="$PGDATA" --mode=fast --wait --timeout="${2:-90}"
    ;;
  *)
    die "usage: postgres.sh wait-for-primary|clone-primary|start|ready|stop"
    ;;
esac
