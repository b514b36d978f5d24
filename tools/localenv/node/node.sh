# The real node of the local environment: containerd, a kubelet and kube-proxy, on a bridge of
# its own. Sourced by localenv.sh, whose functions (start, stop, running, wait_for, kc, log, die)
# and variables (STATE, BIN, PKI, LOGS, PIDS, OFF, PYTHON) it uses.
#
# One real node per host: kube-proxy owns the host's KUBE-* iptables chains, the kubelet the
# kubepods cgroup. A lock file names the state directory of the environment that runs it; a
# second environment either runs without one (LOCALENV_REAL_NODE=0) or is refused.
# shellcheck shell=bash

NODE_NAME="real-node"
NODE_BRIDGE="dsk8s0"
NODE_IP="10.88.0.1"
NODE_POD_CIDR="10.88.0.0/24"
KWOK_POD_CIDR="10.244.0.0/16"
NODE_CNI_NETWORK="datastore-localenv"
NODE_LOCK="/run/datastore-kubernetes-real-node"
NODE_GUARD="DSK8S"              # prefix of the iptables chains that keep pod traffic on the host
NODE_CHAIN_PREFIXES=(KUBE- CNI- "$NODE_GUARD-")
NODE_STORAGE_CLASS="real-local"
NODE_PROVISIONER="datastore.kubernetes/local"
NODE_TAINT="datastore.kubernetes/real-node"
KUBELET_PORT=$((16350 + OFF))
KUBELET_HEALTHZ_PORT=$((16348 + OFF))
PROXY_HEALTHZ_PORT=$((16356 + OFF))
PROXY_METRICS_PORT=$((16349 + OFF))
NODE_CLEANUP="$HERE/node/cleanup.py"
# Made at fixed paths whatever the configuration: containerd's shim sockets, the CNI result
# cache, the kubelet's device-plugin directory and its links to the container logs.
NODE_HOST_DIRS="/run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers"

node_enabled() { [ "${LOCALENV_REAL_NODE:-1}" = 1 ]; }

# Paths of the node of the environment whose state directory is $1.
node_dir() { printf '%s/node' "$1"; }
node_socket() { printf '%s/containerd/containerd.sock' "$1"; }

crictl_() { "$BIN/crictl" --runtime-endpoint "unix://$(node_socket "$STATE")" --timeout 30s "$@"; }
ctr_() { ctr --address "$(node_socket "$STATE")" --namespace k8s.io "$@"; }

# --------------------------------------------------------------------------- install

install_node() {
  local want="$K8S_VERSION"
  if ! stamp_ok node-kubernetes "$want" || ! [ -x "$BIN/kubelet" ] || ! [ -x "$BIN/kube-proxy" ]; then
    log "building kubelet and kube-proxy v$K8S_VERSION (Go module k8s.io/kubernetes)"
    mkdir -p "$BIN"
    (cd "$HERE/gobuild" && go build -buildvcs=false -trimpath -ldflags "$(k8s_ldflags)" \
        -o "$BIN/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
    stamp_set node-kubernetes "$want"
  fi
  install_go_tool crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION"
  PYTHON="$PYTHON" DATASTORE_K8S_CACHE="$CACHE" "$HERE/node/build-images.sh"
}

# --------------------------------------------------------------------------- certificates

make_node_pki() {
  [ -f "$PKI/kube-proxy.crt" ] && return 0
  (
    cd "$PKI" || exit 1
    sign() {  # name subject extensions
      openssl genrsa -out "$1.key" 2048 2>/dev/null
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
      chmod 600 "$1.key"
    }
    # The node's identity for the Node authorizer, its serving certificate, and kube-proxy's
    # identity (bound to system:node-proxier by the default RBAC policy).
    sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
    sign kubelet-server "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME
extendedKeyUsage=serverAuth"
    sign kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  )
}

node_kubeconfig() {  # user certificate-name
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: localenv
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$PKI/$2.crt", client-key: "$PKI/$2.key"}
contexts:
- name: localenv
  context: {cluster: localenv, user: $1}
current-context: localenv
EOF
}

# --------------------------------------------------------------------------- cleanup

node_alive() {  # state-dir -> 0 when that environment's containerd still runs
  local pidfile="$1/pids/containerd" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -qa -- "containerd" "/proc/$pid/cmdline" 2>/dev/null
}

node_lock_value() {  # key -> value from the lock file (nothing when there is none)
  [ -f "$NODE_LOCK" ] || return 0
  sed -n "s/^$1=//p" "$NODE_LOCK" | head -1
}

stop_in() {  # state-dir name match-string: stop a part of the environment at state-dir
  local PIDS="$1/pids"
  stop "$2" "$3"
}

# Stop the node of the environment at $1 and remove everything it made on the host. With $2 = 1
# the pods are first stopped through the CRI, as the kubelet would (the network plugin releases
# their addresses); after a crash they are killed by their cgroup instead.
node_clean() {
  local st="$1" graceful="$2" socket
  socket="$(node_socket "$st")"
  stop_in "$st" local-provisioner provisioner.py
  stop_in "$st" kube-proxy kube-proxy
  stop_in "$st" kubelet kubelet
  if [ "$graceful" = 1 ] && node_alive "$st" && [ -x "$BIN/crictl" ]; then
    # One pod at a time takes about a second each: all at once.
    "$BIN/crictl" --runtime-endpoint "unix://$socket" pods -q 2>/dev/null \
      | xargs -r -P 16 -n 1 "$BIN/crictl" --runtime-endpoint "unix://$socket" --timeout 60s rmp --force \
      >/dev/null 2>&1 || log "crictl could not remove every pod; killing what is left"
  fi
  stop_in "$st" containerd containerd
  python3 "$NODE_CLEANUP" cgroups kubepods
  python3 "$NODE_CLEANUP" processes "$socket"
  python3 "$NODE_CLEANUP" mounts "$st/kubelet" "$st/containerd" "$CACHE/containerd"
  python3 "$NODE_CLEANUP" links /var/log/containers "$st/pod-logs"
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  ip route del unreachable "$KWOK_POD_CIDR" 2>/dev/null || true
  python3 "$NODE_CLEANUP" iptables "${NODE_CHAIN_PREFIXES[@]}"
  # The network plugins' result cache of our network and of containerd's loopback network.
  rm -rf /var/lib/cni/results/"$NODE_CNI_NETWORK"-* /var/lib/cni/results/cni-loopback-* 2>/dev/null || true
  if [ -f "$NODE_LOCK" ]; then
    local value dir
    # The host directories the node made (containerd and the kubelet make some at fixed paths):
    # removed when nothing but empty directories and stale sockets is left in them.
    for dir in $(node_lock_value made); do
      [ -d "$dir" ] && find "$dir" -depth \( -type s -o -type d -empty \) -delete 2>/dev/null
    done
    value="$(node_lock_value ip_forward)"; [ -n "$value" ] && sysctl -qw net.ipv4.ip_forward="$value"
    value="$(node_lock_value bridge_nf)"; [ -n "$value" ] && sysctl -qw net.bridge.bridge-nf-call-iptables="$value" 2>/dev/null
    rm -f "$NODE_LOCK"
  fi
  rm -rf "$st/containerd" "$st/kubelet" "$st/pod-logs" 2>/dev/null || true
}

node_leftovers() {  # state-dir -> one line per thing of the node still on the host
  python3 "$NODE_CLEANUP" leftovers "$1" kubepods "$NODE_BRIDGE" "${NODE_CHAIN_PREFIXES[@]}"
  ip route show type unreachable "$KWOK_POD_CIDR" 2>/dev/null | sed 's/^/route /'
}

# --------------------------------------------------------------------------- up

# Clean what a crashed run left, then make the bridge, the routes and the guard chains.
node_prepare() {
  if [ -f "$NODE_LOCK" ]; then
    local owner; owner="$(node_lock_value state)"
    if [ "$owner" != "$STATE" ]; then
      if [ -n "$owner" ] && node_alive "$owner"; then
        die "the real node already runs for the environment in $owner: stop that one first, or start this one with LOCALENV_REAL_NODE=0"
      fi
      log "removing what a real node left behind (environment in ${owner:-unknown})"
      node_clean "${owner:-$STATE}" 0
    elif ! node_alive "$STATE"; then
      log "removing what the last real node left behind"
      node_clean "$STATE" 0
    fi
  else
    if iptables -w -t nat -S 2>/dev/null | grep -q '^-N KUBE-SERVICES'; then
      die "another Kubernetes node runs on this host (iptables chain KUBE-SERVICES exists): start with LOCALENV_REAL_NODE=0"
    fi
    if [ -e "/sys/class/net/$NODE_BRIDGE" ]; then
      node_clean "$STATE" 0
    fi
  fi
  if [ ! -f "$NODE_LOCK" ]; then
    local made="" dir
    for dir in $NODE_HOST_DIRS; do [ -e "$dir" ] || made+="$dir "; done
    printf 'state=%s\nip_forward=%s\nbridge_nf=%s\nmade=%s\n' "$STATE" "$(sysctl -n net.ipv4.ip_forward)" \
      "$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null)" "$made" >"$NODE_LOCK"
  fi
  mkdir -p "$(node_dir "$STATE")" "$STATE/pod-logs" "$STATE/volumes" /var/log/containers
  sysctl -qw net.ipv4.ip_forward=1
  # Bridged pod-to-pod packets must pass through iptables for Service replies to be un-NATed.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  if [ ! -e "/sys/class/net/$NODE_BRIDGE" ]; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${NODE_POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # kwok's pod addresses are not real: a Service endpoint there must fail here, not follow the
  # default route off the machine.
  ip route replace unreachable "$KWOK_POD_CIDR"
  node_guard
  rm -f "$STATE/containerd/clean"
}

# Pods talk to each other, to Services, to CoreDNS and to the object store's S3 gateway on the bridge
# address; nothing of theirs
# is forwarded off the bridge, and no packet for a Service or kwok address leaves un-translated.
node_guard() {
  local g="$NODE_GUARD" br="$NODE_BRIDGE"
  iptables-restore -w --noflush <<EOF
*filter
:$g-INPUT - [0:0]
:$g-FORWARD - [0:0]
:$g-OUTPUT - [0:0]
-A $g-INPUT -i $br -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
-A $g-INPUT -i $br -d $NODE_IP/32 -p udp --dport 53 -j RETURN
-A $g-INPUT -i $br -d $NODE_IP/32 -p tcp --dport 53 -j RETURN
-A $g-INPUT -i $br -d $NODE_IP/32 -p tcp --dport $OBJECTSTORE_PORT -j RETURN
-A $g-INPUT -i $br -j REJECT
-A $g-FORWARD -d $SERVICE_CIDR -j REJECT
-A $g-FORWARD -d $KWOK_POD_CIDR -j REJECT
-A $g-FORWARD -i $br -o $br -j RETURN
-A $g-FORWARD -i $br -j REJECT
-A $g-FORWARD -o $br -j REJECT
-A $g-OUTPUT -d $SERVICE_CIDR -j REJECT
-A $g-OUTPUT -d $KWOK_POD_CIDR -j REJECT
COMMIT
EOF
  node_guard_first
}

# The guard goes first in each hook: kube-proxy puts its own jumps in front at its start, and
# one of them accepts forwarded packets it marked. (It adds a jump only when it is missing, so
# the order holds once kube-proxy runs.)
node_guard_first() {
  local hook
  for hook in INPUT FORWARD OUTPUT; do
    if [ "$(iptables -w -S "$hook" | sed -n 2p)" != "-A $hook -j $NODE_GUARD-$hook" ]; then
      while iptables -w -D "$hook" -j "$NODE_GUARD-$hook" 2>/dev/null; do :; done
      iptables -w -I "$hook" 1 -j "$NODE_GUARD-$hook"
    fi
  done
}

node_write_runtime_config() {
  local dir; dir="$(node_dir "$STATE")"
  mkdir -p "$dir/cni" "$dir/certs.d" "$STATE/containerd"
  cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$CACHE/containerd"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$(node_socket "$STATE")"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  # exec, attach and port-forward streams: the kubelet proxies them, nobody else needs them.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # No CAP_SYS_RESOURCE in the bounding set on such hosts: without this every sandbox fails.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
EOF
  cat >"$dir/cni/10-$NODE_CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NODE_CNI_NETWORK",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$dir/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Every registry the roles name (and any other) resolves to the local registry on loopback:
  # containerd never looks an outside registry up, not even in DNS.
  local registry
  rm -rf "${dir:?}/certs.d"
  for registry in _default docker.io registry-1.docker.io docker.elastic.co cr.fluentbit.io registry.k8s.io \
                  k8s.gcr.io gcr.io quay.io ghcr.io public.ecr.aws mcr.microsoft.com localhost; do
    mkdir -p "$dir/certs.d/$registry"
    cat >"$dir/certs.d/$registry/hosts.toml" <<EOF
server = "http://127.0.0.1:$REGISTRY_PORT"

[host."http://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  done
  printf 'nameserver %s\n' "$NODE_IP" >"$dir/resolv.conf"
}

# containerd, then the images (in the background of the rest of `up`). Its image store lives
# in the cache, so an image is unpacked once, not at every `up`; containers, mounts, sockets and
# network namespaces live in the state directory.
node_runtime() {
  # Image layers are unpacked with containerd's umask: keep them readable to every user.
  umask 022
  node_write_runtime_config
  if ! running containerd containerd; then
    start containerd containerd containerd --config "$(node_dir "$STATE")/containerd.toml"
    wait_for containerd 30 ctr_ version
    # The records of pods from a run that did not stop cleanly (their processes are gone; a
    # running containerd, on the other hand, serves pods the kubelet still runs).
    crictl_ pods -q 2>/dev/null | xargs -r -P 16 -n 1 "$BIN/crictl" \
      --runtime-endpoint "unix://$(node_socket "$STATE")" rmp --force >/dev/null 2>&1 || true
  fi
  touch "$STATE/containerd/clean"
  node_import_images
}

# Import each image archive whose images containerd does not hold at the same digest.
node_import_images() {
  local tar want have imported=0 kept=0
  # Held at that digest by containerd, and known to its CRI plugin (which the kubelet asks).
  have="$(ctr_ images ls 2>/dev/null | awk 'NR > 1 {print $1, $3}' \
    | grep -F -f <(crictl_ images -o json 2>/dev/null | python3 -c 'import json, sys
for image in json.load(sys.stdin)["images"]:
    for tag in image.get("repoTags") or []:
        print(tag + " ")' 2>/dev/null || true) || true)"
  for tar in "$CACHE"/node-images/*.tar "$CACHE"/images/*.tar; do
    [ -f "$tar" ] || continue
    want="$(python3 "$HERE/node/oci_archive.py" --list "$tar" 2>/dev/null || true)"
    if [ -n "$want" ] && ! grep -vxF -f <(printf '%s\n' "$have") <<<"$want" >/dev/null; then
      kept=$((kept + 1))
      continue
    fi
    ctr_ images import "$tar" >>"$LOGS/containerd-import.log" 2>&1 \
      || fail_part containerd-import "importing $tar failed"
    imported=$((imported + 1))
  done
  log "images: $imported imported into containerd, $kept already there"
}

node_daemons() {
  local dir; dir="$(node_dir "$STATE")"
  node_kubeconfig "system:node:$NODE_NAME" kubelet-client >"$dir/kubelet.kubeconfig"
  node_kubeconfig system:kube-proxy kube-proxy >"$dir/kube-proxy.kubeconfig"
  chmod 600 "$dir"/*.kubeconfig
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
# Only the API server (its client certificate is signed by the environment's CA) may use the
# kubelet's API, and only for what RBAC allows it.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$(node_socket "$STATE")
# Hosts with cgroup v1 controllers, swap possibly on, no systemd.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $dir/resolv.conf
podLogsDir: $STATE/pod-logs
registerWithTaints:
- {key: $NODE_TAINT, value: "true", effect: NoSchedule}
maxPods: 60
serializeImagePulls: false
# Every image here is imported or comes from the local registry, none with credentials: an image
# pulled once under another name must not make the kubelet ask a registry again.
imagePullCredentialsVerificationPolicy: NeverVerify
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
shutdownGracePeriod: 0s
EOF
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $NODE_POD_CIDR
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
# NodePorts answer on the bridge only, never on the host's other addresses.
nodePortAddresses: [$NODE_POD_CIDR]
# Leave the host's conntrack settings as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kubelet "$BIN/kubelet" "$BIN/kubelet" --config "$dir/kubelet.yaml" \
    --kubeconfig "$dir/kubelet.kubeconfig" --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "type=real,$NODE_TAINT=true" --v=1
  start kube-proxy "$BIN/kube-proxy" "$BIN/kube-proxy" --config "$dir/kube-proxy.yaml" --v=1
  start local-provisioner provisioner.py "$PYTHON" "$HERE/node/provisioner.py" \
    --kubeconfig "$STATE/kubeconfig" --node "$NODE_NAME" --directory "$STATE/volumes" --name "$NODE_PROVISIONER"
}

node_storage_class() {
  cat <<EOF
---
# Volumes on the real node: \`local\` PersistentVolumes (they honour fsGroup) made on demand
# by node/provisioner.py, which also grows them.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $NODE_STORAGE_CLASS}
provisioner: $NODE_PROVISIONER
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
allowedTopologies:
- matchLabelExpressions:
  - {key: $NODE_TAINT, values: ["true"]}
EOF
}

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

node_wait() {
  wait_for kubelet 90 node_ready
  wait_for kube-proxy 30 curl -sf "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  node_guard_first
}

node_down() {
  local owner; owner="$(node_lock_value state)"
  if [ "$owner" = "$STATE" ] || { [ -z "$owner" ] && [ -f "$PIDS/containerd" ]; }; then
    node_clean "$STATE" 1
    log "stopped the real node"
  fi
}

node_status() {
  if [ ! -f "$PIDS/containerd" ]; then
    echo "real node: not started (LOCALENV_REAL_NODE=0, or the environment is down)"
    return 0
  fi
  local part
  for part in containerd:containerd kubelet:"$BIN/kubelet" kube-proxy:"$BIN/kube-proxy" local-provisioner:provisioner.py; do
    if running "${part%%:*}" "${part#*:}"; then echo "${part%%:*}: running"; else echo "${part%%:*}: stopped"; fi
  done
  if [ -f "$STATE/kubeconfig" ] && running kubelet "$BIN/kubelet"; then
    kc get node "$NODE_NAME" -o wide --no-headers 2>/dev/null | sed 's/^/node: /' || true
  fi
  if running containerd containerd && [ -x "$BIN/crictl" ]; then
    echo "on $NODE_NAME: $(crictl_ pods -q --state ready 2>/dev/null | wc -l) pods ready," \
      "$(crictl_ ps -q 2>/dev/null | wc -l) containers running"
  fi
}
