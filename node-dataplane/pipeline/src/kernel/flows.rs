//! The XDP tier's flow stage: the entries of `tier_flows` (`tier.h`,
//! `struct flow_key` -> `struct flow_entry`), built from the pipeline's
//! flow table (`crate::flow`), whose [`FlowKey`] and [`FlowValue`] are
//! the very bytes of the C structs.
//!
//! ```text
//!  Pipeline decides a first packet ──> FlowTable::insert ──journal──┐
//!  TCP state moves (timeout)       ──> FlowTable::touch  ──journal──┤
//!  flow expires / goes stale       ──> FlowTable::remove ──journal──┤
//!                                                                   v
//!  agent, after each batch: FlowTable::drain_mirror ──> entry() ──> tier_flows (put / delete)
//!  agent sweep: FlowTable::expire_with(last_seen from tier_flows)
//!  kernel: hit ──> rewrite, forward, last_seen / packets / bytes updated
//! ```
//!
//! A kernel entry is the pipeline's value followed by what the kernel
//! cannot look up itself: the flow's idle timeout now (the kernel hands
//! off a frame of a flow idle past it, as the pipeline decides it again),
//! the slot of the VRF a return enters (`Unsnat`; checked against the
//! VRF's id and generation, so a reused slot is never trusted), and, for
//! `Snat`, the MAC of the fabric next hop toward the destination (a runtime
//! cell of the tables, as it was when the entry was written; none: the
//! frames are handed off).
//!
//! Security groups (issue 18) use the same map: their keys carry the
//! VMI's zone in `vrf` (zones and VRF ids are disjoint ranges, as in the
//! userspace table), their value the `Forward` action and the rules'
//! generation, compared with the VMI's in `tier_vmis` (`zone`,
//! `generation`). Only allowed flows are written: a denied flow's packets
//! are the pipeline's to drop and count (the kernel misses, hands off).
//! Network policies' connections (zones with `LINK_ZONE_BIT`) are written
//! alike: the kernel passes a frame routed into another network of this
//! node (a route of kind `NH_LINK`, whose value carries the link's zone
//! and generation) by them, and, as for a policed flow, writes only their
//! last-seen (at most once a second), which the idle sweep reads.

use core::time::Duration;

use super::slots::Slots;
use crate::flow::{EntryId, FlowAction, FlowKey, FlowTable, FlowValue};
use crate::tables::Tables;

/// `tier_flows`.
pub const FLOWS_MAP: &str = "tier_flows";
/// The size of `struct flow_key`.
pub const FLOW_KEY_SIZE: usize = 44;
/// The size of `struct flow_entry`.
pub const FLOW_ENTRY_SIZE: usize = 80;

const _: () = {
    assert!(core::mem::size_of::<FlowKey>() == FLOW_KEY_SIZE);
    assert!(core::mem::size_of::<FlowValue>() == 56);
};

/// The bytes of `struct flow_key`.
pub fn key_bytes(key: &FlowKey) -> [u8; FLOW_KEY_SIZE] {
    let mut out = [0u8; FLOW_KEY_SIZE];
    out[0..4].copy_from_slice(&key.vrf.to_ne_bytes());
    out[4] = key.family;
    out[5] = key.proto;
    out[8..24].copy_from_slice(&key.src);
    out[24..40].copy_from_slice(&key.dst);
    out[40..42].copy_from_slice(&key.sport.to_ne_bytes());
    out[42..44].copy_from_slice(&key.dport.to_ne_bytes());
    out
}

/// The bytes of `struct flow_value`.
fn value_bytes(value: &FlowValue, out: &mut [u8]) {
    out[0] = value.action;
    out[1] = value.tcp;
    out[4..8].copy_from_slice(&value.generation.to_ne_bytes());
    out[8..12].copy_from_slice(&value.nat_vrf.to_ne_bytes());
    out[12..28].copy_from_slice(&value.nat_addr);
    out[28..30].copy_from_slice(&value.nat_port.to_ne_bytes());
    out[32..40].copy_from_slice(&value.last_seen_ns.to_ne_bytes());
    out[40..48].copy_from_slice(&value.packets.to_ne_bytes());
    out[48..56].copy_from_slice(&value.bytes.to_ne_bytes());
}

/// Where `last_seen_ns` lies in a `struct flow_entry`.
pub const LAST_SEEN_AT: usize = 32;

/// The last-seen time (ns, CLOCK_MONOTONIC) of a `struct flow_entry`.
pub fn last_seen(entry: &[u8]) -> Option<u64> {
    entry
        .get(LAST_SEEN_AT..LAST_SEEN_AT + 8)
        .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

/// A `struct flow_entry`: the pipeline's `value`, the flow's idle
/// timeout, the VRF slot a return enters and the fabric next hop's MAC.
pub fn entry_bytes(
    value: &FlowValue,
    idle: Duration,
    vrf_slot: u32,
    next_hop: Option<[u8; 6]>,
) -> [u8; FLOW_ENTRY_SIZE] {
    let mut out = [0u8; FLOW_ENTRY_SIZE];
    value_bytes(value, &mut out[..56]);
    out[56..64].copy_from_slice(&(idle.as_nanos().min(u128::from(u64::MAX)) as u64).to_ne_bytes());
    out[64..68].copy_from_slice(&vrf_slot.to_ne_bytes());
    out[68..74].copy_from_slice(&next_hop.unwrap_or_default());
    out
}

/// The kernel entry of a flow table entry with these tables and slots
/// (the ones the tables' image was built with): `None` when the kernel
/// has no use for it (a denied flow, a VRF without a slot), which leaves
/// its frames to userspace. IPv4 and IPv6 alike: the key holds either
/// address, the kernel translates both.
pub fn entry(
    tables: &Tables,
    slots: &Slots,
    key: &FlowKey,
    value: &FlowValue,
    idle: Duration,
) -> Option<[u8; FLOW_ENTRY_SIZE]> {
    match value.action()? {
        FlowAction::Snat => {
            let mac = tables.fabric_next_hop_mac(key.dst_addr());
            Some(entry_bytes(value, idle, 0, mac))
        }
        FlowAction::Unsnat => {
            let network = tables.vrf_network_of_id(value.nat_vrf)?;
            let slot = slots.vrfs.get(network);
            Some(entry_bytes(value, idle, slot, None))
        }
        // A policed VMI's allowed flow (either entry): nothing to
        // translate, no runtime cell.
        FlowAction::Forward => Some(entry_bytes(value, idle, 0, None)),
        FlowAction::Deny => None,
    }
}

/// The kernel entry of entry `id` of `table` (see [`entry`]).
pub fn entry_of(
    tables: &Tables,
    slots: &Slots,
    table: &FlowTable,
    id: EntryId,
) -> Option<[u8; FLOW_ENTRY_SIZE]> {
    entry(
        tables,
        slots,
        table.key(id),
        table.value(id),
        table.idle_timeout(id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The C header, compiled by the host's C compiler, reports the sizes
    /// and offsets of the flow structs: they are the Rust ones.
    #[test]
    fn the_flow_structs_have_the_layout_of_the_c_header() {
        let dir = std::env::temp_dir().join(format!("tl-flow-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let header = concat!(env!("CARGO_MANIFEST_DIR"), "/../xdp/bpf/tier.h");
        let src = dir.join("layout.c");
        std::fs::write(
            &src,
            format!(
                r#"#include <stdio.h>
#include <stddef.h>
#include "{header}"
#define P(s, f) printf(#s "." #f " %zu\n", offsetof(struct s, f))
int main(void) {{
    printf("flow_key %zu\nflow_value %zu\nflow_entry %zu\n", sizeof(struct flow_key),
           sizeof(struct flow_value), sizeof(struct flow_entry));
    P(flow_key, vrf); P(flow_key, family); P(flow_key, proto); P(flow_key, src);
    P(flow_key, dst); P(flow_key, sport); P(flow_key, dport);
    P(flow_value, action); P(flow_value, tcp); P(flow_value, generation);
    P(flow_value, nat_vrf); P(flow_value, nat_addr); P(flow_value, nat_port);
    P(flow_value, last_seen_ns); P(flow_value, packets); P(flow_value, bytes);
    P(flow_entry, idle_ns); P(flow_entry, vrf_slot); P(flow_entry, next_hop);
    printf("vrf %zu\n", sizeof(struct vrf));
    printf("vmi %zu\n", sizeof(struct vmi));
    printf("route %zu\n", sizeof(struct route));
    P(route, kind); P(route, id); P(route, zone); P(route, generation);
    return 0;
}}
"#
            ),
        )
        .unwrap();
        let bin = dir.join("layout");
        let arch = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
        let cc = std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args([arch.as_str(), "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("a C compiler (cc) runs");
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        let out = std::process::Command::new(&bin).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8(out.stdout).unwrap();
        let c: std::collections::BTreeMap<&str, usize> = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        use core::mem::{offset_of, size_of};
        let rust = [
            ("flow_key", size_of::<FlowKey>()),
            ("flow_value", size_of::<FlowValue>()),
            ("flow_entry", FLOW_ENTRY_SIZE),
            ("flow_key.vrf", offset_of!(FlowKey, vrf)),
            ("flow_key.family", offset_of!(FlowKey, family)),
            ("flow_key.proto", offset_of!(FlowKey, proto)),
            ("flow_key.src", offset_of!(FlowKey, src)),
            ("flow_key.dst", offset_of!(FlowKey, dst)),
            ("flow_key.sport", offset_of!(FlowKey, sport)),
            ("flow_key.dport", offset_of!(FlowKey, dport)),
            ("flow_value.action", offset_of!(FlowValue, action)),
            ("flow_value.tcp", offset_of!(FlowValue, tcp)),
            ("flow_value.generation", offset_of!(FlowValue, generation)),
            ("flow_value.nat_vrf", offset_of!(FlowValue, nat_vrf)),
            ("flow_value.nat_addr", offset_of!(FlowValue, nat_addr)),
            ("flow_value.nat_port", offset_of!(FlowValue, nat_port)),
            (
                "flow_value.last_seen_ns",
                offset_of!(FlowValue, last_seen_ns),
            ),
            ("flow_value.packets", offset_of!(FlowValue, packets)),
            ("flow_value.bytes", offset_of!(FlowValue, bytes)),
            ("flow_entry.idle_ns", 56),
            ("flow_entry.vrf_slot", 64),
            ("flow_entry.next_hop", 68),
            ("vrf", super::super::layout::TierMap::Vrfs.sizes().1),
            ("vmi", super::super::layout::TierMap::Vmis.sizes().1),
            ("route", super::super::layout::TierMap::Routes4.sizes().1),
            ("route", super::super::layout::TierMap::Routes6.sizes().1),
            ("route.kind", 0),
            ("route.id", 4),
            ("route.zone", 8),
            ("route.generation", 12),
        ];
        for (name, want) in rust {
            assert_eq!(
                c.get(name),
                Some(&want),
                "{name}: C {:?}, Rust {want}",
                c.get(name)
            );
        }
        assert_eq!(LAST_SEEN_AT, offset_of!(FlowValue, last_seen_ns));
    }

    /// The encoders write the fields where the structs hold them: the
    /// bytes of a key are the bytes of the `repr(C)` struct.
    #[test]
    fn the_encoders_write_the_struct_bytes() {
        let key = FlowKey::new(4100, 6, ip("10.1.0.5"), ip("198.51.100.7"), 40000, 443);
        let bytes = key_bytes(&key);
        assert_eq!(&bytes[0..4], &4100u32.to_ne_bytes());
        assert_eq!((bytes[4], bytes[5]), (4, 6));
        assert_eq!(&bytes[8..12], &[10, 1, 0, 5]);
        assert_eq!(&bytes[24..28], &[198, 51, 100, 7]);
        assert_eq!(&bytes[40..44], &[0x9c, 0x40, 0x01, 0xbb]);
        let mut value = FlowValue::new(FlowAction::Snat, 0, ip("10.0.0.1"), 61007, 0xdead_beef, 7);
        value.packets = 3;
        let entry = entry_bytes(
            &value,
            Duration::from_secs(300),
            9,
            Some([2, 0, 0, 0, 0, 1]),
        );
        assert_eq!(entry[0], FlowAction::Snat as u8);
        assert_eq!(&entry[4..8], &0xdead_beefu32.to_ne_bytes());
        assert_eq!(&entry[12..16], &[10, 0, 0, 1]);
        assert_eq!(&entry[28..30], &61007u16.to_be_bytes());
        assert_eq!(last_seen(&entry), Some(7));
        assert_eq!(&entry[40..48], &3u64.to_ne_bytes());
        assert_eq!(&entry[56..64], &300_000_000_000u64.to_ne_bytes());
        assert_eq!(&entry[64..68], &9u32.to_ne_bytes());
        assert_eq!(&entry[68..74], &[2, 0, 0, 0, 0, 1]);
        // IPv6: the whole 16 bytes of each address.
        let key = FlowKey::new(4100, 17, ip("fd00::a"), ip("2001:db8::7"), 5353, 53);
        let bytes = key_bytes(&key);
        assert_eq!(bytes[4], 6);
        assert_eq!(&bytes[8..24], &ip6_octets("fd00::a"));
        assert_eq!(&bytes[24..40], &ip6_octets("2001:db8::7"));
        let value = FlowValue::new(FlowAction::Snat, 0, ip("2001:db8:100::1"), 61007, 1, 7);
        let entry = entry_bytes(&value, Duration::from_secs(300), 0, None);
        assert_eq!(&entry[12..28], &ip6_octets("2001:db8:100::1"));
    }

    fn ip6_octets(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }
}
