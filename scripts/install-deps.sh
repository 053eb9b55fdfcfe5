#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on a fresh
# Debian machine (run as root; CI does): Debian packages, the Rust
# components, and the Kubernetes binaries built from source
# (scripts/build-k8s.sh, cached outside the repository).
# Idempotent: on a machine that has everything it only checks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[install-deps] %s\n' "$*" >&2; }

# Debian packages: openssl (rig certificates), jq, iproute2 + iputils-ping +
# netcat (network lab), curl (rig health checks), bc + bsdextrautils (column: demo, make help), clang/llvm/libbpf-dev (BPF C for the XDP program),
# lua5.1 + lua5.4 (Argo CD health-check scripts: Argo CD runs Lua 5.1
# semantics, the tests run them under both), util-linux (setpriv, flock),
# openvswitch-switch + fonts-dejavu-core (make bench: the Open vSwitch baseline, the plot's font),
# tshark + python3-scapy (network lab: decoding captured bytes, and writing
# frames no tool sends, independently of trunkline's own wire code),
# busybox + udhcpc + isc-dhcp-client + ndisc6 (e2e: real DHCPv4/DHCPv6 clients
# and router solicitations in address-less instances), keepalived (e2e: a
# VRRP virtual IP between two instances; make bench-ha: the VRRP baseline),
# traceroute (e2e: time exceeded),
# containerd + runc + containernetworking-plugins + iptables (the local node of
# `scripts/cluster.sh up --node`: the container runtime, pod networking, and
# kube-proxy's Service rules), frr (e2e: FRR's bgpd as the L3VPN DC gateway the
# BGP speaker peers with), protobuf-compiler + libprotobuf-dev (protoc and the
# well-known types: trunkline-bgp generates its GoBGP client at build time).
packages=(openssl curl jq bc bsdextrautils iproute2 ethtool procps iputils-ping netcat-openbsd clang llvm libbpf-dev lua5.1 lua5.4 util-linux ca-certificates openvswitch-switch fonts-dejavu-core tshark python3-scapy busybox udhcpc isc-dhcp-client ndisc6 keepalived traceroute containerd runc containernetworking-plugins iptables frr protobuf-compiler libprotobuf-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root or install them)"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  # wireshark-common asks whether non-root users may capture: no (the lab
  # captures as root), answered here so that the install never prompts.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# scapy's first import on a new machine compiles its modules and took over
# 10 s on a busy one, longer than a capture window of the lab's tests: pay
# it here, once (a broken scapy fails here, loudly).
/usr/bin/python3 -c 'import scapy.all, scapy.contrib.mpls'

command -v cargo >/dev/null || { log "cargo is required (Rust 1.95 via rustup)"; exit 1; }
command -v go >/dev/null || { log "go is required (Go 1.26) to build the Kubernetes binaries"; exit 1; }
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi

# cargo-fuzz (make fuzz, make fuzz-smoke in make test), at the pinned
# version; cargo keeps it in ~/.cargo/bin, so this builds it once (about two
# minutes) and only checks afterwards.
# shellcheck source=versions.env
. "$here/versions.env"
if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

"$here/build-k8s.sh" >/dev/null
"$here/build-gobgp.sh" >/dev/null
log "ok"
