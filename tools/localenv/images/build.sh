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

# The <image>_* functions are called by name ("${name}_finish"), which shellcheck cannot
# follow: it would call them and all they use unreachable.
# shellcheck disable=SC2317,SC2329
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
ALL_IMAGES="tools postgres cassandra elasticsearch syslog-ng"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "building root file systems needs root (or sudo)"
  exec sudo env DATASTORE_K8S_CACHE="$CACHE" PYTHON="$PYTHON" "$0" "$@"
fi

# --------------------------------------------------------------------------- building blocks

host_packages() {  # Debian packages the build itself needs
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
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

# shellcheck disable=SC2016 # $1 is the hook's: mmdebstrap passes it the root file system
MAN_DIR_HOOK='mkdir -p "$1/usr/share/man/man1"'

# A minbase root file system with PACKAGES, without documentation or translations.
# Hook commands run after the essential packages are in, before the rest is installed.
make_rootfs() {  # suite dir essential-hook packages...
  local suite="$1" dir="$2" hook="$3"
  shift 3
  local include
  include="$(IFS=,; printf '%s' "$*")"
  local args=(--mode=root --variant=minbase
    --aptopt='APT::Install-Recommends "false"' --aptopt='APT::Install-Suggests "false"'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
    --include="$include"
    # Packages (OpenJDK's) whose alternatives name manual pages need the directory.
    --essential-hook="$MAN_DIR_HOOK")
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
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
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
  make_rootfs "$(base_suite "$base")" "$dir" "" $(base_packages "$base")
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

# A wheel from PyPI, verified against its pinned sha256, for the root file system's Python.
fetch_wheel() {  # rootfs requirement sha256 -> path of the verified wheel
  local root="$1" req="$2" sum="$3" dir="$CACHE/images/downloads" pyver file
  pyver="$(chroot "$root" python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')"
  file="$(find "$dir" -maxdepth 1 -name "$(wheel_prefix "$req")-*.whl" 2>/dev/null | sort | head -1)"
  if [ -z "$file" ] || [ "$(sha256sum <"$file" | cut -c1-64)" != "$sum" ]; then
    rm -f "$dir/$(wheel_prefix "$req")"-*.whl
    mkdir -p "$dir"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
      --python-version "$pyver" --implementation cp --platform manylinux2014_x86_64 --platform any \
      -d "$dir" "$req" >&2
    file="$(find "$dir" -maxdepth 1 -name "$(wheel_prefix "$req")-*.whl" | sort | head -1)"
  fi
  [ -n "$file" ] || die "pip did not download $req"
  [ "$(sha256sum <"$file" | cut -c1-64)" = "$sum" ] || die "$file ($req) does not match its pinned sha256"
  printf '%s' "$file"
}

wheel_prefix() {  # name==version -> the file name's start (name normalised as wheels spell it)
  local name="${1%%==*}"
  printf '%s-%s' "${name//-/_}" "${1##*==}"
}

install_wheel() {  # rootfs requirement sha256: unpacked into the image's site directory
  local root="$1" wheel pyver site
  wheel="$(fetch_wheel "$root" "$2" "$3")"
  pyver="$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  site="$(inside "$root" "usr/local/lib/python$pyver/dist-packages")"
  mkdir -p "$site"
  "$PYTHON" - "$wheel" "$site" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2])
PY
}

install_cqlsh() {  # rootfs: cqlsh from its wheel, on the image's Cassandra driver
  install_wheel "$1" "$CQLSH_WHEEL" "$CQLSH_WHEEL_SHA256"
  put 0755 "$HERE/tools/cqlsh" "$1" usr/local/bin/cqlsh
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
# shellcheck disable=SC2016 # the hook's own $1 (the root file system) stays for it
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
  # shellcheck disable=SC2016 # run by the chroot's shell
  chroot "$root" sh -c 'dpkg-query -W -f "\${Package}\n" "libllvm*" "libz3-*" 2>/dev/null | xargs -r dpkg --purge --force-depends' >/dev/null 2>&1
  # The packaged cluster: the entrypoint makes its own in PGDATA.
  find "$(inside "$root" etc/postgresql)" "$(inside "$root" var/lib/postgresql)" -mindepth 1 -delete
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

# Java images ---------------------------------------------------------------------------

JAVA_HOME_IN_IMAGE=/usr/lib/jvm/java-17-openjdk-amd64

maven() {  # mvn in the isolated local repository of the cache, quiet unless it fails
  local log="$WORK/maven.log"
  if ! mvn -B -q -Dmaven.repo.local="$OUT/m2" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    die "mvn $* failed"
  fi
}

# cassandra -----------------------------------------------------------------------------

cassandra_base() { echo bookworm-jre; }
cassandra_ref() { echo "$PREFIX/cassandra:$CASSANDRA_TAG"; }
cassandra_packages() { echo "$BASE_BOOKWORM_JRE_PACKAGES $CASSANDRA_PACKAGES"; }
# The official image's user and group: cassandra 999:999.
cassandra_hook() { system_user_hook cassandra 999 Cassandra /var/lib/cassandra /bin/bash; }

cassandra_finish() {
  local root="$1" lib="$WORK/cassandra-lib" home=opt/cassandra f
  rm -rf "$lib"
  log "cassandra: cassandra-all $CASSANDRA_VERSION and its dependencies (Maven Central)"
  maven -f "$HERE/cassandra/pom.xml" -Dcassandra.version="$CASSANDRA_VERSION" \
    -Ddependency.plugin.version="$MAVEN_DEPENDENCY_PLUGIN_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib"
  # Native code for other systems than linux-x86_64.
  find "$lib" \( -name '*-osx-*' -o -name '*-windows-*' -o -name '*-linux-aarch_64*' -o -name '*-linux-riscv64*' \) \
    -delete
  [ -f "$lib/cassandra-all-$CASSANDRA_VERSION.jar" ] || die "Maven did not bring cassandra-all $CASSANDRA_VERSION"
  mkdirs "$root" 0755 0:0 "$home/lib" "$home/bin"
  cp "$lib"/*.jar "$(inside "$root" "$home/lib")/"
  chmod 0644 "$(inside "$root" "$home/lib")"/*.jar
  rm -rf "$lib"
  put 0755 "$HERE/cassandra/cassandra" "$root" "$home/bin/cassandra"
  put 0755 "$HERE/cassandra/nodetool" "$root" "$home/bin/nodetool"
  put 0755 "$HERE/cassandra/sstableloader" "$root" "$home/bin/sstableloader"
  # cqlsh 6.2 needs a newer Python driver than bookworm's (3.25).
  install_wheel "$root" "$CASSANDRA_DRIVER_WHEEL" "$CASSANDRA_DRIVER_WHEEL_SHA256"
  install_cqlsh "$root"
  # The configuration is world-writable, like the official image's: the entrypoint edits
  # it in place as whatever user the container runs as.
  mkdirs "$root" 1777 999:999 etc/cassandra etc/cassandra/triggers var/lib/cassandra var/log/cassandra
  for f in cassandra.yaml cassandra-rackdc.properties logback.xml logback-tools.xml jvm-server.options jvm17.options; do
    put 0666 "$HERE/cassandra/$f" "$root" "etc/cassandra/$f"
    chown 999:999 "$(inside "$root" "etc/cassandra/$f")"
  done
  ln -sfn /etc/cassandra "$(inside "$root" "$home")/conf"
  put 0755 "$HERE/cassandra/docker-entrypoint.sh" "$root" usr/local/bin/docker-entrypoint.sh
  ln -sf usr/local/bin/docker-entrypoint.sh "$(inside "$root" docker-entrypoint.sh)"
}

cassandra_config() {
  cat <<EOF
{"Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["cassandra", "-f"],
 "Env": ["PATH=/opt/cassandra/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "CASSANDRA_HOME=/opt/cassandra", "CASSANDRA_CONF=/etc/cassandra", "CASSANDRA_VERSION=$CASSANDRA_VERSION",
         "JAVA_HOME=$JAVA_HOME_IN_IMAGE", "LANG=C.UTF-8"],
 "ExposedPorts": {"7000/tcp": {}, "7001/tcp": {}, "7199/tcp": {}, "9042/tcp": {}, "9160/tcp": {}},
 "Volumes": {"/var/lib/cassandra": {}},
 "Labels": {"org.opencontainers.image.title": "Cassandra $CASSANDRA_VERSION (Maven Central) on OpenJDK 17",
            "org.opencontainers.image.version": "$CASSANDRA_VERSION"}}
EOF
}

# elasticsearch -------------------------------------------------------------------------

elasticsearch_base() { echo bookworm-jre; }
elasticsearch_ref() { echo "$PREFIX/elasticsearch:$ELASTICSEARCH_TAG"; }
elasticsearch_packages() { echo "$BASE_BOOKWORM_JRE_PACKAGES $ELASTICSEARCH_PACKAGES"; }
# The official image's user: elasticsearch 1000, run as 1000:0.
elasticsearch_hook() { system_user_hook elasticsearch 1000 Elasticsearch /usr/share/elasticsearch /bin/bash; }

elasticsearch_finish() {
  local root="$1" dl="$WORK/elasticsearch-dl" zip home=usr/share/elasticsearch dir
  rm -rf "$dl"
  log "elasticsearch: $ELASTICSEARCH_ARTIFACT $ELASTICSEARCH_VERSION (Maven Central)"
  maven org.apache.maven.plugins:maven-dependency-plugin:"$MAVEN_DEPENDENCY_PLUGIN_VERSION":copy \
    -Dartifact="$ELASTICSEARCH_ARTIFACT:$ELASTICSEARCH_VERSION:zip" -DoutputDirectory="$dl"
  zip="$dl/elasticsearch-$ELASTICSEARCH_VERSION.zip"
  [ "$(sha256sum <"$zip" | cut -c1-64)" = "$ELASTICSEARCH_ARTIFACT_SHA256" ] \
    || die "$zip does not match its pinned sha256"
  "$PYTHON" - "$zip" "$(inside "$root" usr/share)" "elasticsearch-$ELASTICSEARCH_VERSION/" <<'PY'
import os, sys, zipfile
archive, dest, prefix = sys.argv[1:]
with zipfile.ZipFile(archive) as zf:
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.filename.endswith((".bat", ".exe")):
            continue
        rel = "elasticsearch/" + info.filename[len(prefix):]
        target = os.path.join(dest, rel)
        if os.path.islink(os.path.dirname(target)):
            raise SystemExit("refusing to write through a link: " + target)
        if info.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as out:
            out.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(target, mode or 0o644)
PY
  rm -rf "$dl"
  # Owned by root; what the server writes (config: its keystore, data, logs, plugins)
  # belongs to 1000 and group 0 with the group's rights equal to the owner's, so any
  # UID in group 0 can run it.
  chown -R 0:0 "$(inside "$root" "$home")"
  mkdirs "$root" 0775 1000:0 "$home/data" "$home/logs" "$home/plugins" "$home/config/jvm.options.d"
  put 0664 "$HERE/elasticsearch/log4j2.properties" "$root" "$home/config/log4j2.properties"
  printf 'cluster.name: "docker-cluster"\nnetwork.host: 0.0.0.0\n' >"$(inside "$root" "$home/config/elasticsearch.yml")"
  for dir in config data logs plugins; do
    chown -R 1000:0 "$(inside "$root" "$home/$dir")"
    chmod -R g=u "$(inside "$root" "$home/$dir")"
  done
  # TEST IMAGE ONLY: the open-files shim (docs/images.md), built against the image's libc.
  gcc -O2 -Wall -Wextra -shared -fPIC -o "$WORK/libnofile-shim.so" "$HERE/elasticsearch/nofile-shim.c" -ldl
  put 0755 "$WORK/libnofile-shim.so" "$root" usr/local/lib/libnofile-shim.so
  rm -f "$WORK/libnofile-shim.so"
  put 0755 "$HERE/elasticsearch/docker-entrypoint.sh" "$root" usr/local/bin/docker-entrypoint.sh
}

elasticsearch_config() {
  cat <<EOF
{"User": "1000:0", "WorkingDir": "/usr/share/elasticsearch",
 "Entrypoint": ["/usr/local/bin/docker-entrypoint.sh"], "Cmd": ["eswrapper"],
 "Env": ["PATH=/usr/share/elasticsearch/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "ES_JAVA_HOME=$JAVA_HOME_IN_IMAGE", "ELASTIC_CONTAINER=true", "LANG=C.UTF-8"],
 "ExposedPorts": {"9200/tcp": {}, "9300/tcp": {}},
 "Labels": {"org.opencontainers.image.title": "Elasticsearch $ELASTICSEARCH_VERSION (integ-test-zip, Maven Central) on OpenJDK 17: TEST IMAGE",
            "org.opencontainers.image.version": "$ELASTICSEARCH_VERSION"}}
EOF
}

# syslog-ng (the log collector) ---------------------------------------------------------

syslog-ng_base() { echo trixie; }
syslog-ng_ref() { echo "$PREFIX/syslog-ng:$SYSLOG_NG_TAG"; }
syslog-ng_packages() { echo "$BASE_TRIXIE_PACKAGES $SYSLOG_NG_PACKAGES"; }
syslog-ng_hook() { :; }

syslog-ng_finish() {
  local root="$1"
  # The packaged configuration collects the system's own logs; the image has its own.
  rm -rf "$(inside "$root" etc/syslog-ng)"/conf.d "$(inside "$root" etc/syslog-ng)"/syslog-ng.conf
  mkdirs "$root" 1777 0:0 var/lib/syslog-ng
  put 0755 "$HERE/syslog-ng/log-collector" "$root" usr/local/bin/log-collector
}

syslog-ng_config() {
  cat <<EOF
{"User": "65534:65534", "Entrypoint": ["/usr/local/bin/log-collector"], "Cmd": [],
 "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
         "LOG_COLLECTOR_DIR=/var/log/containers", "LOG_COLLECTOR_PATTERN=*.log",
         "LOG_COLLECTOR_STATE_DIR=/var/lib/syslog-ng"],
 "Labels": {"org.opencontainers.image.title": "syslog-ng $SYSLOG_NG_TAG log collector (Debian packages)"}}
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
  make_rootfs "$(base_suite "$base")" "$root" "$("${name}_hook")" $("${name}_packages")
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
  local packages=(mmdebstrap)
  # pip fetches the cqlsh wheel (tools, cassandra); Maven the Java images' jars; gcc and
  # the C library's headers build the Elasticsearch image's shim.
  "$PYTHON" -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
  [ -n "$needs_java" ] && packages+=(maven gcc libc6-dev)
  host_packages "${packages[@]}"
  mkdir -p "$OUT" "$WORK"
  for name in "${names[@]}"; do
    build_image "$name"
  done
}

# One compound command: bash has read all of it before it runs, so editing this file
# during a build cannot change what the build does.
{ main "$@"; exit; }
