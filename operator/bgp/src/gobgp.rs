//! Translation between the domain ([`crate::vpn`]) and GoBGP's gRPC API
//! (`apipb`, generated from the vendored `proto/`): VPN routes to `Path`s
//! and back, peers to `Peer`s. GoBGP packs NLRIs, attributes and
//! communities in `google.protobuf.Any`; [`pack`] and [`unpack`] name them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use prost::Message;
use prost_types::Any;
use trunkline_model::IpPrefix;

use crate::vpn::{
    AdminValue, LearnedRoute, RouteDistinguisher, RouteTarget, VpnRoute, tunnel_type,
};

/// The generated GoBGP API.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod apipb {
    tonic::include_proto!("apipb");
}

/// The extended-community sub-type of a route target.
const ROUTE_TARGET_SUBTYPE: u32 = 0x02;

/// `msg` as an `Any` of GoBGP type `name`.
pub fn pack<M: Message>(name: &str, msg: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/apipb.{name}"),
        value: msg.encode_to_vec(),
    }
}

/// The message in `any` when it is of GoBGP type `name`.
pub fn unpack<M: Message + Default>(any: &Any, name: &str) -> Option<M> {
    let type_name = any.type_url.rsplit('/').next()?;
    if type_name != format!("apipb.{name}") {
        return None;
    }
    M::decode(any.value.as_slice()).ok()
}

/// The family of VPN routes of `prefix`'s IP version.
pub fn vpn_family(ipv6: bool) -> apipb::Family {
    apipb::Family {
        afi: if ipv6 {
            apipb::family::Afi::Ip6 as i32
        } else {
            apipb::family::Afi::Ip as i32
        },
        safi: apipb::family::Safi::MplsVpn as i32,
    }
}

fn rd_any(rd: RouteDistinguisher) -> Any {
    match rd.0 {
        AdminValue::As2 { asn, number } => pack(
            "RouteDistinguisherTwoOctetASN",
            &apipb::RouteDistinguisherTwoOctetAsn {
                admin: u32::from(asn),
                assigned: number,
            },
        ),
        AdminValue::Ipv4 { address, number } => pack(
            "RouteDistinguisherIPAddress",
            &apipb::RouteDistinguisherIpAddress {
                admin: address.to_string(),
                assigned: u32::from(number),
            },
        ),
        AdminValue::As4 { asn, number } => pack(
            "RouteDistinguisherFourOctetASN",
            &apipb::RouteDistinguisherFourOctetAsn {
                admin: asn,
                assigned: u32::from(number),
            },
        ),
    }
}

fn rd_from_any(any: &Any) -> Option<RouteDistinguisher> {
    if let Some(rd) =
        unpack::<apipb::RouteDistinguisherTwoOctetAsn>(any, "RouteDistinguisherTwoOctetASN")
    {
        return Some(RouteDistinguisher(AdminValue::As2 {
            asn: u16::try_from(rd.admin).ok()?,
            number: rd.assigned,
        }));
    }
    if let Some(rd) =
        unpack::<apipb::RouteDistinguisherIpAddress>(any, "RouteDistinguisherIPAddress")
    {
        return Some(RouteDistinguisher(AdminValue::Ipv4 {
            address: rd.admin.parse().ok()?,
            number: u16::try_from(rd.assigned).ok()?,
        }));
    }
    let rd =
        unpack::<apipb::RouteDistinguisherFourOctetAsn>(any, "RouteDistinguisherFourOctetASN")?;
    Some(RouteDistinguisher(AdminValue::As4 {
        asn: rd.admin,
        number: u16::try_from(rd.assigned).ok()?,
    }))
}

fn route_target_any(target: RouteTarget) -> Any {
    match target.0 {
        AdminValue::As2 { asn, number } => pack(
            "TwoOctetAsSpecificExtended",
            &apipb::TwoOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: ROUTE_TARGET_SUBTYPE,
                asn: u32::from(asn),
                local_admin: number,
            },
        ),
        AdminValue::Ipv4 { address, number } => pack(
            "IPv4AddressSpecificExtended",
            &apipb::IPv4AddressSpecificExtended {
                is_transitive: true,
                sub_type: ROUTE_TARGET_SUBTYPE,
                address: address.to_string(),
                local_admin: u32::from(number),
            },
        ),
        AdminValue::As4 { asn, number } => pack(
            "FourOctetAsSpecificExtended",
            &apipb::FourOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: ROUTE_TARGET_SUBTYPE,
                asn,
                local_admin: u32::from(number),
            },
        ),
    }
}

fn route_target_from_any(any: &Any) -> Option<RouteTarget> {
    if let Some(c) = unpack::<apipb::TwoOctetAsSpecificExtended>(any, "TwoOctetAsSpecificExtended")
    {
        return (c.sub_type == ROUTE_TARGET_SUBTYPE).then_some(RouteTarget(AdminValue::As2 {
            asn: u16::try_from(c.asn).ok()?,
            number: c.local_admin,
        }));
    }
    if let Some(c) =
        unpack::<apipb::IPv4AddressSpecificExtended>(any, "IPv4AddressSpecificExtended")
    {
        return (c.sub_type == ROUTE_TARGET_SUBTYPE).then_some(RouteTarget(AdminValue::Ipv4 {
            address: c.address.parse().ok()?,
            number: u16::try_from(c.local_admin).ok()?,
        }));
    }
    let c = unpack::<apipb::FourOctetAsSpecificExtended>(any, "FourOctetAsSpecificExtended")?;
    (c.sub_type == ROUTE_TARGET_SUBTYPE).then_some(RouteTarget(AdminValue::As4 {
        asn: c.asn,
        number: u16::try_from(c.local_admin).ok()?,
    }))
}

fn nlri(route_rd: RouteDistinguisher, prefix: IpPrefix, label: u32) -> Any {
    pack(
        "LabeledVPNIPAddressPrefix",
        &apipb::LabeledVpnipAddressPrefix {
            labels: vec![label],
            rd: Some(rd_any(route_rd)),
            prefix_len: u32::from(prefix.prefix_len()),
            prefix: prefix.network().to_string(),
        },
    )
}

/// The GoBGP path advertising `route`: the labelled VPN prefix, origin
/// IGP, the node as next hop (GoBGP keeps a locally originated next hop
/// toward eBGP peers), the route targets and the encapsulation community.
pub fn path(route: &VpnRoute) -> apipb::Path {
    let family = vpn_family(!route.prefix.is_ipv4());
    let nlri = nlri(route.rd, route.prefix, route.label);
    let mut communities: Vec<Any> = route
        .route_targets
        .iter()
        .map(|t| route_target_any(*t))
        .collect();
    communities.push(pack(
        "EncapExtended",
        &apipb::EncapExtended {
            tunnel_type: tunnel_type(route.encapsulation),
        },
    ));
    apipb::Path {
        nlri: Some(nlri.clone()),
        pattrs: vec![
            pack("OriginAttribute", &apipb::OriginAttribute { origin: 0 }),
            pack(
                "MpReachNLRIAttribute",
                &apipb::MpReachNlriAttribute {
                    family: Some(family),
                    next_hops: vec![route.next_hop.to_string()],
                    nlris: vec![nlri],
                },
            ),
            pack(
                "ExtendedCommunitiesAttribute",
                &apipb::ExtendedCommunitiesAttribute { communities },
            ),
        ],
        family: Some(family),
        ..Default::default()
    }
}

/// The route a path from a peer carries; `None` for a withdrawal, a path
/// of ours, or anything that is not a labelled VPN route.
pub fn learned(path: &apipb::Path) -> Option<LearnedRoute> {
    if path.is_withdraw
        || path.neighbor_ip.is_empty()
        || !path.is_from_external && path.source_asn == 0
    {
        return None;
    }
    let prefix = unpack::<apipb::LabeledVpnipAddressPrefix>(
        path.nlri.as_ref()?,
        "LabeledVPNIPAddressPrefix",
    )?;
    let address: IpAddr = prefix.prefix.parse().ok()?;
    let prefix_len = u8::try_from(prefix.prefix_len).ok()?;
    let mut next_hop = None;
    let mut route_targets = BTreeSet::new();
    for attr in &path.pattrs {
        if let Some(reach) = unpack::<apipb::MpReachNlriAttribute>(attr, "MpReachNLRIAttribute") {
            next_hop = reach.next_hops.first().and_then(|h| h.parse().ok());
        } else if let Some(hop) = unpack::<apipb::NextHopAttribute>(attr, "NextHopAttribute") {
            next_hop = hop.next_hop.parse().ok();
        } else if let Some(ext) =
            unpack::<apipb::ExtendedCommunitiesAttribute>(attr, "ExtendedCommunitiesAttribute")
        {
            route_targets.extend(ext.communities.iter().filter_map(route_target_from_any));
        }
    }
    Some(LearnedRoute {
        rd: rd_from_any(prefix.rd.as_ref()?)?,
        prefix: IpPrefix::new(address, prefix_len).ok()?,
        label: *prefix.labels.first()?,
        // A VPNv6 route over an IPv4 network names its next hop as an
        // IPv4-mapped IPv6 address (RFC 4659, 3.2.1.2): the tunnel's far
        // end is the IPv4 address.
        next_hop: next_hop.map(|h: IpAddr| h.to_canonical())?,
        route_targets,
    })
}

/// The peers' session configuration as GoBGP takes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerConfig {
    /// The peer's address.
    pub address: IpAddr,
    /// Its AS number.
    pub peer_asn: u32,
    /// Ours toward it.
    pub local_asn: u32,
    /// VPNv4, VPNv6.
    pub ipv4_vpn: bool,
    /// VPNv6.
    pub ipv6_vpn: bool,
    /// Hold time, keepalive, connect retry (seconds).
    pub timers: (u32, u32, u32),
    /// TCP MD5 password (empty: none).
    pub password: String,
}

/// Graceful restart (RFC 4724) as we advertise it to every peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// How long a peer keeps our routes (stale) after our session drops.
    pub restart_time: u32,
    /// This gobgpd was just (re)started: the Restart State and Forwarding
    /// State bits are set, so that peers keep our stale routes until we
    /// send them again (and our End-of-RIB).
    pub restarting: bool,
}

/// How long a (re)started gobgpd waits for its peers' End-of-RIB before
/// sending its routes anyway.
const DEFERRAL_SECONDS: u32 = 30;

/// `config` as a GoBGP `Peer`, with graceful restart when `gr` is set.
pub fn peer(config: &PeerConfig, gr: Option<GracefulRestart>) -> apipb::Peer {
    let mut families = Vec::new();
    if config.ipv4_vpn {
        families.push(vpn_family(false));
    }
    if config.ipv6_vpn {
        families.push(vpn_family(true));
    }
    apipb::Peer {
        conf: Some(apipb::PeerConf {
            neighbor_address: config.address.to_string(),
            peer_asn: config.peer_asn,
            local_asn: config.local_asn,
            auth_password: config.password.clone(),
            description: "trunkline BGPPeer".into(),
            ..Default::default()
        }),
        timers: Some(apipb::Timers {
            config: Some(apipb::TimersConfig {
                hold_time: u64::from(config.timers.0),
                keepalive_interval: u64::from(config.timers.1),
                connect_retry: u64::from(config.timers.2),
                ..Default::default()
            }),
            state: None,
        }),
        graceful_restart: gr.map(|gr| apipb::GracefulRestart {
            enabled: true,
            restart_time: gr.restart_time,
            deferral_time: DEFERRAL_SECONDS,
            local_restarting: gr.restarting,
            ..Default::default()
        }),
        afi_safis: families
            .into_iter()
            .map(|family| apipb::AfiSafi {
                config: Some(apipb::AfiSafiConfig {
                    family: Some(family),
                    enabled: true,
                }),
                mp_graceful_restart: gr.map(|_| apipb::MpGracefulRestart {
                    config: Some(apipb::MpGracefulRestartConfig { enabled: true }),
                    state: None,
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_model::Encapsulation;

    #[test]
    fn a_route_survives_the_round_trip_through_a_path() {
        let route = VpnRoute {
            rd: "10.3.0.100:7".parse().expect("rd"),
            prefix: "10.0.0.5/32".parse().expect("prefix"),
            label: 17,
            next_hop: "10.3.0.1".parse().expect("ip"),
            route_targets: [
                "target:64512:100".parse().expect("rt"),
                "target:4200000000:1".parse().expect("rt"),
            ]
            .into(),
            encapsulation: Encapsulation::MplsOverUdp,
        };
        let mut path = path(&route);
        path.neighbor_ip = "10.3.0.200".into();
        path.is_from_external = true;
        let back = learned(&path).expect("a learned route");
        assert_eq!(back.rd, route.rd);
        assert_eq!(back.prefix, route.prefix);
        assert_eq!(back.label, 17);
        assert_eq!(back.next_hop, route.next_hop);
        assert_eq!(
            back.route_targets, route.route_targets,
            "the encapsulation community is not a target"
        );
    }

    #[test]
    fn graceful_restart_reaches_the_peer_and_each_family() {
        let config = PeerConfig {
            address: "10.3.0.200".parse().expect("ip"),
            peer_asn: 65001,
            local_asn: 64512,
            ipv4_vpn: true,
            ipv6_vpn: true,
            timers: (90, 30, 5),
            password: String::new(),
        };
        let off = peer(&config, None);
        assert!(off.graceful_restart.is_none());
        assert!(
            off.afi_safis
                .iter()
                .all(|a| a.mp_graceful_restart.is_none())
        );
        let on = peer(
            &config,
            Some(GracefulRestart {
                restart_time: 60,
                restarting: true,
            }),
        );
        let gr = on.graceful_restart.expect("graceful restart");
        assert!(gr.enabled && gr.local_restarting);
        assert_eq!(gr.restart_time, 60);
        assert_eq!(on.afi_safis.len(), 2);
        assert!(on.afi_safis.iter().all(|a| {
            a.mp_graceful_restart
                .as_ref()
                .and_then(|m| m.config.as_ref())
                .is_some_and(|c| c.enabled)
        }));
    }

    #[test]
    fn a_vpnv6_route_over_ipv4_is_learned_with_its_ipv4_next_hop() {
        let route = VpnRoute {
            rd: "65001:1".parse().expect("rd"),
            prefix: "2001:db8:ff::/48".parse().expect("prefix"),
            label: 1001,
            next_hop: "::ffff:10.3.0.200".parse().expect("ip"),
            route_targets: ["target:64512:200".parse().expect("rt")].into(),
            encapsulation: Encapsulation::MplsOverUdp,
        };
        let mut path = path(&route);
        assert_eq!(path.family, Some(vpn_family(true)));
        path.neighbor_ip = "10.3.0.200".into();
        path.is_from_external = true;
        let back = learned(&path).expect("a learned route");
        assert_eq!(back.prefix, route.prefix);
        assert_eq!(
            back.next_hop,
            "10.3.0.200".parse::<IpAddr>().expect("ip"),
            "the IPv4-mapped next hop is the IPv4 tunnel end"
        );
    }
}
