#!/usr/bin/env bash
# The parts of the backup role's scripts every engine shares (sourced by <engine>-backup.sh):
# logging, the store's keys handed to rclone, rclone itself, timestamps and backup ids.
#
# The store's keys are read from the Secret's files ($BACKUP_SECRETS/store/...) into rclone's own
# environment; they never reach a command line or the output.

SECRETS=${BACKUP_SECRETS:-/etc/datastore-backup}
# shellcheck disable=SC2034  # for the scripts that source this one
TMP=${TMPDIR:-/tmp}
: "${BACKUP_URL:?BACKUP_URL is not set}"

log() { printf '%s: %s\n' "${BACKUP_SCRIPT:-backup}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

store_credentials() {
  export RCLONE_CONFIG=/dev/null
  if [ -s "$SECRETS/store/access_key_id" ]; then
    RCLONE_S3_ACCESS_KEY_ID=$(cat "$SECRETS/store/access_key_id")
    RCLONE_S3_SECRET_ACCESS_KEY=$(cat "$SECRETS/store/secret_access_key")
    export RCLONE_S3_ACCESS_KEY_ID RCLONE_S3_SECRET_ACCESS_KEY
  fi
}

rc() { rclone --s3-no-check-bucket --retries 3 "$@"; }

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
new_id() { date -u +%Y%m%dT%H%M%SZ; }
