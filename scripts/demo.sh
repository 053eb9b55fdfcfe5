#!/usr/bin/env bash
# `make demo`: the trunkline API on a real, local Kubernetes control plane.
#
#   1. start etcd + kube-apiserver + kube-controller-manager on loopback
#      (scripts/cluster.sh, binaries built from source and cached)
#   2. build the operator and the node dataplane; start a network-namespace
#      lab (scripts/lab.sh): gateway node gw-node-1 with trunk port eth1, a
#      switch, remote instances bms1 (VLAN 100) and bms2 (VLAN 200), and a
#      public host on the fabric (underlay) bridge
#   3. run the operator and the node dataplane (AF_XDP on eth1)
#   4. kubectl apply the gateway-mode example; wait until Ready
#   5. ping between the remote instances through the gateway (ping's output)
#   6. a second gateway node gw-node-2 on the same fabric with bms3 behind
#      it (deploy/examples/overlay): bms1 on node 1 pings bms3 on node 2
#      over MPLS over UDP, and tshark decodes the tunnel's bytes
#   7. apply the virtual gateway of deploy/examples/virtual-gateway: bms1
#      reaches a public host through it, and the public host reaches bms1
#   8. send bad input and show the API server refusing it with its message
#   9. print what was proved, clean up, exit non-zero if anything failed
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

state=${TRUNKLINE_DEMO_STATE:-/tmp/trunkline-demo}
lab=demo
kubectl=$(scripts/build-k8s.sh --print | sed -n 's/^KUBECTL=//p')
target=${CARGO_TARGET_DIR:-$repo/target}
pids=()
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
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/lab.sh down --prefix "$lab" || true
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

section "Building the operator and the node dataplane"
cargo build -q -p trunkline-operator -p trunkline-dataplane || { fail "cargo build"; exit 1; }

section "Network lab: gateway nodes gw-node-1 and gw-node-2 on a fabric bridge, switches, remote instances, a public host"
scripts/lab.sh up --prefix "$lab" \
  --node name=gw,underlay=10.1.1.1/24,trunk=eth1 \
  --node name=gw2,underlay=10.1.1.2/24,trunk=eth1 \
  --instance name=bms3,node=gw2,port=eth1,vlan=100,ip=192.168.1.30/24,mac=02:00:00:00:03:03,gw=192.168.1.1 \
  --instance name=bms1,node=gw,port=eth1,vlan=100,ip=192.168.1.10/24,mac=02:00:00:00:01:01,gw=192.168.1.1 \
  --instance name=bms2,node=gw,port=eth1,vlan=200,ip=192.168.1.20/24,mac=02:00:00:00:02:01,gw=192.168.1.1 \
  --host name=pub,ip=10.1.1.253/24,route=192.168.1.0/24@10.1.1.1 || { fail "lab"; exit 1; }

section "Starting the operator and the node dataplanes of gw-node-1 and gw-node-2"
"$target/debug/trunkline-operator" --kubeconfig "$KUBECONFIG" --metrics-addr 127.0.0.1:19380 \
  >"$state/operator.log" 2>&1 &
pids+=($!)
"$target/debug/trunkline-dataplane" --node gw-node-1 --kubeconfig "$KUBECONFIG" --metrics-addr 127.0.0.1:19390 \
  --port-netns "/run/netns/$lab-gw" --backend af-xdp >"$state/dataplane.log" 2>&1 &
pids+=($!)
"$target/debug/trunkline-dataplane" --node gw-node-2 --kubeconfig "$KUBECONFIG" --metrics-addr 127.0.0.1:19391 \
  --port-netns "/run/netns/$lab-gw2" --backend af-xdp >"$state/dataplane-2.log" 2>&1 &
pids+=($!)
echo "operator log: $state/operator.log; dataplane logs: $state/dataplane.log, $state/dataplane-2.log"

section "Applying deploy/examples/gateway-mode"
if run apply -k deploy/examples/gateway-mode; then ok "the gateway-mode example applies"; else fail "kubectl apply"; fi
printf '$ kubectl wait --for=condition=Ready logicalinterfaces --all\n'
if "$kubectl" wait --for=condition=Ready logicalinterfaces --all --timeout=120s; then
  ok "the operator accepted the objects and the node dataplane programmed them (Ready)"
else
  fail "logical interfaces not Ready"; tail -20 "$state/operator.log" "$state/dataplane.log"
fi
run get trunkline -A
run get logicalinterfaces -o wide
run get physicalrouter gw-node-1 -o jsonpath='{.status.backend}{"  "}{.status.conditions[?(@.type=="Ready")].message}{"\n"}'

section "Remote instances talk through the gateway (VLAN 100 -> VRF -> VLAN 200)"
printf '$ ip netns exec %s-bms1 ping -c 3 192.168.1.20\n' "$lab"
if scripts/lab.sh exec --prefix "$lab" bms1 ping -c 3 -i 0.3 -W 2 192.168.1.20; then
  ok "bms1 (VLAN 100) pings bms2 (VLAN 200) through the AF_XDP fast path"
else
  fail "ping bms1 -> bms2"
fi
printf '$ ip netns exec %s-bms2 ping -c 2 192.168.1.1\n' "$lab"
if scripts/lab.sh exec --prefix "$lab" bms2 ping -c 2 -i 0.3 -W 2 192.168.1.1; then
  ok "the network's gateway address answers (ARP proxy and ICMP echo in the fast path)"
else
  fail "ping the gateway"
fi
printf '$ curl -s 127.0.0.1:19390/metrics | grep vmi_packets\n'
if metrics=$(curl -sS --max-time 5 http://127.0.0.1:19390/metrics); then
  grep 'vmi_packets_total{' <<<"$metrics"
  grep -q 'direction="rx"} [1-9]' <<<"$metrics" && ok "per-VMI packet counters count the traffic (/metrics)" || fail "no per-VMI counts"
else
  fail "the node dataplane's /metrics"
fi
# The OpenAPI schema kubectl explain reads is published shortly after the CRDs.
for _ in $(seq 30); do "$kubectl" explain logicalinterface.spec.vlan >/dev/null 2>&1 && break; sleep 1; done
run explain logicalinterface.spec.vlan | sed -n '1,12p'

section "Two gateway nodes, one network: the overlay (deploy/examples/overlay)"
if run apply -k deploy/examples/overlay; then ok "the overlay example applies"; else fail "kubectl apply overlay"; fi
printf '$ kubectl wait --for=condition=Ready logicalinterface gw-node-2-eth1-100\n'
if "$kubectl" wait --for=condition=Ready logicalinterface gw-node-2-eth1-100 --timeout=120s; then
  ok "bms3's logical interface on gw-node-2 is Ready"
else
  fail "gw-node-2's logical interface not Ready"; tail -20 "$state/dataplane-2.log"
fi
run get virtualnetwork net1 -n admin -o jsonpath='{"VNI "}{.status.vni}{", bridged label "}{.status.mplsLabel}{", encapsulation "}{.status.encapsulation}{"\n"}'
run get virtualmachineinterfaces -n admin -o custom-columns=NAME:.metadata.name,LABEL:.status.mplsLabel,IPS:.spec.ips[*].address
printf '$ tshark on the fabric bridge while bms1 pings bms3 (MPLS over UDP, UDP 6635)\n'
scripts/lab.sh capture --prefix "$lab" fab br0 "udp dst port 6635" --count 1 --seconds 20 \
  --decode-as "udp.port==6635,mpls" --field ip.src --field ip.dst --field udp.dstport --field mpls.label \
  >"$state/capture.json" 2>"$state/capture.log" &
capture=$!
# The capture command says "capturing" once tshark captures.
for _ in $(seq 100); do grep -q capturing "$state/capture.log" 2>/dev/null && break; sleep 0.2; done
printf '$ ip netns exec %s-bms1 ping -c 3 192.168.1.30      # bms3, behind gw-node-2\n' "$lab"
if scripts/lab.sh exec --prefix "$lab" bms1 ping -c 3 -i 0.3 -W 2 192.168.1.30; then
  ok "bms1 (behind gw-node-1) pings bms3 (behind gw-node-2) across the overlay"
else
  fail "ping bms1 -> bms3"; tail -20 "$state/dataplane.log" "$state/dataplane-2.log"
fi
wait "$capture" || true
cat "$state/capture.json"
label3=$("$kubectl" get virtualmachineinterface bms-3 -n admin -o jsonpath='{.status.mplsLabel}')
if [ -n "$label3" ] && grep -q "\"$label3\"" "$state/capture.json"; then
  ok "tshark decodes the tunnel: 10.1.1.1 -> 10.1.1.2, UDP 6635, MPLS label $label3 (bms-3's routed label)"
else
  fail "the capture shows no tunnel packet with bms-3's label ($label3)"
fi

section "Public access through a virtual gateway (the seeds' simple gateway)"
run apply -f deploy/examples/virtual-gateway/virtualgateway.yaml
printf '$ kubectl wait --for=condition=Ready virtualgateway net1-public\n'
if "$kubectl" wait --for=condition=Ready virtualgateway net1-public --timeout=90s; then
  ok "the virtual gateway is programmed on gw-node-1 (tap vgw, host route 192.168.1.0/24 dev vgw)"
else
  fail "virtual gateway not Ready"; tail -20 "$state/dataplane.log"
fi
printf '$ ip netns exec %s-gw ip route show dev vgw\n' "$lab"
ip netns exec "$lab-gw" ip route show dev vgw
printf '$ ip netns exec %s-bms1 ping -c 3 10.1.1.253     # the public host\n' "$lab"
if scripts/lab.sh exec --prefix "$lab" bms1 ping -c 3 -i 0.3 -W 2 10.1.1.253; then
  ok "bms1 reaches the public host: VRF default route -> vgw -> host routing -> eth0 -> fabric bridge"
else
  fail "ping bms1 -> public host"
fi
printf '$ ip netns exec %s-pub ping -c 3 192.168.1.10    # back to the remote instance\n' "$lab"
if ip netns exec "$lab-pub" ping -c 3 -i 0.3 -W 2 192.168.1.10; then
  ok "the public host reaches bms1: host routing -> vgw -> VRF -> VLAN 100"
else
  fail "ping public host -> bms1"
fi

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
if [ "$failures" -gt 0 ]; then
  printf '\n%d check(s) FAILED\n' "$failures"
  exit 1
fi
printf '\nall %d checks passed\n' "${#proved[@]}"
