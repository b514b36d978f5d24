#!/usr/bin/env bash
# Entrypoint of the test PostgreSQL image. It behaves like the official image's for what
# the collection uses (docs/images.md):
#   - arguments starting with '-' are options of postgres;
#   - started as root, it hands PGDATA and the socket directory to postgres (999) and
#     drops to that user; started as any other UID, it runs as that UID;
#   - on an empty PGDATA it runs initdb with POSTGRES_USER (default postgres) and
#     POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust), lets every host in with
#     POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), creates POSTGRES_DB, runs
#     /docker-entrypoint-initdb.d/* against a server on the socket only, then stops it;
#   - every POSTGRES_* setting above may come from a file named by <NAME>_FILE.
set -Eeuo pipefail

say() { printf '%s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# NAME from NAME or from the file NAME_FILE names, never both.
from_env_or_file() {  # name default
  local name="$1" file_var="${1}_FILE" value="$2"
  if [ -n "${!name:-}" ] && [ -n "${!file_var:-}" ]; then
    fail "both $name and $file_var are set; set only one"
  fi
  if [ -n "${!name:-}" ]; then
    value="${!name}"
  elif [ -n "${!file_var:-}" ]; then
    value="$(<"${!file_var}")"
  fi
  export "$name"="$value"
  unset "$file_var"
}

asks_for_help() {  # any argument that only prints something and exits
  local arg
  for arg; do
    case "$arg" in
      -'?'|--help|--describe-config|-V|--version) return 0 ;;
    esac
  done
  return 1
}

prepare_directories() {
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || :
  mkdir -p /var/run/postgresql
  chmod 3775 /var/run/postgresql 2>/dev/null || :
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 0700 "$POSTGRES_INITDB_WALDIR" 2>/dev/null || :
  fi
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"}
  fi
}

# initdb needs a passwd entry for its UID; an arbitrary UID gets one through nss_wrapper.
with_passwd_entry() {
  local wrapper
  if getent passwd "$(id -u)" >/dev/null 2>&1; then
    "$@"
    return
  fi
  wrapper="$(find /usr/lib -name libnss_wrapper.so -print -quit)"
  [ -n "$wrapper" ] || fail "UID $(id -u) has no passwd entry and nss_wrapper is missing"
  local passwd group
  passwd="$(mktemp)"
  group="$(mktemp)"
  say "postgres:x:$(id -u):$(id -g):PostgreSQL:$PGDATA:/bin/false" >"$passwd"
  say "postgres:x:$(id -g):" >"$group"
  LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD="$passwd" NSS_WRAPPER_GROUP="$group" "$@"
  rm -f "$passwd" "$group"
}

run_initdb() {
  local pwfile
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  local args=(--username="$POSTGRES_USER" --pwfile="$pwfile")
  [ -n "${POSTGRES_INITDB_WALDIR:-}" ] && args+=(--waldir="$POSTGRES_INITDB_WALDIR")
  # POSTGRES_INITDB_ARGS is split into words, as a shell would.
  eval 'with_passwd_entry initdb "${args[@]}" '"$POSTGRES_INITDB_ARGS"
  rm -f "$pwfile"
}

allow_remote_logins() {
  local method="${POSTGRES_HOST_AUTH_METHOD:-}"
  if [ -z "$method" ]; then
    method="$(postgres -C password_encryption "$@" 2>/dev/null || echo scram-sha-256)"
  fi
  printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
}

check_settings() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    fail "the database is not initialised and POSTGRES_PASSWORD is empty: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust, which lets anyone in)"
  fi
}

psql_local() {  # psql against the temporary server, as POSTGRES_USER
  PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

# A server on the socket only, with the container's own options, for the set-up steps.
start_temporary_server() {
  [ "${1:-}" = postgres ] && shift
  local opts
  opts="$(printf '%q ' "$@" -c listen_addresses= -p "${PGPORT:-5432}")"
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$opts" -w start
}

stop_temporary_server() {
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then say "running $f"; "$f"; else say "sourcing $f"; # shellcheck disable=SC1090
          . "$f"; fi ;;
      *.sql) say "running $f"; psql_local --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) say "running $f"; gunzip -c "$f" | psql_local --dbname "$POSTGRES_DB" ;;
      *.sql.xz) say "running $f"; xzcat "$f" | psql_local --dbname "$POSTGRES_DB" ;;
      *.sql.zst) say "running $f"; zstd -dc "$f" | psql_local --dbname "$POSTGRES_DB" ;;
      */\*) ;;
      *) say "ignoring $f" ;;
    esac
  done
}

main() {
  if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
  fi
  if [ "$1" != postgres ] || asks_for_help "$@"; then
    exec "$@"
  fi
  from_env_or_file POSTGRES_PASSWORD ""
  from_env_or_file POSTGRES_USER postgres
  from_env_or_file POSTGRES_DB "$POSTGRES_USER"
  from_env_or_file POSTGRES_INITDB_ARGS ""
  prepare_directories
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [ -s "$PGDATA/PG_VERSION" ]; then
    say "PostgreSQL database directory appears to contain a database; skipping initialisation"
    exec "$@"
  fi
  check_settings
  ls /docker-entrypoint-initdb.d/ >/dev/null
  run_initdb
  allow_remote_logins "${@:2}"
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  start_temporary_server "$@"
  if [ "$POSTGRES_DB" != postgres ]; then
    psql_local --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  run_init_files
  stop_temporary_server
  unset PGPASSWORD
  say "PostgreSQL init process complete; ready for start up."
  exec "$@"
}

main "$@"
