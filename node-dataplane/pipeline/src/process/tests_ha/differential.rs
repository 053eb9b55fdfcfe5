//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program; and what the
//! differential test needs to flip the HA cells under the same frames.

use super::*;

/// Every `#[test]` of `tests_ha.rs` but the property test.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "a_standby_member_neither_receives_answers_forwards_nor_floods_on_its_member_port",
        a_standby_member_neither_receives_answers_forwards_nor_floods_on_its_member_port,
    ),
    (
        "an_active_member_answers_forwards_and_notes_its_instances_traffic",
        an_active_member_answers_forwards_and_notes_its_instances_traffic,
    ),
    (
        "a_vmi_served_by_a_peer_now_is_sent_through_it_but_never_back_into_a_tunnel",
        a_vmi_served_by_a_peer_now_is_sent_through_it_but_never_back_into_a_tunnel,
    ),
    (
        "a_remote_vmi_follows_its_current_peer",
        a_remote_vmi_follows_its_current_peer,
    ),
    (
        "roles_and_paths_survive_a_rebuild",
        roles_and_paths_survive_a_rebuild,
    ),
    (
        "takeover_announcements_are_gratuitous_arp_and_unsolicited_na_on_every_vlan",
        takeover_announcements_are_gratuitous_arp_and_unsolicited_na_on_every_vlan,
    ),
    (
        "north_south_traffic_to_a_multihomed_vmi_goes_where_it_is_served",
        north_south_traffic_to_a_multihomed_vmi_goes_where_it_is_served,
    ),
];

/// The member port of the HA tables (it gets an interface in the
/// differential test's namespace).
pub(crate) const MEMBER_PORT: PortId = P4;

/// The HA tables, with node-c's underlay next hop resolved, as the tests
/// of this file use them.
pub(crate) fn ha_rig() -> Rig {
    rig()
}

/// Every combination of the HA cells of [`ha_rig`]'s tables: the group's
/// role, vmi-h's path (here or node-b) and vmi-s's (node-b or node-c).
pub(crate) const CELL_SETTINGS: u8 = 8;

/// Sets the HA cells of `tables` (built from [`ha_fixture`]) to
/// combination `n` of [`CELL_SETTINGS`] (taken modulo).
pub(crate) fn set_cells(tables: &Tables, n: u8) {
    let n = n % CELL_SETTINGS;
    let role = if n & 1 == 0 {
        HaRole::Standby
    } else {
        HaRole::Active
    };
    assert!(tables.set_ha_role("g", role));
    let h = if n & 2 == 0 { None } else { Some("node-b") };
    assert!(tables.set_vmi_path("ns/vmi-h", h));
    let s = if n & 4 == 0 { "node-b" } else { "node-c" };
    assert!(tables.set_vmi_path("ns/vmi-s", Some(s)));
}

/// Frames whose fate depends on the HA cells, beyond those of the tests:
/// a BPDU and a gratuitous ARP on the member port, traffic from vmi-h to
/// vmi-k and to the remote vmi-s, IPv6 to vmi-h, a bridged frame to vmi-s,
/// vmi-h's routed label and net4's VXLAN VNI from a peer.
pub(crate) fn frames() -> Vec<(PortId, Vec<u8>)> {
    // 802.1D configuration BPDU, untagged (VLAN 0): LLC 42 42 03.
    let mut bpdu = vec![0x01, 0x80, 0xc2, 0, 0, 0];
    bpdu.extend_from_slice(&[2, 0, 0, 0, 0, 0x99]);
    bpdu.extend_from_slice(&[0, 38, 0x42, 0x42, 0x03]);
    bpdu.extend_from_slice(&[0; 35]);
    bpdu.resize(60, 0);
    let inner = &udp4(GW, MAC_H, None, [10, 0, 0, 60], [10, 4, 0, 10], 64)[14..];
    let mut vxlan = vec![0x08, 0, 0, 0];
    vxlan.extend_from_slice(&(NET4_VNI << 8).to_be_bytes());
    vxlan.extend_from_slice(&udp4(
        MAC_S,
        MAC_H,
        None,
        [10, 4, 0, 30],
        [10, 4, 0, 10],
        64,
    ));
    // The BPDU again, flooded to this node through the overlay.
    let mut bpdu_vxlan = vxlan[..8].to_vec();
    bpdu_vxlan.extend_from_slice(&bpdu);
    vec![
        (P4, bpdu),
        (
            P4,
            arp_request(MAC_H, Some(100), [10, 4, 0, 10], [10, 4, 0, 10]),
        ),
        (
            P4,
            udp4(MAC_H, GW, Some(100), [10, 4, 0, 10], [10, 4, 0, 20], 64),
        ),
        (
            P4,
            udp4(MAC_H, GW, Some(100), [10, 4, 0, 10], [10, 4, 0, 30], 64),
        ),
        (
            P4,
            udp4(MAC_H, MAC_K, Some(100), [10, 4, 0, 10], [10, 4, 0, 20], 64),
        ),
        (P1, from_k([10, 4, 0, 10])),
        (P1, from_k([10, 4, 0, 30])),
        (P1, udp6(MAC_K, GW, Some(500), "fd04::20", "fd04::10", 64)),
        (
            P1,
            udp4(MAC_K, MAC_S, Some(500), [10, 4, 0, 20], [10, 4, 0, 30], 64),
        ),
        (
            P1,
            udp4(MAC_K, MAC_H, Some(500), [10, 4, 0, 20], [10, 4, 0, 10], 64),
        ),
        (FABRIC, mpls_from(NODE_B, LABEL_H, inner)),
        (FABRIC, mpls_from(NODE_C, LABEL_H, inner)),
        (
            FABRIC,
            super::super::tests_overlay::from_peer(NODE_B, 4789, &vxlan),
        ),
        (
            FABRIC,
            super::super::tests_overlay::from_peer(NODE_B, 4789, &bpdu_vxlan),
        ),
    ]
}

/// The HA tables, for the random frames (their cells are set per frame).
pub(crate) fn configs() -> Vec<NodeConfig> {
    vec![ha_fixture()]
}

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(
        include_str!("../tests_ha.rs"),
        TESTS,
        &["bad_ha_configuration_is_rejected_item_by_item"],
    );
}
