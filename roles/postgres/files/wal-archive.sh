#!/bin/sh
# archive_command of the datastore.kubernetes postgres role: copies one finished WAL segment (or a
# history or backup-label file) to the backup store with rclone.
#
#   wal-archive.sh PATH NAME      (archive_command = 'sh wal-archive.sh %p %f')
#
# WAL_ARCHIVE_URL (set by the role) is where segments go: an rclone on-the-fly S3 remote
# (":s3,provider=Other,endpoint=...:bucket/prefix") or a directory on a mounted volume. The store's
# keys are read from files (WAL_ARCHIVE_SECRETS, default /etc/datastore-backup/store) and handed to
# rclone in its environment only: never on a command line, in a file of the data directory or a log.
# PostgreSQL retries a segment whose command failed and keeps it until it is archived.
set -eu

[ $# -eq 2 ] || { echo "usage: wal-archive.sh PATH NAME" >&2; exit 2; }
: "${WAL_ARCHIVE_URL:?WAL_ARCHIVE_URL is not set}"
secrets=${WAL_ARCHIVE_SECRETS:-/etc/datastore-backup/store}
if [ -s "$secrets/access_key_id" ]; then
  RCLONE_S3_ACCESS_KEY_ID=$(cat "$secrets/access_key_id")
  RCLONE_S3_SECRET_ACCESS_KEY=$(cat "$secrets/secret_access_key")
  export RCLONE_S3_ACCESS_KEY_ID RCLONE_S3_SECRET_ACCESS_KEY
fi
# No configuration file: the remote is named in full by the URL.
RCLONE_CONFIG=/dev/null
export RCLONE_CONFIG
# A segment already archived with the same content is left alone (a retry after a lost answer);
# a different one under the same name means two servers archive to one place: refuse.
if rclone lsf "$WAL_ARCHIVE_URL/wal/$2" 2>/dev/null | grep -qx "$2"; then
  here=$(md5sum <"$1" | cut -d' ' -f1)
  there=$(rclone md5sum --download "$WAL_ARCHIVE_URL/wal/$2" | cut -d' ' -f1)
  [ "$here" = "$there" ] && exit 0
  echo "wal-archive.sh: $2 is already archived with other content: does another server archive to the same place?" >&2
  exit 1
fi
exec rclone copyto --s3-no-check-bucket --retries 3 "$1" "$WAL_ARCHIVE_URL/wal/$2"
