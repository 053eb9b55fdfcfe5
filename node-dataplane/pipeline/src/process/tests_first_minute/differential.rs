//! This file's tests as a list, so that the XDP tier's differential test
//! (`crate::kernel::differential`) runs every one of them and replays the
//! frames they process through the kernel program.

use super::*;

/// Every `#[test]` of `tests_first_minute.rs`.
pub(crate) const TESTS: &[(&str, fn())] = &[
    (
        "a_discover_from_an_instance_without_an_address_gets_its_vmis_address",
        a_discover_from_an_instance_without_an_address_gets_its_vmis_address,
    ),
    (
        "requests_are_acked_for_the_vmis_address_and_naked_for_another",
        requests_are_acked_for_the_vmis_address_and_naked_for_another,
    ),
    (
        "the_network_mtu_is_announced_and_the_lease_is_the_networks",
        the_network_mtu_is_announced_and_the_lease_is_the_networks,
    ),
    (
        "without_a_server_a_discover_is_bridged_and_nothing_else_passes_from_nowhere",
        without_a_server_a_discover_is_bridged_and_nothing_else_passes_from_nowhere,
    ),
    (
        "a_vmi_without_an_ipv4_address_gets_no_offer_and_a_foreign_chaddr_is_ignored",
        a_vmi_without_an_ipv4_address_gets_no_offer_and_a_foreign_chaddr_is_ignored,
    ),
    (
        "dhcpv6_solicit_and_request_get_the_vmis_ipv6_address",
        dhcpv6_solicit_and_request_get_the_vmis_ipv6_address,
    ),
    (
        "a_router_solicitation_gets_an_advertisement_sending_hosts_to_dhcpv6",
        a_router_solicitation_gets_an_advertisement_sending_hosts_to_dhcpv6,
    ),
    (
        "the_gateway_link_local_address_is_answered_by_the_neighbour_proxy",
        the_gateway_link_local_address_is_answered_by_the_neighbour_proxy,
    ),
    (
        "an_expiring_ttl_gets_time_exceeded_from_the_senders_gateway",
        an_expiring_ttl_gets_time_exceeded_from_the_senders_gateway,
    ),
    (
        "icmp_errors_spend_the_workers_budget_and_the_clock_refills_it",
        icmp_errors_spend_the_workers_budget_and_the_clock_refills_it,
    ),
    (
        "no_error_answers_an_error_or_a_source_outside_the_subnets",
        no_error_answers_an_error_or_a_source_outside_the_subnets,
    ),
    (
        "a_packet_larger_than_the_egress_port_mtu_gets_fragmentation_needed",
        a_packet_larger_than_the_egress_port_mtu_gets_fragmentation_needed,
    ),
    (
        "an_allowed_address_pair_is_routed_to_whoever_last_sent_from_it",
        an_allowed_address_pair_is_routed_to_whoever_last_sent_from_it,
    ),
    (
        "a_relay_network_sends_requests_to_its_server_and_replies_back_to_the_client",
        a_relay_network_sends_requests_to_its_server_and_replies_back_to_the_client,
    ),
];

/// The tables the differential test's random frames also run against: the
/// first minute's (a DHCP server, an IPv6-only VMI, a moving address pair)
/// with the network's and a port's MTU, and the same with a DHCP relay.
pub(crate) fn configs() -> Vec<NodeConfig> {
    let mut server = config();
    server.networks[0].mtu = Some(1300);
    server.ports[1].mtu = Some(1400);
    let mut relay = config();
    relay.networks[0].dhcp.mode = DhcpMode::Relay(Ipv4Addr::new(10, 0, 1, 20));
    vec![server, relay]
}

#[test]
fn the_differential_test_runs_every_test_of_this_file() {
    crate::kernel::differential::check_list(include_str!("../tests_first_minute.rs"), TESTS, &[]);
}
