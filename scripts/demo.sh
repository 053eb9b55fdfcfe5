#!/usr/bin/env bash
# `make demo`: the trunkline API on a real, local Kubernetes control plane.
#
#   1. start etcd + kube-apiserver + kube-controller-manager on loopback
#      (scripts/cluster.sh, binaries built from source and cached)
#   2. kubectl apply the gateway-mode example (a gateway node, a network, two
#      remote instances on VLANs 100 and 200)
#   3. show it with kubectl get / explain
#   4. send bad input and show the API server refusing it with its message
#   5. print what was proved, clean up, exit non-zero if anything failed
#
# The forwarding part (operator, node dataplane, namespace lab, ping between
# the remote instances) is not built yet: see the README's limitations.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

state=${TRUNKLINE_DEMO_STATE:-/tmp/trunkline-demo}
kubectl=$(scripts/build-k8s.sh --print | sed -n 's/^KUBECTL=//p')
failures=0
proved=()

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
  printf '$ kubectl %s\n' "$*"
  "$kubectl" "$@"
}
ok() { proved+=("$*"); printf '\033[32mok\033[0m %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf '\033[31mFAILED\033[0m %s\n' "$*"; }

# refused NAME EXPECTED-SUBSTRING KUBECTL-ARGS...: the command must fail and
# its error must contain the substring.
refused() {
  local what=$1 expected=$2 out
  shift 2
  printf '$ kubectl %s\n' "$*"
  if out=$("$kubectl" "$@" 2>&1); then
    printf '%s\n' "$out"
    fail "$what: accepted"
  else
    printf '%s\n' "$out"
    if grep -qF -- "$expected" <<<"$out"; then ok "$what: refused by the API server"; else fail "$what: refused without \"$expected\""; fi
  fi
}

cleanup() {
  section "Cleaning up"
  scripts/cluster.sh down --state "$state" || true
}
trap cleanup EXIT

section "Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)"
started=$(date +%s.%N)
out=$(scripts/cluster.sh up --state "$state") || { echo "$out"; fail "control plane start"; exit 1; }
export KUBECONFIG=${out##*export KUBECONFIG=}
printf 'ready after %.1f s; KUBECONFIG=%s\n' "$(echo "$(date +%s.%N) - $started" | bc 2>/dev/null || echo 0)" "$KUBECONFIG"
run version 2>/dev/null | sed -n 's/^Server Version: /server /p'
ok "a real kube-apiserver $("$kubectl" version -o json 2>/dev/null | jq -r .serverVersion.gitVersion) runs locally with the trunkline CRDs"

section "Applying deploy/examples/gateway-mode"
if run apply -k deploy/examples/gateway-mode; then ok "the gateway-mode example applies"; else fail "kubectl apply"; fi
run get trunkline -A
run get logicalinterfaces -o wide
# The OpenAPI schema kubectl explain reads is published shortly after the CRDs.
for _ in $(seq 30); do "$kubectl" explain logicalinterface.spec.vlan >/dev/null 2>&1 && break; sleep 1; done
run explain logicalinterface.spec.vlan | sed -n '1,12p'

section "Bad input is refused by the API server, with a message saying what is valid"
refused "VLAN 4095" "4094" apply -f - <<'EOF'
apiVersion: trunkline.io/v1alpha1
kind: LogicalInterface
metadata: {name: demo-bad-vlan}
spec: {physicalRouter: gw-node-1, physicalInterface: eth1, vlan: 4095, virtualMachineInterface: {namespace: admin, name: bms-1}}
EOF
refused "changing the VLAN of a logical interface" "vlan is immutable" \
  patch logicalinterface gw-node-1-eth1-100 --type merge -p '{"spec":{"vlan":300}}'
refused "a multicast MAC" "must be a unicast MAC address" apply -f - <<'EOF'
apiVersion: trunkline.io/v1alpha1
kind: VirtualMachineInterface
metadata: {name: demo-bad-mac, namespace: admin}
spec: {virtualNetwork: net1, macAddress: "01:00:5e:00:00:01"}
EOF
refused "a gateway outside its subnet" "gateway must be an address inside the subnet" apply -f - <<'EOF'
apiVersion: trunkline.io/v1alpha1
kind: VirtualNetwork
metadata: {name: demo-bad-gateway, namespace: admin}
spec: {subnets: [{cidr: 10.9.0.0/16, gateway: 10.8.0.1}]}
EOF
refused "an interface name with a slash" "must be a Linux interface name" apply -f - <<'EOF'
apiVersion: trunkline.io/v1alpha1
kind: PhysicalRouter
metadata: {name: demo-bad-port}
spec: {physicalInterfaces: [{name: "eth/1"}]}
EOF
refused "a /32 virtual gateway subnet (the original refused it too)" "prefix length from 1 to 31" apply -f - <<'EOF'
apiVersion: trunkline.io/v1alpha1
kind: VirtualGateway
metadata: {name: demo-bad-vgw}
spec: {interface: vgw, virtualNetwork: {namespace: admin, name: net1}, subnets: [192.168.1.1/32], nodes: [gw-node-1]}
EOF
if [ "$("$kubectl" get logicalinterface gw-node-1-eth1-100 -o jsonpath='{.spec.vlan}')" = 100 ]; then
  ok "valid objects are untouched by the refused writes"
else
  fail "the valid logical interface changed"
fi

section "What this demo proved"
for p in "${proved[@]}"; do printf '  - %s\n' "$p"; done
echo "  (not yet: operator, node dataplane and traffic; see README, Limitations)"
if [ "$failures" -gt 0 ]; then
  printf '\n%d check(s) FAILED\n' "$failures"
  exit 1
fi
printf '\nall %d checks passed\n' "${#proved[@]}"
