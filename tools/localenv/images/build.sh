#!/usr/bin/env bash
# Container images for the local environment's real node, built without a container
# daemon from the package registries (Debian, PyPI, Maven Central).
#
#   build.sh [name...]    build the named images, or all of them
#
# Each image is written to $DATASTORE_K8S_CACHE/images/<name>.tar, an oci-layout archive
# holding one image named localhost/datastore-kubernetes/<name>:<tag> (importable with
# `ctr -n k8s.io images import`). An image is rebuilt only when its inputs change: this
# script, images.env, ocipack.py and the image's own directory here. docs/images.md
# describes what each image holds and the contract it follows.
#
# Root file systems are made with mmdebstrap as root (re-run through sudo otherwise).
# A Debian root file system links var/run to the absolute /run: nothing here writes
# through a link of a root file system; files go to run/ inside it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=images.env
. "$HERE/images.env"
export SOURCE_DATE_EPOCH

CACHE="${DATASTORE_K8S_CACHE:-$HOME/.cache/datastore-kubernetes}"
OUT="$CACHE/images"
WORK="$OUT/work"
PYTHON="${PYTHON:-python3}"
PREFIX=localhost/datastore-kubernetes
ALL_IMAGES="tools postgres"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "building root file systems needs root (or sudo)"
  exec sudo env DATASTORE_K8S_CACHE="$CACHE" PYTHON="$PYTHON" "$0" "$@"
fi

# --------------------------------------------------------------------------- helpers

host_tools() {  # command=package ...
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The path of REL inside the root file system R, refusing any path that passes through a
# symbolic link (a root file system's links point into the host when seen from outside).
inside() {  # R REL
  local root="$1" rel="${2#/}" part path="$1"
  local IFS=/
  for part in $rel; do
    path="$path/$part"
    [ -L "$path" ] && die "refusing to write through the link ${path#"$root"/} in $root"
  done
  printf '%s' "$root/$rel"
}

put() {  # MODE SOURCE R REL: install a file from this directory into the root file system
  local dest
  dest="$(inside "$3" "$4")"
  mkdir -p "$(dirname "$dest")"
  install -m "$1" "$2" "$dest"
}

mkdirs() {  # R MODE OWNER REL...
  local root="$1" mode="$2" owner="$3" rel dest
  shift 3
  for rel in "$@"; do
    dest="$(inside "$root" "$rel")"
    mkdir -p "$dest"
    chmod "$mode" "$dest"
    chown "$owner" "$dest"
  done
}

sources() {  # suite
  printf '%s\n' "deb $DEBIAN_MIRROR $1 main" "deb $DEBIAN_MIRROR $1-updates main" \
    "deb $DEBIAN_SECURITY_MIRROR $1-security main"
}

# A minbase root file system with PACKAGES, without documentation or translations.
# Hook commands run after the essential packages are in, before the rest is installed.
debootstrap_rootfs() {  # suite dir essential-hook packages...
  local suite="$1" dir="$2" hook="$3"
  shift 3
  local include
  include="$(IFS=,; printf '%s' "$*")"
  local args=(--mode=root --variant=minbase
    --aptopt='APT::Install-Recommends "false"' --aptopt='APT::Install-Suggests "false"'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
    --include="$include")
  [ -n "$hook" ] && args+=(--essential-hook="$hook")
  rm -rf "$dir"
  mapfile -t src < <(sources "$suite")
  mmdebstrap "${args[@]}" "$suite" "$dir" "${src[@]}" >&2
  # What differs between two builds of the same packages and is not needed at run time.
  rm -rf "$dir/var/lib/apt/lists/"* "$dir/var/cache/apt/"* "$dir/var/cache/ldconfig/aux-cache" \
    "$dir/var/cache/debconf/"*-old "$dir/var/lib/dpkg/"*-old "$dir/etc/"*- "$dir/tmp/"*
  find "$dir/var/log" -type f -delete
  mkdir -p "$dir/var/lib/apt/lists/partial"
}

packages_of() {  # rootfs -> "name=version" lines
  chroot "$1" dpkg-query -W -f '${Package}=${Version}\n' | sort
}

inputs_hash() {  # name
  local files=("$HERE/build.sh" "$HERE/images.env" "$HERE/ocipack.py")
  [ -d "$HERE/$1" ] && mapfile -t -O ${#files[@]} files < <(find "$HERE/$1" -type f | sort)
  for f in "${files[@]}"; do printf '%s %s\n' "${f#"$HERE"/}" "$(sha256sum <"$f" | cut -c1-64)"; done \
    | sha256sum | cut -c1-64
}

stamp_ok() { [ -f "$CACHE/stamps/$1" ] && [ "$(cat "$CACHE/stamps/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$CACHE/stamps"; printf '%s' "$2" >"$CACHE/stamps/$1"; }

# --------------------------------------------------------------------------- bases

# Each base is a root file system kept in the work directory (the images built on it are
# packed as their difference from it) and its packed layer.
base_packages() {
  case "$1" in
    trixie) echo "$BASE_TRIXIE_PACKAGES" ;;
    bookworm-jre) echo "$BASE_BOOKWORM_JRE_PACKAGES" ;;
  esac
}

base_suite() {
  case "$1" in
    trixie) echo "$SUITE_TRIXIE" ;;
    bookworm-jre) echo "$SUITE_BOOKWORM" ;;
  esac
}

ensure_base() {  # base
  local base="$1" want dir="$WORK/base-$1.rootfs" layer="$WORK/base-$1.layer.tar.gz"
  want="$(printf '%s|%s|%s' "$(base_suite "$base")" "$(base_packages "$base")" "$(inputs_hash "base-$base")")"
  want="$(printf '%s' "$want" | sha256sum | cut -c1-64)"
  if stamp_ok "image-base-$base" "$want" && [ -d "$dir" ] && [ -f "$layer.json" ]; then return 0; fi
  log "base $base: root file system ($(base_suite "$base"): $(base_packages "$base"))"
  # shellcheck disable=SC2046
  debootstrap_rootfs "$(base_suite "$base")" "$dir" "" $(base_packages "$base")
  "$PYTHON" "$HERE/ocipack.py" layer "$dir" "$layer" >/dev/null
  stamp_set "image-base-$base" "$want"
}

# --------------------------------------------------------------------------- images

# Every image defines: <name>_base, <name>_ref, <name>_packages, <name>_hook (essential
# hook, may be empty), <name>_finish ROOTFS (files of ours) and <name>_config (JSON).

# tools ---------------------------------------------------------------------------------

tools_base() { echo trixie; }
tools_ref() { echo "$PREFIX/tools:$TOOLS_TAG"; }
tools_packages() { echo "$BASE_TRIXIE_PACKAGES $TOOLS_PACKAGES"; }
tools_hook() { :; }

fetch_wheel() {  # requirement sha256 -> path of the verified wheel
  local dir="$CACHE/images/downloads" name file
  mkdir -p "$dir"
  name="${1%%==*}"
  file="$dir/${name//-/_}-${1##*==}-py3-none-any.whl"
  if [ ! -f "$file" ] || [ "$(sha256sum <"$file" | cut -c1-64)" != "$2" ]; then
    rm -f "$file"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
      -d "$dir" "$1" >&2
  fi
  [ -f "$file" ] || die "pip did not download $file"
  [ "$(sha256sum <"$file" | cut -c1-64)" = "$2" ] || die "$file does not match its pinned sha256"
  printf '%s' "$file"
}

install_cqlsh() {  # rootfs: cqlsh from its wheel, on the Debian Cassandra driver
  local root="$1" wheel pyver site
  wheel="$(fetch_wheel "$CQLSH_WHEEL" "$CQLSH_WHEEL_SHA256")"
  pyver="$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  site="$(inside "$root" "usr/local/lib/python$pyver/dist-packages")"
  mkdir -p "$site"
  "$PYTHON" - "$wheel" "$site" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2], [n for n in wheel.namelist() if n.startswith("cqlshlib/")])
PY
  put 0755 "$HERE/tools/cqlsh" "$root" usr/local/bin/cqlsh
}

tools_finish() {
  install_cqlsh "$1"
  # psql and friends of the one installed major version, ahead of Debian's wrapper scripts.
  local bin
  for bin in psql pg_dump pg_restore pg_isready; do
    ln -sf "../lib/postgresql/$POSTGRES_MAJOR/bin/$bin" "$(inside "$1" "usr/local/bin/$bin")"
  done
}

tools_config() {
  cat <<EOF
{"User": "65534:65534", "WorkingDir": "/tmp",
 "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "LANG=C.UTF-8"],
 "Cmd": ["/bin/sh"],
 "Labels": {"org.opencontainers.image.title": "datastore.kubernetes test tools"}}
EOF
}

# postgres ------------------------------------------------------------------------------

postgres_base() { echo trixie; }
postgres_ref() { echo "$PREFIX/postgres:$POSTGRES_TAG"; }
postgres_packages() { echo "$BASE_TRIXIE_PACKAGES $POSTGRES_PACKAGES"; }
# An essential hook adding a system user and its group with fixed IDs before the packages
# are installed, so that packages creating the user keep these IDs. The shadow files are
# left to the passwd package, which fills them in from /etc/passwd.
system_user_hook() {  # name id gecos home shell
  printf 'set -e\n'
  printf 'grep -q "^%s:" "$1/etc/group" || echo "%s:x:%s:" >>"$1/etc/group"\n' "$1" "$1" "$2"
  printf 'grep -q "^%s:" "$1/etc/passwd" || echo "%s:x:%s:%s:%s:%s:%s" >>"$1/etc/passwd"\n' \
    "$1" "$1" "$2" "$2" "$3" "$4" "$5"
}

# The official image's user and group: postgres 999:999.
postgres_hook() { system_user_hook postgres 999 "PostgreSQL administrator" /var/lib/postgresql /bin/bash; }

postgres_finish() {
  local root="$1" lib="usr/lib/postgresql/$POSTGRES_MAJOR/lib"
  # JIT compilation needs LLVM (over 100 MB); without its provider the server runs with
  # JIT unavailable, as it does when built without LLVM.
  rm -rf "$(inside "$root" "$lib/bitcode")" "$(inside "$root" "$lib")"/llvmjit*.so
  chroot "$root" sh -c 'dpkg-query -W -f "\${Package}\n" "libllvm*" "libz3-*" 2>/dev/null | xargs -r dpkg --purge --force-depends' >/dev/null 2>&1
  # The packaged cluster: the entrypoint makes its own in PGDATA.
  rm -rf "$(inside "$root" etc/postgresql)"/* "$(inside "$root" var/lib/postgresql)"/*
  [ "$(chroot "$root" id -u postgres)" = 999 ] || die "postgres is not UID 999 in the image"
  mkdirs "$root" 1777 999:999 var/lib/postgresql/data
  mkdirs "$root" 3777 999:999 run/postgresql
  mkdirs "$root" 0755 0:0 docker-entrypoint-initdb.d
  put 0755 "$HERE/postgres/docker-entrypoint.sh" "$root" usr/local/bin/docker-entrypoint.sh
  ln -sf usr/local/bin/docker-entrypoint.sh "$(inside "$root" docker-entrypoint.sh)"
}

postgres_config() {
  cat <<EOF
{"Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["postgres"], "StopSignal": "SIGINT",
 "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/$POSTGRES_MAJOR/bin",
         "PG_MAJOR=$POSTGRES_MAJOR", "PGDATA=/var/lib/postgresql/data", "LANG=C.UTF-8"],
 "ExposedPorts": {"5432/tcp": {}}, "Volumes": {"/var/lib/postgresql/data": {}},
 "Labels": {"org.opencontainers.image.title": "PostgreSQL $POSTGRES_MAJOR (Debian packages)"}}
EOF
}

# --------------------------------------------------------------------------- build

build_image() {  # name
  local name="$1" want base root start size
  declare -F "${name}_ref" >/dev/null || die "unknown image '$name' (known: $ALL_IMAGES)"
  base="$("${name}_base")"
  want="$(inputs_hash "$name")"
  if stamp_ok "image-$name" "$want" && [ -f "$OUT/$name.tar" ]; then
    log "$name: up to date ($OUT/$name.tar)"
    return 0
  fi
  start=$SECONDS
  log "$name: building $("${name}_ref")"
  ensure_base "$base"
  root="$WORK/$name.rootfs"
  # shellcheck disable=SC2046
  debootstrap_rootfs "$(base_suite "$base")" "$root" "$("${name}_hook")" $("${name}_packages")
  "${name}_finish" "$root"
  packages_of "$root" >"$OUT/$name.packages"
  "${name}_config" >"$WORK/$name.config.json"
  "$PYTHON" "$HERE/ocipack.py" layer "$root" "$WORK/$name.layer.tar.gz" --base "$WORK/base-$base.rootfs" >/dev/null
  "$PYTHON" "$HERE/ocipack.py" image --out "$OUT/$name.tar" --ref "$("${name}_ref")" \
    --config "$WORK/$name.config.json" "$WORK/base-$base.layer.tar.gz" "$WORK/$name.layer.tar.gz" >/dev/null
  rm -rf "$root" "$WORK/$name.layer.tar.gz" "$WORK/$name.layer.tar.gz.json"
  stamp_set "image-$name" "$want"
  size="$(du -m "$OUT/$name.tar" | cut -f1)"
  printf '%s\t%s\t%ss\t%sMB\n' "$name" "$("${name}_ref")" "$((SECONDS - start))" "$size" >"$OUT/$name.built"
  log "$name: built in $((SECONDS - start)) s, $size MB ($OUT/$name.tar)"
}

main() {
  local names=("$@") needs_java="" name
  [ ${#names[@]} -eq 0 ] && read -r -a names <<<"$ALL_IMAGES"
  for name in "${names[@]}"; do
    case "$name" in cassandra|elasticsearch) needs_java=1 ;; esac
  done
  local tools=(mmdebstrap=mmdebstrap)
  [ -n "$needs_java" ] && tools+=(mvn=maven gcc=gcc)
  host_tools "${tools[@]}"
  mkdir -p "$OUT" "$WORK"
  for name in "${names[@]}"; do
    build_image "$name"
  done
}

# One compound command: bash has read all of it before it runs, so editing this file
# during a build cannot change what the build does.
{ main "$@"; exit; }
