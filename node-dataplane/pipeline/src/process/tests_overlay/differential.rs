//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program.

use super::*;

/// Every `#[test]` of `tests_overlay.rs`.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "routes_to_a_remote_vmi_with_its_label_over_mpls_over_udp",
        routes_to_a_remote_vmi_with_its_label_over_mpls_over_udp,
    ),
    ("routes_ipv6_to_a_remote_vmi", routes_ipv6_to_a_remote_vmi),
    (
        "routes_to_an_endpoint_behind_a_vxlan_vtep_with_the_vni",
        routes_to_an_endpoint_behind_a_vxlan_vtep_with_the_vni,
    ),
    (
        "bridges_to_a_remote_mac_with_the_network_label",
        bridges_to_a_remote_mac_with_the_network_label,
    ),
    (
        "decapsulates_a_routed_label_to_its_vmi",
        decapsulates_a_routed_label_to_its_vmi,
    ),
    (
        "decapsulates_vxlan_into_the_network_and_bridges_or_routes",
        decapsulates_vxlan_into_the_network_and_bridges_or_routes,
    ),
    (
        "answers_a_remote_hosts_arp_for_the_gateway_through_the_tunnel",
        answers_a_remote_hosts_arp_for_the_gateway_through_the_tunnel,
    ),
    (
        "floods_a_broadcast_to_every_logical_interface_and_every_peer_but_the_source",
        floods_a_broadcast_to_every_logical_interface_and_every_peer_but_the_source,
    ),
    (
        "a_flood_from_a_tunnel_goes_to_local_members_only",
        a_flood_from_a_tunnel_goes_to_local_members_only,
    ),
    (
        "unknown_unicast_floods_only_where_the_network_asks_for_it",
        unknown_unicast_floods_only_where_the_network_asks_for_it,
    ),
    (
        "a_packet_too_big_for_the_tunnel_gets_fragmentation_needed_with_the_mtu",
        a_packet_too_big_for_the_tunnel_gets_fragmentation_needed_with_the_mtu,
    ),
    (
        "an_ipv6_packet_too_big_for_the_tunnel_gets_packet_too_big",
        an_ipv6_packet_too_big_for_the_tunnel_gets_packet_too_big,
    ),
    (
        "an_ipv6_underlay_computes_the_udp_checksum_and_decapsulates",
        an_ipv6_underlay_computes_the_udp_checksum_and_decapsulates,
    ),
    (
        "the_hosts_own_traffic_on_the_fabric_passes",
        the_hosts_own_traffic_on_the_fabric_passes,
    ),
    (
        "a_resolved_next_hop_survives_a_recompile",
        a_resolved_next_hop_survives_a_recompile,
    ),
];

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(include_str!("../tests_overlay.rs"), TESTS, &[]);
}
