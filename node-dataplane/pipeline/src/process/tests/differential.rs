//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program.

use super::*;

/// Every `#[test]` of `tests.rs` but the property tests (the differential
/// test draws its own random frames) and those that process no frame.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "routes_ipv4_from_vlan_100_to_vlan_200",
        routes_ipv4_from_vlan_100_to_vlan_200,
    ),
    ("routes_ipv6_between_vlans", routes_ipv6_between_vlans),
    (
        "untags_toward_vlan_0_and_tags_back",
        untags_toward_vlan_0_and_tags_back,
    ),
    ("arp_proxy_reply_bytes", arp_proxy_reply_bytes),
    (
        "a_vmi_flooding_questions_is_limited_and_the_others_are_not",
        a_vmi_flooding_questions_is_limited_and_the_others_are_not,
    ),
    (
        "arp_proxy_for_routed_targets_and_unicast_requests",
        arp_proxy_for_routed_targets_and_unicast_requests,
    ),
    (
        "neighbor_advertisement_for_the_gateway",
        neighbor_advertisement_for_the_gateway,
    ),
    (
        "neighbor_advertisement_for_a_routed_target_and_for_dad",
        neighbor_advertisement_for_a_routed_target_and_for_dad,
    ),
    ("echo_replies", echo_replies),
    (
        "bridges_to_another_vmi_of_the_network",
        bridges_to_another_vmi_of_the_network,
    ),
    ("port_security", port_security),
    (
        "deleted_logical_interface_stops_traffic",
        deleted_logical_interface_stops_traffic,
    ),
    (
        "ha_vmi_leaves_by_its_oldest_logical_interface",
        ha_vmi_leaves_by_its_oldest_logical_interface,
    ),
    ("host_port_routes_in_its_vrf", host_port_routes_in_its_vrf),
    (
        "fabric_port_passes_to_the_host",
        fabric_port_passes_to_the_host,
    ),
    ("batch_shape", batch_shape),
    (
        "every_drop_reason_has_a_frame",
        every_drop_reason_has_a_frame,
    ),
];

/// Tests that process no frame.
pub(crate) const WITHOUT_FRAMES: &[&str] = &["tables_are_send_and_sync"];

/// The valid frames the property tests mutate, for the random frames of the
/// differential test.
pub(crate) fn frames_to_mutate() -> Vec<(PortId, Vec<u8>)> {
    valid_frames()
}

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(include_str!("../tests.rs"), TESTS, WITHOUT_FRAMES);
}
