#!/usr/bin/env bash
# `make demo-l3vpn`: seed 003's internet gateway by L3VPN (RFC 4364), with
# FRR's bgpd as the DC gateway router, on a real, local control plane.
#
#   1. start etcd + kube-apiserver + kube-controller-manager on loopback
#      (scripts/cluster.sh)
#   2. build the operator, the node dataplane and the BGP speaker
#      (trunkline-bgp), and gobgpd (scripts/build-gobgp.sh)
#   3. a network-namespace lab (scripts/lab.sh):
#
#        ctl 10.1.1.100 (trunkline-bgp's gobgpd, AS 64513)   dcgw 10.1.1.254 (FRR bgpd, AS 64512;
#                 |            eBGP, VPNv4                 |    MPLSoUDP by BPF) -- ext 203.0.113.10
#        =========+======== fabric bridge 10.1.1.0/24 ======+=====
#             eth0 10.1.1.1 |
#                    [gw] gw-node-1 (agent)   trunk eth1 -- switch -- public1 VLAN 340, 198.51.100.70
#
#   4. FRR in the DC gateway's namespace, configured under
#      `address-family ipv4 vpn` (this kernel has no VRF module): a default
#      route (its halves 0.0.0.0/1 and 128.0.0.0/1: FRR 8.4's static VPN
#      route refuses 0.0.0.0/0) with RD 64512:1, label 1000 and route
#      target 64514:1
#   5. run the operator, gw-node-1's dataplane and the speaker (supervising
#      its gobgpd, as the chart runs it); kubectl apply deploy/examples/l3vpn
#      (network admin/public with route targets 64514:1, instance public-1,
#      BGPPeer mx1)
#   6. show: the BGPPeer's status (Established, routes sent/received), FRR's
#      `show bgp ipv4 vpn` with our VMI route (RD, RT, label, next hop),
#      the DCGateway learned from FRR and the VRF's imported routes, and
#      public1 pinging the public host behind the DC gateway over MPLS over
#      UDP (tshark decodes the tunnel's packets)
#   7. print what was proved, clean up, exit non-zero if anything failed
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

state=${TRUNKLINE_DEMO_STATE:-/tmp/trunkline-demo-l3vpn}
lab=l3vpn
kubectl=$(scripts/build-k8s.sh --print | sed -n 's/^KUBECTL=//p')
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
pids=()
failures=0
proved=()

# The lab (deploy/examples/l3vpn names gw-node-1 10.1.1.1 and the router
# mx1 at 10.1.1.254, AS 64512; our AS 64513; target 64514:1).
speaker_ip=10.1.1.100
router_ip=10.1.1.254
router_as=64512
our_as=64513
route_target=64514:1
frr_label=1000
instance_ip=198.51.100.70
public_host=203.0.113.10
gateway=bgp-${router_ip//./-}

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
  printf '$ kubectl %s\n' "$*"
  "$kubectl" "$@"
}
ok() { proved+=("$*"); printf '\033[32mok\033[0m %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf '\033[31mFAILED\033[0m %s\n' "$*"; }
vtysh() { scripts/lab.sh exec --prefix "$lab" dcgw vtysh -N "$lab-dcgw" -c "$1"; }
# poll SECONDS CMD...: run CMD every half second until it succeeds.
poll() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

cleanup() {
  section "Cleaning up"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # The speaker takes its gobgpd along (parent-death signal); FRR runs
  # detached until frr-down.
  scripts/lab.sh frr-down --prefix "$lab" dcgw || true
  scripts/lab.sh down --prefix "$lab" || true
  scripts/cluster.sh down --state "$state" || true
}
trap cleanup EXIT

section "Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)"
out=$(scripts/cluster.sh up --state "$state") || { echo "$out"; fail "control plane start"; exit 1; }
export KUBECONFIG=${out##*export KUBECONFIG=}
ok "a real kube-apiserver $("$kubectl" version -o json 2>/dev/null | jq -r .serverVersion.gitVersion) runs locally with the trunkline CRDs"

section "Building the operator, the node dataplane, the BGP speaker and gobgpd"
cargo build -q --locked -p trunkline-operator -p trunkline-dataplane -p trunkline-bgp || { fail "cargo build"; exit 1; }
gobgpd=$(scripts/build-gobgp.sh | sed -n 's/^GOBGPD=//p')
[ -x "$gobgpd" ] || { fail "gobgpd (scripts/build-gobgp.sh)"; exit 1; }
echo "gobgpd: $gobgpd"

section "Network lab: gw-node-1 on a fabric bridge, public1 behind its trunk, the speaker's host, a DC gateway with a public host"
scripts/lab.sh up --prefix "$lab" \
  --node name=gw,underlay=10.1.1.1/24,trunk=eth1 \
  --instance name=public1,node=gw,port=eth1,vlan=340,ip=$instance_ip/26,mac=02:00:00:c6:40:0a,gw=198.51.100.65 \
  --host name=ctl,ip=$speaker_ip/24 \
  --dc-gateway name=dcgw,local=$router_ip/24,host=ext,host-ip=$public_host/24 || { fail "lab"; exit 1; }

section "FRR's bgpd in the DC gateway's namespace (AS $router_as), VPNv4 under address-family ipv4 vpn"
cat >"$state/bgpd.conf" <<EOF
frr defaults traditional
hostname dcgw
log stdout informational
!
route-map RT-PUBLIC permit 10
 set extcommunity rt $route_target
!
router bgp $router_as
 bgp router-id $router_ip
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor $speaker_ip remote-as $our_as
 neighbor $speaker_ip timers connect 2
 address-family ipv4 unicast
  no neighbor $speaker_ip activate
 exit-address-family
 address-family ipv4 vpn
  neighbor $speaker_ip activate
  network 0.0.0.0/1 rd $router_as:1 label $frr_label route-map RT-PUBLIC
  network 128.0.0.0/1 rd $router_as:1 label $frr_label route-map RT-PUBLIC
 exit-address-family
!
EOF
sed -n '/^router bgp/,$p' "$state/bgpd.conf"
if scripts/lab.sh frr-up --prefix "$lab" dcgw --config "$state/bgpd.conf"; then
  ok "FRR (zebra + bgpd) runs in the DC gateway's namespace"
else
  fail "FRR does not start"; exit 1
fi

section "Starting the operator, gw-node-1's node dataplane and the BGP speaker"
"$target/debug/trunkline-operator" --kubeconfig "$KUBECONFIG" --metrics-addr 127.0.0.1:19480 \
  >"$state/operator.log" 2>&1 &
pids+=($!)
"$target/debug/trunkline-dataplane" --node gw-node-1 --kubeconfig "$KUBECONFIG" --metrics-addr 127.0.0.1:19490 \
  --port-netns "/run/netns/$lab-gw" --backend af-xdp --debug-tables >"$state/dataplane.log" 2>&1 &
pids+=($!)
# The speaker runs and supervises gobgpd (restarting it if it dies), in
# the lab's ctl namespace, as the chart's pod runs it on a node.
"$target/debug/trunkline-bgp" --kubeconfig "$KUBECONFIG" --gobgpd "$gobgpd" \
  --api-socket "$state/gobgpd.sock" --router-id "$speaker_ip" --local-asn "$our_as" \
  --namespace default --health-addr 127.0.0.1:19481 --speaker-netns "/run/netns/$lab-ctl" \
  >"$state/bgp.log" 2>&1 &
pids+=($!)
echo "logs: $state/operator.log, $state/dataplane.log, $state/bgp.log"

section "Applying deploy/examples/l3vpn (network admin/public with route targets, instance public-1, BGPPeer mx1)"
if run apply -k deploy/examples/l3vpn; then ok "the l3vpn example applies"; else fail "kubectl apply"; fi
run get virtualnetwork public -n admin -o jsonpath='{"exportRouteTargets "}{.spec.l3vpn.exportRouteTargets}{", importRouteTargets "}{.spec.l3vpn.importRouteTargets}{"\n"}'
printf '$ kubectl wait --for=condition=Ready logicalinterface gw-node-1-eth1-340\n'
if "$kubectl" wait --for=condition=Ready logicalinterface gw-node-1-eth1-340 --timeout=120s; then
  ok "public-1's logical interface is programmed on gw-node-1 (Ready)"
else
  fail "the logical interface is not Ready"; tail -20 "$state/operator.log" "$state/dataplane.log"
fi

section "The BGP session: BGPPeer mx1's status"
printf '$ kubectl wait --for=jsonpath={.status.sessionState}=Established bgppeer mx1\n'
"$kubectl" wait --for=jsonpath='{.status.sessionState}'=Established bgppeer mx1 --timeout=90s >/dev/null
# Sent: public-1's address. Received: FRR's two default-route halves and
# our own route, which FRR sends back (eBGP) and gobgpd drops (its AS path
# holds ours).
routes_are_counted() {
  [ "$("$kubectl" get bgppeer mx1 -o jsonpath='{.status.routesSent}/{.status.routesReceived}')" = 1/3 ]
}
poll 30 routes_are_counted
run get bgppeers -o wide
if [ "$("$kubectl" get bgppeer mx1 -o jsonpath='{.status.sessionState} {.status.conditions[?(@.type=="Ready")].status}')" = "Established True" ] && routes_are_counted; then
  ok "BGPPeer mx1: session Established, 1 route sent (public-1's address), 3 received (FRR's default route halves, and ours reflected back, dropped as an AS-path loop)"
else
  fail "BGPPeer mx1 is not Established with 1 route sent and 3 received"; tail -20 "$state/bgp.log"
fi

section "Export: FRR holds public-1's address as a VPNv4 route"
vni=$("$kubectl" get virtualnetwork public -n admin -o jsonpath='{.status.vni}')
label=$("$kubectl" get virtualmachineinterface public-1 -n admin -o jsonpath='{.status.mplsLabel}')
rd=$speaker_ip:$vni
echo "network admin/public: VNI $vni, so RD $rd; public-1's routed label: $label"
frr_has_route() { vtysh "show bgp ipv4 vpn rd $rd $instance_ip/32 json" | jq -e '.paths | length > 0' >/dev/null 2>&1; }
poll 30 frr_has_route
printf '$ vtysh -c "show bgp ipv4 vpn"      # in the DC gateway namespace\n'
vtysh "show bgp ipv4 vpn"
printf '$ vtysh -c "show bgp ipv4 vpn rd %s %s/32"\n' "$rd" "$instance_ip"
vtysh "show bgp ipv4 vpn rd $rd $instance_ip/32"
detail=$(vtysh "show bgp ipv4 vpn rd $rd $instance_ip/32 json" | jq -c . 2>/dev/null)
frr_label_seen=$(jq -r '[.. | objects | .remoteLabel? // empty][0] // empty' <<<"$detail" 2>/dev/null)
communities=$(jq -r '[.. | objects | .extendedCommunity?.string? // empty][0] // empty' <<<"$detail" 2>/dev/null)
next_hop=$(jq -r '[.. | objects | .nexthops? // empty | .[].ip][0] // empty' <<<"$detail" 2>/dev/null)
echo "from FRR's JSON: label $frr_label_seen, extended communities \"$communities\", next hop $next_hop"
if [ "$frr_label_seen" = "$label" ] && [ "$next_hop" = 10.1.1.1 ] &&
  grep -qw "RT:$route_target" <<<"$communities" && grep -qw "ET:13" <<<"$communities"; then
  ok "FRR shows $instance_ip/32 with RD $rd, RT:$route_target, label $label (public-1's), next hop 10.1.1.1 (gw-node-1), encapsulation MPLSoUDP (ET:13)"
else
  fail "FRR's route for $instance_ip/32 lacks the RD, RT, label, next hop or encapsulation expected"
fi

section "Import: FRR's default route in the network's VRF"
printf '$ kubectl wait --for=condition=Ready dcgateway %s\n' "$gateway"
"$kubectl" wait --for=condition=Ready dcgateway "$gateway" --timeout=60s >/dev/null
run get dcgateway "$gateway" -o jsonpath='{"address "}{.spec.address}{", networks "}{.spec.networks}{"\n"}'
vrf_has_default() {
  curl -sS --max-time 5 http://127.0.0.1:19490/debug/tables | jq -r .installed >"$state/tables.txt" 2>/dev/null &&
    grep -q "route 0.0.0.0/1 peer DCGateway/$gateway label $frr_label" "$state/tables.txt" &&
    grep -q "route 128.0.0.0/1 peer DCGateway/$gateway label $frr_label" "$state/tables.txt"
}
poll 60 vrf_has_default
printf '$ curl -s 127.0.0.1:19490/debug/tables | jq -r .installed | grep DCGateway   # gw-node-1'"'"'s installed tables\n'
grep "DCGateway" "$state/tables.txt"
if vrf_has_default; then
  ok "gw-node-1's VRF for admin/public installs FRR's default route (0.0.0.0/1, 128.0.0.0/1) toward $router_ip with label $frr_label"
else
  fail "the VRF does not hold FRR's default route"; tail -20 "$state/dataplane.log"
fi

section "Traffic: public1 reaches the public host behind the DC gateway over MPLS over UDP"
# The lab's DC gateway forwards by BPF, not by FRR's RIB: it is given the
# route FRR learned from us (prefix, next hop, label as FRR shows them).
if [ -n "$frr_label_seen" ] && scripts/lab.sh add-dc-gateway-route --prefix "$lab" dcgw "$instance_ip/32" 10.1.1.1 "$frr_label_seen"; then
  echo "DC gateway: $instance_ip/32 -> MPLSoUDP to 10.1.1.1, label $frr_label_seen (from FRR's route)"
else
  fail "the DC gateway's route back (FRR's label: '${frr_label_seen}')"
fi
scripts/lab.sh capture --prefix "$lab" fab br0 "udp dst port 6635" --count 2 --seconds 20 \
  --decode-as "udp.port==6635,mpls" --field ip.src --field ip.dst --field udp.dstport --field mpls.label \
  >"$state/capture.json" 2>"$state/capture.log" &
capture=$!
for _ in $(seq 100); do grep -q capturing "$state/capture.log" 2>/dev/null && break; sleep 0.2; done
printf '$ ip netns exec %s-public1 ping -c 3 %s\n' "$lab" "$public_host"
if scripts/lab.sh exec --prefix "$lab" public1 ping -c 3 -i 0.3 -W 2 "$public_host"; then
  ok "public1 (VLAN 340, admin/public) pings the public host $public_host behind the DC gateway, and back"
else
  fail "ping public1 -> $public_host"; tail -20 "$state/dataplane.log"
fi
wait "$capture" || true
printf '$ tshark on the fabric bridge (udp dst port 6635, decoded as MPLS)\n'
cat "$state/capture.json"
# One line per packet: the outer and inner addresses, the label.
if grep "\"ip.dst\":\[\"$router_ip\"" "$state/capture.json" | grep -q "\"mpls.label\":\[\"$frr_label\"\]" &&
  grep "\"ip.dst\":\[\"10.1.1.1\"" "$state/capture.json" | grep -q "\"mpls.label\":\[\"$label\"\]"; then
  ok "tshark decodes the tunnel both ways: 10.1.1.1 -> $router_ip label $frr_label (FRR's), $router_ip -> 10.1.1.1 label $label (public-1's)"
else
  fail "the capture lacks a tunnel packet with label $frr_label toward $router_ip or $label back"
fi

section "What this demo proved"
for p in "${proved[@]}"; do printf '  - %s\n' "$p"; done
if [ "$failures" -gt 0 ]; then
  printf '\n%d check(s) FAILED\n' "$failures"
  exit 1
fi
printf '\nall %d checks passed\n' "${#proved[@]}"
