//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program, with the flow map the
//! agent's mirror would hold: a frame of an established flow (passed by
//! the flow table's entries alone) must be decided in the kernel
//! (`EstablishedPoliced`), any other frame from or to a policed VMI
//! decided alike or handed off.

use super::*;

/// Every `#[test]` of `tests_policy.rs` that processes frames.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "an_allowed_first_packet_opens_the_flow_and_its_replies_pass",
        an_allowed_first_packet_opens_the_flow_and_its_replies_pass,
    ),
    (
        "egress_flows_let_their_replies_in_and_unsolicited_packets_stay_out",
        egress_flows_let_their_replies_in_and_unsolicited_packets_stay_out,
    ),
    (
        "icmp_echo_and_errors_about_an_allowed_flow_pass",
        icmp_echo_and_errors_about_an_allowed_flow_pass,
    ),
    (
        "a_rule_change_decides_existing_flows_again",
        a_rule_change_decides_existing_flows_again,
    ),
    (
        "idle_flows_expire_and_a_full_table_is_a_counted_drop",
        idle_flows_expire_and_a_full_table_is_a_counted_drop,
    ),
    (
        "two_policed_vmis_of_the_node_decide_each_in_its_own_zone",
        two_policed_vmis_of_the_node_decide_each_in_its_own_zone,
    ),
    (
        "a_routed_label_from_a_peer_is_decided_by_the_ingress_rules",
        a_routed_label_from_a_peer_is_decided_by_the_ingress_rules,
    ),
    (
        "every_policy_drop_reason_has_a_frame",
        every_policy_drop_reason_has_a_frame,
    ),
    (
        "established_flows_between_policed_vmis_pass",
        established_flows_between_policed_vmis_pass,
    ),
];

/// The tables with a policed VMI, for the random frames.
pub(crate) fn configs() -> Vec<NodeConfig> {
    vec![config(web((80, 80)))]
}

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(include_str!("../tests_policy.rs"), TESTS, &[]);
}
