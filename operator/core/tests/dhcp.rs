//! DHCP settings of a network: the gateway serves or stays out; a relay is
//! refused until trunkline can relay.

mod common;

use common::*;
use trunkline_api::status::reason;
use trunkline_model::{Dhcp, DhcpMode, Snapshot};
use trunkline_operator_core::decide;

fn with_dhcp(mode: DhcpMode) -> Snapshot {
    let mut network = vn("t1", "net1", 1, &["10.0.0.0/24"], None);
    network.dhcp = Dhcp {
        mode,
        ..Dhcp::default()
    };
    Snapshot {
        virtual_networks: vec![network],
        virtual_machine_interfaces: vec![vmi(
            "t1",
            "vmi1",
            2,
            "net1",
            "02:00:00:00:00:01",
            &["10.0.0.10"],
        )],
        ..Snapshot::default()
    }
}

#[test]
fn a_served_or_switched_off_dhcp_is_accepted() {
    for mode in [DhcpMode::Server, DhcpMode::Off] {
        let d = decide(&with_dhcp(mode));
        assert!(accepted(&d, &vn_key("t1", "net1")).status, "{mode:?}");
    }
}

#[test]
fn a_dhcp_relay_is_refused_as_not_implemented_and_says_what_to_do() {
    let d = decide(&with_dhcp(DhcpMode::Relay("10.9.0.5".parse().unwrap())));
    let network = accepted(&d, &vn_key("t1", "net1"));
    assert!(!network.status);
    assert_eq!(network.reason, reason::NOT_IMPLEMENTED);
    assert!(
        network.message.contains("Relay") && network.message.contains("mode Server"),
        "{}",
        network.message
    );
    // Its VMIs wait for it, as for any network not accepted.
    let vmi = accepted(&d, &vmi_key("t1", "vmi1"));
    assert!(!vmi.status);
}
