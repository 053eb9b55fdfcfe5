//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program. A frame routed into
//! another network of this node (`NH_LINK`) that crossed by the link's
//! established entries alone must be decided in the kernel
//! (`EstablishedLinked`), and so must one routed to a connected VMI on
//! another node by established entries alone (`NH_LINK_REMOTE`,
//! `EstablishedLinkedRemote`); first packets, denied flows, stale and
//! idle entries, and tunnel packets into a linked network (`VRF_LINKED`)
//! must be handed off, never decided differently.

use super::*;

/// Every `#[test]` of `tests_network_policy.rs` that processes frames.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "connected_networks_talk_on_the_allowed_port_only",
        connected_networks_talk_on_the_allowed_port_only,
    ),
    (
        "without_links_the_networks_stay_separate",
        without_links_the_networks_stay_separate,
    ),
    (
        "one_way_rules_let_replies_back_but_not_new_flows",
        one_way_rules_let_replies_back_but_not_new_flows,
    ),
    (
        "rules_decide_in_order_and_pass_defers_to_the_next_policy",
        rules_decide_in_order_and_pass_defers_to_the_next_policy,
    ),
    (
        "a_policy_change_decides_existing_flows_again_and_removal_separates",
        a_policy_change_decides_existing_flows_again_and_removal_separates,
    ),
    (
        "every_network_policy_drop_reason_has_a_frame",
        every_network_policy_drop_reason_has_a_frame,
    ),
    (
        "established_connections_cross_by_their_flows_alone",
        established_connections_cross_by_their_flows_alone,
    ),
    (
        "a_policed_vmi_behind_a_link_is_decided_in_its_own_zone_too",
        a_policed_vmi_behind_a_link_is_decided_in_its_own_zone_too,
    ),
];

/// Every `#[test]` of `tests_network_policy/across.rs`.
pub(crate) use super::across::ACROSS;

/// The tables with two connected networks, for the random frames.
pub(crate) fn configs() -> Vec<NodeConfig> {
    vec![
        connected(),
        across::across(Encapsulation::MplsOverUdp, ssh(), Vec::new()),
    ]
}

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(
        include_str!("../tests_network_policy.rs"),
        TESTS,
        &["a_networks_own_address_is_never_overridden_by_a_leaked_route"],
    );
}
