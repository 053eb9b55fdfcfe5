#!/usr/bin/env bash
# The network-namespace lab from a shell: runs the `trunkline-lab` binary
# (tests/lab; built by cargo on first use, a no-op afterwards). The lab
# itself is described in docs/test-rig.md; `scripts/lab.sh --help` lists
# every command, `scripts/lab.sh up --help` the options.
#
#   scripts/lab.sh up   --prefix P [--spec FILE.yaml] [--fabric-mtu N]
#       --node     name=gw,underlay=10.1.1.1/24[,underlay=fd00:f::1/64],trunk=eth1[,trunk=eth2]
#       --instance name=bms1,node=gw,port=eth1,vlan=100,ip=192.168.1.10/24,ip=fd00:1::10/64,
#                  mac=02:00:00:00:01:01,gw=192.168.1.1,gw6=fd00:1::1   (no ip=: no address, no route)
#       --host     name=pub,ip=10.1.1.253/24,route=192.168.1.0/24@10.1.1.1
#       --vtep     name=vtep1,local=10.1.1.100/24,vni=5001,remote=10.1.1.1,ip=192.168.1.50/24
#   scripts/lab.sh down --prefix P
#   scripts/lab.sh exec --prefix P NAME CMD...      (NAME: node, instance, host, VTEP, fab, <node>-<port>)
#   scripts/lab.sh add-node|add-port|add-instance|remove-instance|add-host|add-vtep --prefix P ...
#   scripts/lab.sh show --prefix P                   (the spec as JSON, the namespaces)
#   scripts/lab.sh capture --prefix P NAME IFACE FILTER --count N --field vxlan.vni ...
#
# Every namespace carries the prefix (<P>-<name>); `down` removes exactly
# the namespaces of that prefix. Nothing of the lab is wired to the host's
# own namespace, so its traffic never leaves it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
exec cargo run -q --locked --manifest-path "$repo/Cargo.toml" -p trunkline-lab --bin trunkline-lab -- "$@"
