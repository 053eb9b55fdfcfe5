//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program, with the kernel's flow
//! map holding what the agent's mirror would: every flow table entry
//! before the frame. A frame that changed the flow table (a first packet,
//! a TCP state move, a stale or expired flow decided again) must be handed
//! off; a frame of an established flow (class `EstablishedSnat`) must be
//! translated in the kernel alike; the others (ICMP errors, IP fabric
//! forwarding, a DC gateway's routes, its MPLS over UDP and VXLAN) are
//! compared as usual.

use super::*;

/// Every `#[test]` of `tests_north_south.rs` that processes frames.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "snat_translates_tcp_out_and_its_replies_back",
        snat_translates_tcp_out_and_its_replies_back,
    ),
    (
        "two_instances_with_the_same_source_port_get_different_ports",
        two_instances_with_the_same_source_port_get_different_ports,
    ),
    (
        "udp_and_icmp_echo_are_translated_both_ways",
        udp_and_icmp_echo_are_translated_both_ways,
    ),
    (
        "established_flows_carry_data_both_ways_with_every_checksum_right",
        established_flows_carry_data_both_ways_with_every_checksum_right,
    ),
    (
        "odd_frames_of_established_flows_are_decided_by_their_rules",
        odd_frames_of_established_flows_are_decided_by_their_rules,
    ),
    (
        "an_icmp_error_about_a_flow_is_translated_back_to_the_instance",
        an_icmp_error_about_a_flow_is_translated_back_to_the_instance,
    ),
    (
        "exhausted_ports_and_a_full_table_are_named_drops",
        exhausted_ports_and_a_full_table_are_named_drops,
    ),
    (
        "idle_flows_time_out_and_unsolicited_packets_are_dropped",
        idle_flows_time_out_and_unsolicited_packets_are_dropped,
    ),
    (
        "a_changed_port_range_makes_existing_flows_stale",
        a_changed_port_range_makes_existing_flows_stale,
    ),
    (
        "leaving_the_overlay_needs_an_unknown_next_hop_resolved_and_a_flow_table",
        leaving_the_overlay_needs_an_unknown_next_hop_resolved_and_a_flow_table,
    ),
    (
        "ip_fabric_forwarding_sends_as_is_and_routes_the_return_to_the_vmi",
        ip_fabric_forwarding_sends_as_is_and_routes_the_return_to_the_vmi,
    ),
    (
        "a_networks_routed_label_from_its_dc_gateway_is_routed_in_its_vrf",
        a_networks_routed_label_from_its_dc_gateway_is_routed_in_its_vrf,
    ),
    (
        "a_dc_gateway_gets_mpls_over_udp_with_its_label_and_sends_to_vmi_labels",
        a_dc_gateway_gets_mpls_over_udp_with_its_label_and_sends_to_vmi_labels,
    ),
    (
        "a_dc_gateways_vxlan_with_the_networks_vni_is_routed_in_its_vrf",
        a_dc_gateways_vxlan_with_the_networks_vni_is_routed_in_its_vrf,
    ),
    (
        "every_north_south_drop_reason_has_a_frame",
        every_north_south_drop_reason_has_a_frame,
    ),
    (
        "ipv6_over_an_ipv6_underlay_is_translated_both_ways",
        ipv6_over_an_ipv6_underlay_is_translated_both_ways,
    ),
];

/// The north-south tables (SNAT, IP fabric forwarding, a DC gateway), for
/// the random frames.
pub(crate) fn configs() -> Vec<NodeConfig> {
    vec![config((61000, 65535)), config_v6((61000, 65535))]
}

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(
        include_str!("../tests_north_south.rs"),
        TESTS,
        &["compilation_refuses_what_cannot_leave_and_dumps_the_rest"],
    );
}
