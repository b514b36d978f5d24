#!/usr/bin/env bash
# The two images the real node itself needs, built without a daemon:
#   pause    the sandbox process of every pod (pause.c, compiled statically)
#   busybox  a shell and small tools (Debian's busybox-static), for the environment's own checks
# Written to $DATASTORE_K8S_CACHE/node-images/*.tar (OCI archives); `localenv.sh up` imports them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../versions.env
. "$HERE/../versions.env"
CACHE="${DATASTORE_K8S_CACHE:-$HOME/.cache/datastore-kubernetes}"
PYTHON="${PYTHON:-python3}"
OUT="$CACHE/node-images"

log() { printf '[localenv] %s\n' "$*" >&2; }

busybox_bin="$(command -v busybox)" || { log "busybox not found (Debian package busybox-static)"; exit 1; }
# The stamp names everything the images are made of: a change to any of them rebuilds both.
want="$(cat "$HERE/pause.c" "$HERE/oci_archive.py" "$HERE/build-images.sh" "$busybox_bin" \
  <(echo "$NODE_PAUSE_IMAGE $NODE_BUSYBOX_IMAGE") | sha256sum | cut -c1-16)"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$want" ] && [ -f "$OUT/pause.tar" ] && [ -f "$OUT/busybox.tar" ]; then
  exit 0
fi
log "building the pause and busybox images"
mkdir -p "$OUT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/pause"
gcc -Os -static -Wall -Wextra -Werror -o "$work/pause/pause" "$HERE/pause.c"
strip "$work/pause/pause"
echo '{"Entrypoint": ["/pause"], "User": "65535:65535"}' >"$work/pause.json"
"$PYTHON" "$HERE/oci_archive.py" "$OUT/pause.tar" "$NODE_PAUSE_IMAGE" "$work/pause.json" "$work/pause" >/dev/null

root="$work/busybox"
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home"
install -m 0755 "$busybox_bin" "$root/bin/busybox"
# One link per applet, where busybox would put it (bin/sh, usr/bin/wget, ...).
while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done < <("$busybox_bin" --list-full)
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo '{"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' >"$work/busybox.json"
"$PYTHON" "$HERE/oci_archive.py" "$OUT/busybox.tar" "$NODE_BUSYBOX_IMAGE" "$work/busybox.json" "$root" >/dev/null

printf '%s' "$want" >"$OUT/stamp"
