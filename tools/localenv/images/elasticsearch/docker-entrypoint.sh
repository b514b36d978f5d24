#!/usr/bin/env bash
# Entrypoint of the Elasticsearch test image. Like the official image's, for what the
# collection uses (docs/images.md):
#   - no arguments, `eswrapper` (the default command), or arguments starting with '-' run
#     bin/elasticsearch (with those arguments);
#   - environment variables named like settings (lower case, with a dot, e.g.
#     discovery.type=single-node) become -E settings;
#   - it runs as the container's user (1000:0 by default; any UID in group 0 works).
#
# TEST IMAGE ONLY: where the hard limit of open files is below the 65535 Elasticsearch's
# bootstrap check demands (as on the machines the local environment runs on), it preloads
# a shim that reports that much (nofile-shim.c). ES_NOFILE_SHIM=off turns it off.
set -Eeuo pipefail

ES_HOME=/usr/share/elasticsearch
WANTED_NOFILE=65535
SHIM=/usr/local/lib/libnofile-shim.so

settings_from_env() {
  local line name
  while IFS= read -r line; do
    name="${line%%=*}"
    if [[ "$name" =~ ^[a-z0-9_]+\.[a-z0-9_.]+$ ]]; then
      printf -- '-E%s\n' "$line"
    fi
  done < <(env)
}

main() {
  if [ "${1:-}" = eswrapper ]; then
    shift
  fi
  if [ $# -eq 0 ] || [ "${1:0:1}" = - ]; then
    set -- "$ES_HOME/bin/elasticsearch" "$@"
  fi
  if [ "$1" = "$ES_HOME/bin/elasticsearch" ] || [ "$1" = elasticsearch ]; then
    local extra
    mapfile -t extra < <(settings_from_env)
    set -- "$@" "${extra[@]}"
    local hard
    hard="$(ulimit -Hn)"
    if [ "${ES_NOFILE_SHIM:-on}" != off ] && [ "$hard" != unlimited ] && [ "$hard" -lt "$WANTED_NOFILE" ]; then
      echo "TEST IMAGE: the open-files hard limit is $hard; preloading $SHIM, which reports $WANTED_NOFILE to Elasticsearch's bootstrap check" >&2
      export LD_PRELOAD="$SHIM${LD_PRELOAD:+:$LD_PRELOAD}"
    fi
  fi
  exec "$@"
}

main "$@"
