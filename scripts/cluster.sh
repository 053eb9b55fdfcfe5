#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for tests and for running the
# operator by hand. No containers: the binaries scripts/build-k8s.sh builds.
#
#   etcd (127.0.0.1:<port>) <-- kube-apiserver (https://127.0.0.1:<port>) <-- kube-controller-manager
#                                      ^                                      (GC, namespace, role aggregation)
#                                      |
#                         admin.kubeconfig (CN=admin, O=system:masters)
#
# With --node, also a node that runs pods (docs/test-rig.md, section 8):
#
#   root netns: etcd, kube-apiserver (on <mgmt>.1), kube-controller-manager, kube-scheduler
#        |  veth tlm-<id> <mgmt>.1/30
#        |  veth mgmt0    <mgmt>.2/30 = the node's InternalIP
#   node netns (its own, or --node-netns NAME, e.g. a lab's gateway node):
#        containerd (+ runc, CNI bridge cni0 10.244.0.0/24), kubelet, kube-proxy;
#        hostNetwork pods live here, other pods behind cni0
#
# Usage:
#   scripts/cluster.sh up   [--state DIR] [--node [--node-netns NAME] [--node-name NAME]]
#                                           start (or reuse) a control plane, install crds/*.yaml;
#                                           the last line printed is `export KUBECONFIG=<path>`
#   scripts/cluster.sh down [--state DIR]   stop the recorded PIDs (and the node's pods),
#                                           undo the node's host changes, remove the state dir
#   scripts/cluster.sh env  [--state DIR]   print the export line of a running control plane
#   scripts/cluster.sh import [--state DIR] ARCHIVE...
#                                           import OCI image archives (scripts/build-images.sh)
#                                           into the node's containerd
#
# State dir: --state, else $TRUNKLINE_STATE, else /tmp/trunkline-cluster. It holds
# certificates, the etcd data, one log and one .pid file per component.
#
# `up` on a state dir whose control plane is running and ready reuses it (it
# re-applies crds/ and prints the export line again); a partly dead one is
# stopped first, then started afresh. So there is never more than one control
# plane per state dir.
#
# Environment:
#   CLUSTER_EXTRA_SANS   extra IP SANs for the serving certificate (comma or space separated)
#   CLUSTER_CRDS         directory of CRD manifests to install (default: crds/ of this repo)
#   CLUSTER_WATCH_PID    a PID: `up` also starts a detached watchdog that runs
#                        `down` on this state dir as soon as that process is gone
#                        (the test-support crate passes its own PID)
#   TRUNKLINE_CACHE      where build-k8s.sh keeps the binaries
#   IMAGE_REGISTRY       registry part of the node's pause image (build-images.sh)
#   CLUSTER_PROFILING    1: the API server serves /debug/pprof (to admins, as
#                        any request: `kubectl get --raw /debug/pprof/profile`);
#                        off by default
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
script="$here/$(basename "$0")"
marker=.trunkline-cluster
# Stop order: dependents first (see stop_all). `pods` is not a process: the
# node's containers, stopped through containerd (see stop_pods).
components=(watchdog kube-scheduler kube-controller-manager kubelet kube-proxy pods containerd
  kube-apiserver etcd)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '/^# Usage:/,/^#$/p' "$script" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
state=${TRUNKLINE_STATE:-/tmp/trunkline-cluster}
node=0
node_netns=
node_name=trunkline-node
archives=()
while [ $# -gt 0 ]; do
  case $1 in
    --state)
      [ $# -ge 2 ] || usage
      state=$2
      shift 2
      ;;
    --state=*)
      state=${1#--state=}
      shift
      ;;
    --node)
      node=1
      shift
      ;;
    --node-netns)
      [ $# -ge 2 ] || usage
      node_netns=$2
      shift 2
      ;;
    --node-name)
      [ $# -ge 2 ] || usage
      node_name=$2
      shift 2
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      [ "$cmd" = import ] || usage
      archives+=("$1")
      shift
      ;;
  esac
done
mkdir -p "$(dirname "$state")"
state=$(cd "$(dirname "$state")" && pwd)/$(basename "$state")
[ "$state" != / ] || die "refusing to use / as state dir"

# --- processes ----------------------------------------------------------------

# owned PID: true when PID is alive (not a zombie) and its command line names
# this state dir, so a recycled PID of an unrelated process is never signalled.
owned() {
  local pid=$1 st
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ "$st" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$state/"
}

recorded_pid() { cat "$state/$1.pid" 2>/dev/null || true; }

# stop_all: stops every recorded, owned PID (never the caller's own process),
# one component at a time in dependency order: TERM, up to 10 s to exit, then
# KILL. Sequential on purpose: kube-apiserver shuts down in about a second
# while etcd still answers, but hangs when etcd goes first.
stop_all() {
  local c pid deadline
  for c in "${components[@]}"; do
    if [ "$c" = pods ]; then
      stop_pods
      continue
    fi
    pid=$(recorded_pid "$c")
    [ "$pid" != "$$" ] || continue
    owned "$pid" || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while owned "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if owned "$pid"; then
      log "$c (PID $pid) did not stop within 10 s of TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

remove_state() {
  [ -d "$state" ] || return 0
  [ -e "$state/$marker" ] || die "$state has no $marker file: not removing a directory this script did not create"
  cleanup_node
  # Never delete through a mount (a pod's volume, a container's rootfs).
  if awk -v d="$state/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "something is still mounted under $state; not removing it"
  fi
  rm -rf "$state"
}

# start NAME CMD...: runs CMD detached (own session, stdin from /dev/null,
# output to NAME.log) so that it outlives this script and holds none of the
# caller's pipes open; records its PID in NAME.pid.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
}

# --- ports and certificates -------------------------------------------------

# free_ports N: N distinct TCP ports nobody listens on, below the ephemeral
# range so outgoing connections never hold them. Racy by nature; `up` retries
# with new ports when a component fails to bind.
free_ports() {
  local n=$1 p chosen=" " listening
  listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ')
  while [ "$n" -gt 0 ]; do
    p=$((20000 + RANDOM % 12000))
    case " $listening $chosen " in *" $p "*) continue ;; esac
    chosen="$chosen$p "
    n=$((n - 1))
  done
  echo "$chosen"
}

# Small explicit openssl configs: rustls (webpki) wants a CA with
# basicConstraints CA:TRUE and leaves with the right extendedKeyUsage.
openssl_cnf() {
  cat <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF
}

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSIONS: NAME.key + NAME.crt signed by the cluster CA.
sign() {
  local name=$1 subj=$2 ext=$3
  new_key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
    -extfile "$pki/openssl.cnf" -extensions "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

make_pki() {
  local sans="DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  sans="$sans,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
  [ "$api_host" = 127.0.0.1 ] || sans="$sans,IP:$api_host"
  local ip
  local extra=${CLUSTER_EXTRA_SANS:-}
  for ip in ${extra//,/ }; do sans="$sans,IP:$ip"; done
  pki=$state/pki
  mkdir -p "$pki"
  openssl_cnf "$sans" >"$pki/openssl.cnf"
  new_key "$pki/ca.key"
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=trunkline-test-ca" -days 3650 -sha256 \
    -config "$pki/openssl.cnf" -extensions ca -out "$pki/ca.crt" 2>/dev/null
  sign apiserver "/CN=kube-apiserver" server
  sign admin "/O=system:masters/CN=admin" client
  # The controller manager has its own identity (visible in audit and RBAC
  # decisions) but runs every controller under it, so it needs full access.
  sign controller-manager "/O=system:masters/CN=system:kube-controller-manager" client
  if [ $node = 1 ]; then
    # The node's identities, each the one Kubernetes' default RBAC (and the
    # Node authorizer) knows: no system:masters for them.
    sign scheduler "/CN=system:kube-scheduler" client
    sign kubelet "/O=system:nodes/CN=system:node:$node_name" client
    sign kube-proxy "/CN=system:kube-proxy" client
    # The API server's identity toward kubelets (logs, exec).
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  fi
  new_key "$pki/sa.key"
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# kubeconfig USER: a self-contained kubeconfig (certificates embedded).
kubeconfig() {
  local user=$1
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trunkline
  cluster:
    server: https://$api_host:$api_port
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$user.crt")
    client-key-data: $(base64 -w0 <"$pki/$user.key")
contexts:
- name: trunkline
  context:
    cluster: trunkline
    user: $user
    namespace: default
current-context: trunkline
EOF
}

# --- the node -------------------------------------------------------------------
#
# A node is containerd + kubelet + kube-proxy in a network namespace of their
# own (or adopted with --node-netns: a lab's gateway node, so that hostNetwork
# pods own that node's ports), reached from the API server over a veth pair,
# the "management link". Everything it writes lives under $state/node, except
# what the kernel and the tools keep elsewhere, each undone by `down`
# (cleanup_node): the management link, the namespace (or, when adopted, what
# was added to it), pod network namespaces, the cgroup root, the global
# sysctls the kubelet sets, its /var/log/containers links, CNI's cache.

pod_cidr=10.244.0.0/24
# A short id of this state dir, for names on the host.
node_id=$(printf '%s' "$state" | sha256sum | cut -c1-8)
api_host=127.0.0.1
[ ! -r "$state/apiserver.host" ] || api_host=$(cat "$state/apiserver.host")
cache=${TRUNKLINE_CACHE:-$HOME/.cache/trunkline}
# Set by the kubelet unless told to protect them, global to the machine:
# restored by `down`.
kernel_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

node_netns_path() { echo "/run/netns/$(cat "$state/node/netns")"; }
in_node() { nsenter --net="$(node_netns_path)" "$@"; }
ctr_node() { ctr --address "$state/node/containerd.sock" --namespace k8s.io "$@"; }

# prepare_node: the node's namespace and management link, before the
# certificates (the API server's address is in them) and the control plane.
prepare_node() {
  local n=$state/node x node_ip link
  command -v containerd >/dev/null && command -v runc >/dev/null && [ -x /usr/lib/cni/bridge ] ||
    die "the node needs containerd, runc and containernetworking-plugins (scripts/install-deps.sh)"
  mkdir -p "$n"
  if [ -n "$node_netns" ]; then
    [ -e "/run/netns/$node_netns" ] || die "--node-netns $node_netns: no such network namespace (ip netns list)"
  else
    node_netns=tln-$node_id
    ip netns add "$node_netns"
    touch "$n/netns.owned"
    ip -n "$node_netns" link set lo up
  fi
  echo "$node_netns" >"$n/netns"
  echo "$node_name" >"$n/name"
  # A /30 of 10.250.0.0/16 that no address of this machine's namespace is in.
  for _ in $(seq 1 64); do
    x=$((RANDOM % 256))
    ip -4 -o addr show | grep -q " 10\.250\.$x\." || break
  done
  api_host=10.250.$x.1
  node_ip=10.250.$x.2
  link=tlm-$node_id
  ip link add "$link" type veth peer name mgmt0 netns "$node_netns"
  echo "$link" >"$n/mgmt-link"
  ip addr add "$api_host/30" dev "$link"
  ip link set "$link" up
  ip -n "$node_netns" addr add "$node_ip/30" dev mgmt0
  ip -n "$node_netns" link set mgmt0 up
  # Host-network pods reach Services (the API server's 10.0.0.1 above all)
  # through kube-proxy's rules, which rewrite a packet only after the
  # kernel has found a route for its original destination: the node has no
  # default route, so the Service range gets one toward the API server's
  # side (where nothing forwards it further).
  ip -n "$node_netns" route add 10.0.0.0/24 via "$api_host" dev mgmt0 ||
    log "warning: no route for the Service range in $node_netns (a route there already?): host-network pods will not reach Services"
  # What kubeadm's preflight requires of a node, and what pods (and the
  # dataplane's virtual gateways) rely on: IPv4 forwarding, in the node's
  # namespace only.
  nsenter --net="/run/netns/$node_netns" sysctl -qw net.ipv4.ip_forward=1
  echo "$api_host" >"$state/apiserver.host"
  echo "$node_ip" >"$n/ip"
  log "node $node_name: network namespace $node_netns, management link $link $api_host <-> mgmt0 $node_ip"
}

# cgroup_hierarchies: the mounted cgroup hierarchies (v1: one per controller
# set, plus name=systemd and the empty unified one; v2: one).
cgroup_hierarchies() {
  if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo /sys/fs/cgroup
  else
    awk '$9 == "cgroup" || $9 == "cgroup2" { print $5 }' /proc/self/mountinfo | grep '^/sys/fs/cgroup/'
  fi
}

start_node() {
  local n=$state/node t0 k v pause_archive='' pause_ref='' node_ip h cpuset
  t0=$(now)
  node_ip=$(cat "$n/ip")
  while IFS='=' read -r k v; do
    case $k in
      PAUSE_ARCHIVE) pause_archive=$v ;;
      PAUSE_REF) pause_ref=$v ;;
    esac
  done < <("$here/build-images.sh" --out "$cache/images" pause)
  [ -n "$pause_archive" ] || die "scripts/build-images.sh pause built nothing"
  mkdir -p "$n/cni" "$n/cni-ipam" "$n/pod-logs" "$n/kubelet/pki" "$n/containerd"
  : >"$n/resolv.conf"

  cat >"$n/containerd.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$n/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Processes here may lack CAP_SYS_RESOURCE (a container's root, as on
  # these machines), without which no process may lower its OOM score: the
  # kubelet asks -998 for sandboxes, which runc then fails to set. This
  # keeps every container's score at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni"
    max_conf_num = 1
EOF
  # Pods that are not on the host network: a bridge in the node's namespace,
  # masquerading toward anything outside the pod subnet (the API server).
  cat >"$n/cni/10-trunkline.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "trunkline-$node_id",
 "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
              "ipam": {"type": "host-local", "dataDir": "$n/cni-ipam",
                       "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
  [ -d /run/containerd ] || touch "$n/run-containerd.created"
  [ -d /var/lib/cni ] || touch "$n/var-lib-cni.created"
  [ -d /var/log/containers ] || touch "$n/var-log-containers.created"
  start containerd nsenter --net="$(node_netns_path)" containerd --config "$n/containerd.toml"
  wait_for "containerd" 30 containerd ctr_node version
  ctr_node images import "$pause_archive" >"$n/import.log" 2>&1 ||
    { cat "$n/import.log" >&2; die "importing $pause_archive failed"; }

  # The cgroup root of the node's pods, in every hierarchy; a new cpuset
  # has no CPUs or memory nodes until given its parent's.
  for h in $(cgroup_hierarchies); do mkdir -p "$h/trunkline-$node_id"; done
  for cpuset in /sys/fs/cgroup/cpuset /sys/fs/cgroup/cpuset,cpu; do
    [ -e "$cpuset/cpuset.cpus" ] || continue
    cat "$cpuset/cpuset.cpus" >"$cpuset/trunkline-$node_id/cpuset.cpus"
    cat "$cpuset/cpuset.mems" >"$cpuset/trunkline-$node_id/cpuset.mems"
  done
  if [ ! -e "$n/sysctl.saved" ]; then
    for k in "${kernel_sysctls[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$n/sysctl.saved"
  fi

  kubeconfig kubelet >"$n/kubelet.kubeconfig"
  kubeconfig kube-proxy >"$n/kube-proxy.kubeconfig"
  kubeconfig scheduler >"$state/scheduler.kubeconfig"
  cat >"$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, which kubelets since 1.35 refuse unless told.
failCgroupV1: false
# containerd 1.6 does not report its cgroup driver (CRI RuntimeConfig), so
# the kubelet uses this one (until 1.38).
cgroupDriver: cgroupfs
cgroupRoot: /trunkline-$node_id
containerRuntimeEndpoint: unix://$n/containerd.sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization: {mode: AlwaysAllow}
podLogsDir: $n/pod-logs
volumePluginDir: $n/volume-plugins
resolvConf: $n/resolv.conf
clusterDomain: cluster.local
# A test machine: its disk may be fuller than a production node's
# thresholds, and images cannot be pulled back once collected.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
EOF
  cat >"$n/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $n/kube-proxy.kubeconfig}
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the machine-wide conntrack table size alone.
conntrack: {maxPerCore: 0, min: 0}
EOF
  start kubelet nsenter --net="$(node_netns_path)" "$KUBELET" --config "$n/kubelet.yaml" \
    --kubeconfig "$n/kubelet.kubeconfig" --root-dir "$n/kubelet" --cert-dir "$n/kubelet/pki" \
    --hostname-override "$node_name" --node-ip "$node_ip"
  start kube-proxy nsenter --net="$(node_netns_path)" "$KUBE_PROXY" --config "$n/kube-proxy.yaml"
  start kube-scheduler "$KUBE_SCHEDULER" --kubeconfig "$state/scheduler.kubeconfig" \
    --leader-elect=false --secure-port 0
  wait_for "node $node_name registered" 60 kubelet kubectl get node "$node_name"
  if ! kubectl wait --for condition=Ready "node/$node_name" --timeout 90s >/dev/null 2>&1; then
    log "node $node_name not Ready after 90 s; last lines of $state/kubelet.log:"
    tail -n 20 "$state/kubelet.log" >&2 || true
    die "the node did not become Ready (logs in $state)"
  fi
  kubectl label node "$node_name" trunkline.io/gateway=true --overwrite >/dev/null
  log "node $node_name Ready in $(elapsed "$t0") s (labelled trunkline.io/gateway=true)"
}

# wait_for WHAT SECONDS COMPONENT CMD...: until CMD succeeds; fails early
# when COMPONENT has exited (showing its log).
wait_for() {
  local what=$1 limit=$2 component=$3 deadline
  deadline=$((SECONDS + limit))
  shift 3
  until "$@" >/dev/null 2>&1; do
    if ! owned "$(recorded_pid "$component")"; then
      log "$component exited; last lines of $state/$component.log:"
      tail -n 20 "$state/$component.log" >&2 || true
      die "$what: $component is not running"
    fi
    [ $SECONDS -lt $deadline ] || die "$what: not within $limit s (logs in $state)"
    sleep 0.2
  done
}

# stop_pods: the node's containers, killed through containerd (the kubelet is
# already stopped, so nothing restarts them), and the network namespaces the
# runtime made for their pods, and CNI's cache entries for them.
stop_pods() {
  local id path pod_netns=()
  [ -S "$state/node/containerd.sock" ] && owned "$(recorded_pid containerd)" || return 0
  for id in $(ctr_node containers ls -q 2>/dev/null); do
    path=$(ctr_node containers info "$id" 2>/dev/null |
      jq -r '.Spec.linux.namespaces[]? | select(.type == "network") | .path // empty')
    case $path in */netns/cni-*) pod_netns+=("$(basename "$path")") ;; esac
    ctr_node tasks delete --force "$id" >/dev/null 2>&1 || true
    ctr_node containers delete "$id" >/dev/null 2>&1 || true
    # What CNI would have forgotten on a sandbox's orderly teardown.
    rm -f /var/lib/cni/results/*-"$id"-* 2>/dev/null || true
  done
  for id in "${pod_netns[@]}"; do ip netns delete "$id" 2>/dev/null || true; done
}

# cleanup_node: undoes what the node changed outside $state (see above), once
# its processes are gone.
cleanup_node() {
  local n=$state/node m h line netns chain
  [ -d "$n" ] || return 0
  # Mounts under the state dir, deepest first: pods' volumes, rootfs.
  awk -v d="$state/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  for h in $(cgroup_hierarchies); do
    [ ! -d "$h/trunkline-$node_id" ] || find "$h/trunkline-$node_id" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  if [ -r "$n/sysctl.saved" ]; then
    while read -r line; do sysctl -qw "$line" 2>/dev/null || true; done <"$n/sysctl.saved"
  fi
  find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null || true
  [ ! -e "$n/var-log-containers.created" ] || rmdir /var/log/containers 2>/dev/null || true
  [ ! -e "$n/var-lib-cni.created" ] || find /var/lib/cni -depth -type d -empty -delete 2>/dev/null || true
  [ ! -e "$n/run-containerd.created" ] || find /run/containerd -depth -type d -empty -delete 2>/dev/null || true
  [ ! -r "$n/mgmt-link" ] || ip link delete "$(cat "$n/mgmt-link")" 2>/dev/null || true
  netns=$(cat "$n/netns" 2>/dev/null || true)
  if [ -n "$netns" ] && [ -e "/run/netns/$netns" ]; then
    if [ -e "$n/netns.owned" ]; then
      ip netns delete "$netns"
    else
      # Adopted: take back what the node added (the pod bridge, kube-proxy's
      # and the bridge plugin's rules); the namespace is its owner's.
      ip -n "$netns" link delete cni0 2>/dev/null || true
      [ -z "${KUBE_PROXY:-}" ] || in_node "$KUBE_PROXY" --cleanup >/dev/null 2>&1 || true
      in_node iptables -t nat -S POSTROUTING 2>/dev/null | grep -- '-j CNI-' | sed 's/^-A/-D/' |
        while read -r line; do
          # shellcheck disable=SC2086 # a rule's words, as iptables -S printed them
          in_node iptables -t nat $line 2>/dev/null || true
        done
      for chain in $(in_node iptables -t nat -S 2>/dev/null | sed -n 's/^-N \(CNI-[^ ]*\).*/\1/p'); do
        in_node iptables -t nat -F "$chain" 2>/dev/null || true
        in_node iptables -t nat -X "$chain" 2>/dev/null || true
      done
    fi
  fi
  rm -rf "$n"
}

import_cmd() {
  local a
  [ -S "$state/node/containerd.sock" ] && owned "$(recorded_pid containerd)" ||
    die "no node running in $state (start one with: scripts/cluster.sh up --node)"
  [ ${#archives[@]} -gt 0 ] || usage
  for a in "${archives[@]}"; do
    [ -r "$a" ] || die "$a: no such archive"
    ctr_node images import "$a" >&2 || die "importing $a failed"
  done
}

# --- up -----------------------------------------------------------------------

# load_paths: the binaries' paths (scripts/build-k8s.sh --print; no build).
load_paths() {
  local k v
  while IFS='=' read -r k v; do
    case $k in
      ETCD) ETCD=$v ;;
      KUBE_APISERVER) KUBE_APISERVER=$v ;;
      KUBE_CONTROLLER_MANAGER) KUBE_CONTROLLER_MANAGER=$v ;;
      KUBECTL) KUBECTL=$v ;;
      KUBELET) KUBELET=$v ;;
      KUBE_SCHEDULER) KUBE_SCHEDULER=$v ;;
      KUBE_PROXY) KUBE_PROXY=$v ;;
    esac
  done < <("$here/build-k8s.sh" --print)
}

load_binaries() {
  local v
  # Warm: a no-op. Its progress goes to stderr; its stdout (the paths, read
  # below) is dropped, as stdout carries only the export line.
  "$here/build-k8s.sh" >/dev/null
  load_paths
  local needed=("$ETCD" "$KUBE_APISERVER" "$KUBE_CONTROLLER_MANAGER" "$KUBECTL")
  [ $node = 0 ] || needed+=("$KUBELET" "$KUBE_SCHEDULER" "$KUBE_PROXY")
  for v in "${needed[@]}"; do
    [ -x "$v" ] || die "missing binary $v (scripts/build-k8s.sh failed?)"
  done
}

kubectl() { "$KUBECTL" --kubeconfig "$state/admin.kubeconfig" "$@"; }

ready() {
  local out
  out=$(curl -s --max-time 2 --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" \
    --key "$state/pki/admin.key" "https://$api_host:$api_port/readyz" 2>/dev/null) || return 1
  [ "$out" = ok ]
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# launch: one attempt at starting all three components on fresh ports.
# Returns 1 (after stopping what it started) when a component exits early,
# 2 on timeout.
launch() {
  local ports etcd_port peer_port deadline c pid
  ports=($(free_ports 3))
  etcd_port=${ports[0]} peer_port=${ports[1]} api_port=${ports[2]}
  echo "$api_port" >"$state/apiserver.port"
  kubeconfig admin >"$state/admin.kubeconfig"
  kubeconfig controller-manager >"$state/controller-manager.kubeconfig"
  rm -rf "$state/etcd"

  start etcd "$ETCD" --name trunkline --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "trunkline=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --log-level=warn

  # The apiserver retries etcd until it answers, so both start together.
  # Without a node nothing creates the `default` ServiceAccount of a
  # namespace, so Pod creation must not require it (admission plugin
  # ServiceAccount off). With a node, pods run: they get their token
  # volumes from that plugin, the kubelet its rights from the Node
  # authorizer and NodeRestriction, and the API server listens where the
  # node and its pods reach it (the management link), not on loopback.
  local api_mode=(--disable-admission-plugins ServiceAccount --authorization-mode RBAC)
  local controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller
  local kcm_node=()
  if [ $node = 1 ]; then
    api_mode=(--enable-admission-plugins NodeRestriction --authorization-mode Node,RBAC
      --advertise-address "$api_host"
      --kubelet-client-certificate "$state/pki/apiserver-kubelet-client.crt"
      --kubelet-client-key "$state/pki/apiserver-kubelet-client.key"
      --kubelet-preferred-address-types InternalIP)
    # What the chart's workloads need: Deployments and DaemonSets make
    # their pods, Services get EndpointSlices (kube-proxy), namespaces get
    # the `default` ServiceAccount and the kube-root-ca.crt ConfigMap that
    # every pod's token volume mounts.
    controllers=$controllers,serviceaccount-controller,root-ca-certificate-publisher-controller
    controllers=$controllers,deployment-controller,replicaset-controller,daemonset-controller
    controllers=$controllers,endpointslice-controller,disruption-controller,pod-garbage-collector-controller
    # Lifts the not-ready taint a new node registers with, once it is Ready.
    controllers=$controllers,node-lifecycle-controller
    kcm_node=(--root-ca-file "$state/pki/ca.crt")
  fi
  start kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$api_host" --secure-port "$api_port" \
    --tls-cert-file "$state/pki/apiserver.crt" --tls-private-key-file "$state/pki/apiserver.key" \
    --client-ca-file "$state/pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$state/pki/sa.pub" \
    --service-account-signing-key-file "$state/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true \
    "${api_mode[@]}" \
    --profiling="$([ "${CLUSTER_PROFILING:-0}" = 1 ] && echo true || echo false)"

  # Only the controllers tests rely on: ownerReference garbage collection,
  # namespace deletion, and ClusterRole aggregation (so a chart's aggregated
  # roles get their rules as in a real cluster); with a node, also those
  # its workloads need (above).
  start kube-controller-manager "$KUBE_CONTROLLER_MANAGER" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --controllers "$controllers" \
    "${kcm_node[@]}" \
    --leader-elect=false \
    --secure-port 0 \
    --use-service-account-credentials=false \
    --profiling=false

  deadline=$((SECONDS + 90))
  until ready; do
    for c in etcd kube-apiserver kube-controller-manager; do
      pid=$(recorded_pid "$c")
      if ! owned "$pid"; then
        log "$c exited during start; last lines of $state/$c.log:"
        tail -n 15 "$state/$c.log" >&2 || true
        stop_all
        return 1
      fi
    done
    if [ $SECONDS -ge $deadline ]; then
      log "kube-apiserver not ready after 90 s; last lines of $state/kube-apiserver.log:"
      tail -n 15 "$state/kube-apiserver.log" >&2 || true
      stop_all
      return 2
    fi
    sleep 0.2
  done
}

install_crds() {
  local dir=${CLUSTER_CRDS:-$repo/crds}
  local crds=("$dir"/*.yaml)
  [ -e "${crds[0]}" ] || {
    log "no $dir/*.yaml to install"
    return 0
  }
  log "installing ${#crds[@]} CRD file(s) from $dir"
  # Output to crds.log; shown only when something fails.
  if ! kubectl apply --server-side --force-conflicts --field-manager trunkline-cluster-sh -f "$dir" \
    >"$state/crds.log" 2>&1; then
    cat "$state/crds.log" >&2
    die "installing the CRDs in $dir failed"
  fi
  if ! kubectl wait --for condition=Established crd --all --timeout 60s >>"$state/crds.log" 2>&1; then
    cat "$state/crds.log" >&2
    die "the CRDs in $dir did not become Established within 60 s"
  fi
}

print_export() { echo "export KUBECONFIG=$state/admin.kubeconfig"; }

start_watchdog() {
  local pid=$1 birth
  [ -r "/proc/$pid/stat" ] || die "CLUSTER_WATCH_PID=$pid is not a running process"
  # The process's start time tells it apart from a later process given the same PID.
  birth=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
  # $0 of the watchdog names the state dir, so `owned` recognises it.
  setsid bash -c '
    pid=$1 birth=$2 script=$3 state=$4
    while [ "$(sed "s/.*) //" /proc/$pid/stat 2>/dev/null | cut -d" " -f20)" = "$birth" ]; do
      sleep 0.5
    done
    exec "$script" down --state "$state"
  ' "$state/watchdog" "$pid" "$birth" "$script" "$state" </dev/null >/dev/null 2>&1 &
  echo $! >"$state/watchdog.pid"
}

# alive: every recorded component of this state dir runs (the node's too,
# when it has one) and the API server is ready.
alive() {
  local c
  for c in etcd kube-apiserver kube-controller-manager; do owned "$(recorded_pid "$c")" || return 1; done
  if [ -d "$state/node" ]; then
    for c in containerd kubelet kube-proxy kube-scheduler; do owned "$(recorded_pid "$c")" || return 1; done
  fi
  ready
}

up() {
  local t0 rc attempt api_port
  if [ -e "$state/$marker" ]; then
    api_port=$(cat "$state/apiserver.port" 2>/dev/null || echo 0)
    if alive && { [ $node = 0 ] || [ -d "$state/node" ]; }; then
      load_binaries
      log "reusing the control plane already running in $state (https://$api_host:$api_port)"
      install_crds
      print_export
      return 0
    fi
    log "stopping the incomplete control plane recorded in $state"
    load_paths
    stop_all
    remove_state
    api_host=127.0.0.1
  elif [ -d "$state" ] && [ -n "$(ls -A "$state")" ]; then
    die "$state exists, is not empty and was not made by this script"
  fi

  load_binaries
  t0=$(now)
  mkdir -p "$state"
  touch "$state/$marker"
  [ $node = 0 ] || prepare_node
  make_pki
  for attempt in 1 2 3; do
    rc=0
    launch || rc=$?
    [ $rc = 0 ] && break
    [ $rc = 1 ] && [ $attempt -lt 3 ] || die "control plane did not start (logs in $state)"
    log "retrying with other ports"
  done
  log "control plane ready in $(elapsed "$t0") s: https://$api_host:$api_port (logs in $state)"
  if [ -n "${CLUSTER_WATCH_PID:-}" ]; then start_watchdog "$CLUSTER_WATCH_PID"; fi
  install_crds
  [ $node = 0 ] || start_node
  print_export
}

down() {
  if [ ! -d "$state" ]; then
    log "no control plane in $state"
    return 0
  fi
  load_paths
  stop_all
  remove_state
  log "stopped; removed $state"
}

env_cmd() {
  [ -e "$state/$marker" ] && owned "$(recorded_pid kube-apiserver)" ||
    die "no control plane running in $state (start one with: scripts/cluster.sh up)"
  print_export
}

case $cmd in
  up) up ;;
  down) down ;;
  env) env_cmd ;;
  import) import_cmd ;;
  *) usage ;;
esac
