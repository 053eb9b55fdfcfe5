#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for tests and for running the
# operator by hand. No containers: the binaries scripts/build-k8s.sh builds.
#
#   etcd (127.0.0.1:<port>) <-- kube-apiserver (https://127.0.0.1:<port>) <-- kube-controller-manager
#                                      ^                                      (GC, namespace, role aggregation)
#                                      |
#                         admin.kubeconfig (CN=admin, O=system:masters)
#
# Usage:
#   scripts/cluster.sh up   [--state DIR]   start (or reuse) a control plane, install crds/*.yaml;
#                                           the last line printed is `export KUBECONFIG=<path>`
#   scripts/cluster.sh down [--state DIR]   stop the recorded PIDs, remove the state dir
#   scripts/cluster.sh env  [--state DIR]   print the export line of a running control plane
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
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
script="$here/$(basename "$0")"
marker=.trunkline-cluster
# Stop order: dependents first (see stop_all).
components=(watchdog kube-controller-manager kube-apiserver etcd)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '10,14p' "$script" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
state=${TRUNKLINE_STATE:-/tmp/trunkline-cluster}
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
    -h | --help) usage ;;
    *) usage ;;
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
    server: https://127.0.0.1:$api_port
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

# --- up -----------------------------------------------------------------------

load_binaries() {
  local k v
  # Warm: a no-op. Its progress goes to stderr; its stdout (the paths, read
  # below) is dropped, as stdout carries only the export line.
  "$here/build-k8s.sh" >/dev/null
  while IFS='=' read -r k v; do
    case $k in
      ETCD) ETCD=$v ;;
      KUBE_APISERVER) KUBE_APISERVER=$v ;;
      KUBE_CONTROLLER_MANAGER) KUBE_CONTROLLER_MANAGER=$v ;;
      KUBECTL) KUBECTL=$v ;;
    esac
  done < <("$here/build-k8s.sh" --print)
  for v in "$ETCD" "$KUBE_APISERVER" "$KUBE_CONTROLLER_MANAGER" "$KUBECTL"; do
    [ -x "$v" ] || die "missing binary $v (scripts/build-k8s.sh failed?)"
  done
}

kubectl() { "$KUBECTL" --kubeconfig "$state/admin.kubeconfig" "$@"; }

ready() {
  local out
  out=$(curl -s --max-time 2 --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" \
    --key "$state/pki/admin.key" "https://127.0.0.1:$api_port/readyz" 2>/dev/null) || return 1
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
  start kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$state/pki/apiserver.crt" --tls-private-key-file "$state/pki/apiserver.key" \
    --client-ca-file "$state/pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$state/pki/sa.pub" \
    --service-account-signing-key-file "$state/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true \
    --disable-admission-plugins ServiceAccount \
    --profiling=false

  # Only the controllers tests rely on: ownerReference garbage collection,
  # namespace deletion, and ClusterRole aggregation (so a chart's aggregated
  # roles get their rules as in a real cluster). No scheduler, no kubelet:
  # pods never run.
  start kube-controller-manager "$KUBE_CONTROLLER_MANAGER" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --controllers garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller \
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

up() {
  local t0 rc attempt api_port
  if [ -e "$state/$marker" ]; then
    api_port=$(cat "$state/apiserver.port" 2>/dev/null || echo 0)
    if owned "$(recorded_pid etcd)" && owned "$(recorded_pid kube-apiserver)" &&
      owned "$(recorded_pid kube-controller-manager)" && ready; then
      load_binaries
      log "reusing the control plane already running in $state (https://127.0.0.1:$api_port)"
      install_crds
      print_export
      return 0
    fi
    log "stopping the incomplete control plane recorded in $state"
    stop_all
    remove_state
  elif [ -d "$state" ] && [ -n "$(ls -A "$state")" ]; then
    die "$state exists, is not empty and was not made by this script"
  fi

  load_binaries
  t0=$(now)
  mkdir -p "$state"
  touch "$state/$marker"
  make_pki
  for attempt in 1 2 3; do
    rc=0
    launch || rc=$?
    [ $rc = 0 ] && break
    [ $rc = 1 ] && [ $attempt -lt 3 ] || die "control plane did not start (logs in $state)"
    log "retrying with other ports"
  done
  log "control plane ready in $(elapsed "$t0") s: https://127.0.0.1:$api_port (logs in $state)"
  if [ -n "${CLUSTER_WATCH_PID:-}" ]; then start_watchdog "$CLUSTER_WATCH_PID"; fi
  install_crds
  print_export
}

down() {
  if [ ! -d "$state" ]; then
    log "no control plane in $state"
    return 0
  fi
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
  *) usage ;;
esac
