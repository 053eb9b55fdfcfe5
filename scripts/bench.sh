#!/usr/bin/env bash
# The forwarding benchmark with its baselines, measured in the same run on
# this machine (see tests/bench, crate trunkline-bench):
#   (a) the trunkline node dataplane (AF_XDP only) against a real control
#   plane, (b) a bare AF_XDP forwarder, (c) Linux IP forwarding, (d) Open
#   vSwitch userspace datapath with AF_XDP ports, (h) the node dataplane with
#   its XDP tier (the default backend), (i) a bare XDP_REDIRECT forwarder
#   (the kernel's ceiling); across two nodes joined by a fabric link: (e)
#   the trunkline overlay over VXLAN (two agents), (f) Linux routing +
#   kernel VXLAN, (g) the trunkline overlay over MPLSoUDP, (j) and (k) the
#   same as (e) and (g) with the XDP tier; to the fabric, (l) the node
#   dataplane's SNAT (default configuration) and (m) Linux's netfilter
#   masquerade, each with 64 established flows and with a new flow per
#   frame; (o) (h) while an observation runs; (p) (h) with both VMIs policed
#   by a SecurityGroup of 100 rules; 64- and 512-byte frames, 3 interleaved
#   rounds of 5 s; then 4096 LIs + 4096 VMIs through the control plane, with
#   route propagation: the VMIs' VPNv4 routes from the BGP speaker
#   (trunkline-bgp + gobgpd) until FRR's bgpd holds them all; then the XDP
#   tier's cost of an armed observation measured by the kernel
#   (BPF_PROG_RUN, a few seconds), with the forwarding-level bound derived
#   from it and (h), and of security groups' established flows (make
#   bench-tier-policy). Writes
#   target/bench/report.md, forwarding.tsv (the figures, for the step
#   after) and forwarding.png.
#
#   scripts/bench.sh [trunkline-bench run flags...]   e.g. --smoke, --rounds 5
#   scripts/bench.sh ha [trunkline-bench ha flags...]  the gateway HA benchmark
#     (make bench-ha): loss windows during failures, modes Fast and STP and a
#     keepalived VRRP baseline; writes target/bench/ha.md (about 20 minutes)
#
# Needs root (namespaces, XDP), the Debian packages of scripts/install-deps.sh
# (clang, libbpf-dev, openvswitch-switch, fonts-dejavu-core; iptables and
# python3 for (m)) and the Kubernetes binaries it builds. Takes about 14 minutes; the machine should be
# otherwise idle for figures worth comparing. Everything it starts (namespaces
# tb<pid>-*, processes, BPF programs) is removed on exit, also on failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { printf '[bench.sh] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "run as root (network namespaces, XDP)"; exit 1; }
what=run
if [ "${1:-}" = ha ]; then what=ha; shift; fi
tools="clang ovs-vswitchd ovsdb-server setpriv taskset ethtool tc iptables python3 vtysh"
[ "$what" = ha ] && tools="clang setpriv ethtool tc keepalived"
for tool in $tools; do
  command -v "$tool" >/dev/null || { log "$tool missing: run scripts/install-deps.sh"; exit 1; }
done

target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
log "building release binaries"
cargo build --release --locked -q -p trunkline-bench -p trunkline-dataplane -p trunkline-operator -p trunkline-bgp

prefix="tb$(( $$ % 1000000 ))"
cleanup() {
  # The benchmark removes its namespaces itself; this catches a crash.
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${prefix}r?-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

if [ "$what" = ha ]; then
  if [ -n "${MAKELEVEL:-}" ]; then shown="make bench-ha${*:+ BENCH_FLAGS='$*'}"; else shown="scripts/bench.sh ha${*:+ $*}"; fi
  "$target/release/trunkline-bench" ha --bin-dir "$target/release" \
    --out "$repo/target/bench" --command "$shown" "$@"
  exit
fi
if [ -n "${MAKELEVEL:-}" ]; then shown="make bench${*:+ BENCH_FLAGS='$*'}"; else shown="scripts/bench.sh${*:+ $*}"; fi
# gobgpd for the route-propagation figure (built once, cached by version).
gobgpd=$(scripts/build-gobgp.sh | sed -n 's/^GOBGPD=//p')
"$target/release/trunkline-bench" run --prefix "$prefix" --bin-dir "$target/release" \
  --gobgpd "$gobgpd" --out "$repo/target/bench" --command "$shown" "$@"

# The XDP tier's own cost of an armed observation, measured by the kernel
# (BPF_PROG_RUN; benches/tier_observe.rs of trunkline-pipeline): appended to
# the report, with the forwarding-level bound it derives from that cost and
# mode (h)'s time per frame in this run (forwarding.tsv). The smoke run
# keeps it to a few seconds.
tier_flags=(--forwarding "$repo/target/bench/forwarding.tsv")
for arg in "$@"; do [ "$arg" = --smoke ] && tier_flags+=(--smoke); done
log "XDP tier: the cost of an armed observation (BPF_PROG_RUN)"
cargo bench --locked -q -p trunkline-pipeline --bench tier_observe -- "${tier_flags[@]}" \
  --out "$repo/target/bench/tier-observe.md" >/dev/null
{ echo; cat "$repo/target/bench/tier-observe.md"; } >> "$repo/target/bench/report.md"
log "XDP tier: security groups' established flows (BPF_PROG_RUN)"
policy_flags=()
for arg in "$@"; do [ "$arg" = --smoke ] && policy_flags+=(--smoke); done
cargo bench --locked -q -p trunkline-pipeline --bench tier_policy -- "${policy_flags[@]}" \
  --out "$repo/target/bench/tier-policy.md" >/dev/null
{ echo; cat "$repo/target/bench/tier-policy.md"; } >> "$repo/target/bench/report.md"
log "wrote $repo/target/bench/report.md (with the XDP tier's observe and security-group costs)"
