# Shared by the backup role's scripts (sourced): the store's keys for rclone, and rclone itself.
# The keys are read from the Secret's files and reach rclone through its environment only; with a
# volume store there are none.

store_credentials() {
  export RCLONE_CONFIG=/dev/null
  if [ -s "$SECRETS/store/access_key_id" ]; then
    RCLONE_S3_ACCESS_KEY_ID=$(cat "$SECRETS/store/access_key_id")
    RCLONE_S3_SECRET_ACCESS_KEY=$(cat "$SECRETS/store/secret_access_key")
    export RCLONE_S3_ACCESS_KEY_ID RCLONE_S3_SECRET_ACCESS_KEY
  fi
}

rc() { rclone --s3-no-check-bucket --retries 3 "$@"; }
