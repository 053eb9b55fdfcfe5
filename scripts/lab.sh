#!/usr/bin/env bash
# The network-namespace lab: a gateway node, a switch and remote instances.
#
#   <p>-i1 (instance: eth0 = IP, MAC, default via the gateway address)
#      | access port a1: tc tagger, VLAN v1   \
#   <p>-sw  (bridge br0)                        > switch
#      | trunk (tx VLAN offload off: tags travel in the frame bytes)
#   <p>-gw  eth1 (the gateway node's trunk port, no address: the dataplane owns it)
#
#   <p>-pub (public host: eth0 = HOST) -- fabric -- <p>-gw eth0 (GW)      with --public
#
#   scripts/lab.sh up   --prefix P  --instance NAME:VLAN:IP/LEN:MAC:GATEWAY ...
#                       [--public GW/LEN,HOST/LEN[,ROUTE...]]   (ROUTE: a subnet the
#                        public host reaches through GW, e.g. a virtual gateway's)
#   scripts/lab.sh down --prefix P
#   scripts/lab.sh exec --prefix P NAME CMD...      (run CMD in instance NAME)
#
# Every namespace and link carries the prefix; `down` removes exactly the
# namespaces of that prefix. Traffic never leaves the lab: instances have no
# route but through the gateway node, which has no link out.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '2,16p' "$0" >&2; exit 2; }
log() { printf '[lab] %s\n' "$*" >&2; }

cmd=${1:-}; shift || true
prefix=""
instances=()
public=""
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --public) public=$2; shift 2 ;;
    --instance) instances+=("$2"); shift 2 ;;
    *) break ;;
  esac
done
[ -n "$prefix" ] || usage
case $prefix in *[!a-z0-9]*|??????????*) echo "prefix: 1-9 lower-case letters/digits" >&2; exit 2 ;; esac
state=${LAB_STATE:-/tmp/trunkline-lab-$prefix}

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-" || true); do
    ip netns del "$ns"
  done
  rm -rf "$state"
}

tagger() { # VID -> object path
  local vid=$1 obj="$state/tagger-$1.o"
  if [ ! -f "$obj" ]; then
    clang -O2 -g -target bpf -DVID="$vid" "-I/usr/include/$(uname -m)-linux-gnu" \
      -c "$repo/tests/lab/tagger.bpf.c" -o "$obj"
  fi
  echo "$obj"
}

up() {
  down
  mkdir -p "$state"
  local gw="$prefix-gw" sw="$prefix-sw"
  ip netns add "$gw"; ip netns add "$sw"
  ip -n "$gw" link set lo up; ip -n "$sw" link set lo up
  ip link add trunk netns "$sw" type veth peer name eth1 netns "$gw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set trunk master br0
  # Tags must travel in the frame, as on a real wire.
  ip netns exec "$sw" ethtool -K trunk txvlan off >/dev/null
  ip -n "$sw" link set trunk up; ip -n "$sw" link set br0 up
  ip -n "$gw" link set eth1 address 02:fe:00:00:00:01
  ip -n "$gw" link set eth1 up
  local i=0
  for spec in "${instances[@]}"; do
    i=$((i + 1))
    IFS=: read -r name vlan cidr mac1 mac2 mac3 mac4 mac5 mac6 gateway <<<"$spec"
    local mac="$mac1:$mac2:$mac3:$mac4:$mac5:$mac6" ns="$prefix-$name" acc="a$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add eth0 netns "$ns" type veth peer name "$acc" netns "$sw"
    ip -n "$ns" link set eth0 address "$mac"
    # A wire carries complete checksums: without this, veth leaves TCP/UDP
    # checksums partial (offload) and frames forwarded byte for byte
    # through AF_XDP arrive with bad checksums.
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
    ip -n "$ns" addr add "$cidr" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$gateway"
    ip -n "$sw" link set "$acc" master br0
    ip -n "$sw" link set "$acc" up
    local obj; obj=$(tagger "$vlan")
    ip netns exec "$sw" tc qdisc add dev "$acc" clsact
    ip netns exec "$sw" tc filter add dev "$acc" ingress bpf direct-action obj "$obj" sec classifier/push
    ip netns exec "$sw" tc filter add dev "$acc" egress bpf direct-action obj "$obj" sec classifier/pop
    log "instance $name: $cidr $mac on VLAN $vlan (namespace $ns)"
  done
  if [ -n "$public" ]; then
    IFS=, read -r gw_addr pub_addr routes <<<"$public"
    local pub="$prefix-pub"
    ip netns add "$pub"
    ip -n "$pub" link set lo up
    ip link add eth0 netns "$gw" type veth peer name eth0 netns "$pub"
    ip -n "$gw" addr add "$gw_addr" dev eth0
    ip -n "$pub" addr add "$pub_addr" dev eth0
    ip netns exec "$pub" ethtool -K eth0 tx off >/dev/null
    ip netns exec "$gw" ethtool -K eth0 tx off >/dev/null
    ip -n "$gw" link set eth0 up
    ip -n "$pub" link set eth0 up
    for route in ${routes//,/ }; do
      ip -n "$pub" route add "$route" via "${gw_addr%/*}"
    done
    log "public host ${pub_addr} (namespace $pub), fabric ${gw_addr} on the gateway node's eth0"
  fi
  log "gateway node namespace $gw, trunk port eth1; switch $sw"
}

case $cmd in
  up) up ;;
  down) down ;;
  exec) name=$1; shift; exec ip netns exec "$prefix-$name" "$@" ;;
  *) usage ;;
esac
