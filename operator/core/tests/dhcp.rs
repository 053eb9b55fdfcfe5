//! DHCP settings of a network: whatever the mode (the gateway serves, stays
//! out, or relays), the network is accepted.

mod common;

use common::*;
use trunkline_model::{Dhcp, DhcpMode, Snapshot};
use trunkline_operator_core::decide;

fn with_dhcp(mode: DhcpMode) -> Snapshot {
    let mut network = vn("t1", "net1", 1, &["10.0.0.0/24"], None);
    network.dhcp = Dhcp {
        mode,
        ..Dhcp::default()
    };
    Snapshot {
        virtual_networks: vec![network.into()],
        virtual_machine_interfaces: vec![
            vmi("t1", "vmi1", 2, "net1", "02:00:00:00:00:01", &["10.0.0.10"]).into(),
        ],
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
fn a_dhcp_relay_is_accepted() {
    let d = decide(&with_dhcp(DhcpMode::Relay("10.9.0.5".parse().unwrap())));
    assert!(accepted(&d, &vn_key("t1", "net1")).status);
    assert!(accepted(&d, &vmi_key("t1", "vmi1")).status);
}
