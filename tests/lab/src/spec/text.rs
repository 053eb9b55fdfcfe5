//! The command line's one-argument form of each part: `key=value` pairs
//! separated by commas, keys repeated for lists. Addresses contain `:` but
//! never `,` or `=`, so IPv6 reads as well as IPv4.
//!
//! ```text
//! --node     name=gw1,underlay=10.0.0.1/24,underlay=fd00:f::1/64,trunk=eth1,trunk=eth2[,mac=M]
//! --instance name=bms1,node=gw1,port=eth1,vlan=100,ip=192.168.1.10/24,ip=fd00:1::10/64,
//!            mac=02:00:00:00:01:01,gw=192.168.1.1,gw6=fd00:1::1[,mtu=N]
//! --host     name=pub,ip=10.0.0.253/24,route=192.168.1.0/24@10.0.0.1[,mac=M]
//! --vtep     name=vtep1,local=10.0.0.100/24,vni=5001,remote=10.0.0.1,ip=192.168.1.50/24
//!            [,fdb=02:00:00:00:01:01@10.0.0.1][,mac=M]
//! --dc-gateway name=dcgw,local=10.0.0.254/24[,outside=203.0.113.1/24]
//!            [,host=ext,host-ip=203.0.113.10/24]
//! ```
//! An instance without `ip` has no address and no route (a DHCP client).

use std::net::IpAddr;
use std::str::FromStr;

use super::{
    DcGatewaySpec, FabricHostSpec, FdbEntry, InstanceSpec, NodeSpec, Route, SpecError, TrunkSpec,
    VtepSpec,
};

/// The pairs of `text`, checking every key against `keys`.
fn pairs<'a>(text: &'a str, keys: &[&str]) -> Result<Vec<(&'a str, &'a str)>, SpecError> {
    let syntax = |reason: String| SpecError::Syntax {
        text: text.to_owned(),
        reason,
    };
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| syntax(format!("{pair:?} is not key=value")))?;
            if keys.contains(&k) {
                Ok((k, v))
            } else {
                Err(syntax(format!(
                    "unknown key {k:?}; keys: {}",
                    keys.join(", ")
                )))
            }
        })
        .collect()
}

fn one<'a>(text: &str, pairs: &[(&str, &'a str)], key: &str) -> Result<&'a str, SpecError> {
    let mut found = pairs.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v);
    match (found.next(), found.next()) {
        (Some(v), None) => Ok(v),
        (None, _) => Err(SpecError::Syntax {
            text: text.to_owned(),
            reason: format!("{key}= is required"),
        }),
        (Some(_), Some(_)) => Err(SpecError::Syntax {
            text: text.to_owned(),
            reason: format!("{key}= given twice"),
        }),
    }
}

fn optional<'a>(
    text: &str,
    pairs: &[(&str, &'a str)],
    key: &str,
) -> Result<Option<&'a str>, SpecError> {
    if pairs.iter().any(|(k, _)| *k == key) {
        one(text, pairs, key).map(Some)
    } else {
        Ok(None)
    }
}

fn all<'a>(pairs: &'a [(&str, &'a str)], key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pairs
        .iter()
        .filter(move |(k, _)| *k == key)
        .map(|(_, v)| *v)
}

fn ip(field: &'static str, text: &str) -> Result<IpAddr, SpecError> {
    text.parse().map_err(|_| SpecError::Value {
        field,
        value: text.to_owned(),
        reason: "not an IPv4 or IPv6 address",
    })
}

fn number<T: FromStr>(field: &'static str, text: &str) -> Result<T, SpecError> {
    text.parse().map_err(|_| SpecError::Value {
        field,
        value: text.to_owned(),
        reason: "not a number in range",
    })
}

/// `A@B`.
fn at(field: &'static str, text: &str) -> Result<(String, String), SpecError> {
    text.split_once('@')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| SpecError::Value {
            field,
            value: text.to_owned(),
            reason: "write it as X@Y, e.g. route=192.168.1.0/24@10.0.0.1",
        })
}

impl FromStr for NodeSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let p = pairs(text, &["name", "underlay", "trunk", "mac"])?;
        Ok(Self {
            name: one(text, &p, "name")?.to_owned(),
            underlay: all(&p, "underlay")
                .map(str::parse)
                .collect::<Result<_, _>>()?,
            mac: optional(text, &p, "mac")?.map(str::parse).transpose()?,
            trunks: all(&p, "trunk").map(TrunkSpec::new).collect(),
        })
    }
}

impl FromStr for InstanceSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let p = pairs(
            text,
            &[
                "name", "node", "port", "vlan", "ip", "gw", "gw6", "mac", "mtu",
            ],
        )?;
        let mut gateways = Vec::new();
        for g in all(&p, "gw") {
            gateways.push(ip("gateway", g)?);
        }
        for g in all(&p, "gw6") {
            let g = ip("gateway", g)?;
            if !g.is_ipv6() {
                return Err(SpecError::Value {
                    field: "gw6",
                    value: g.to_string(),
                    reason: "gw6= takes an IPv6 address (gw= takes either)",
                });
            }
            gateways.push(g);
        }
        Ok(Self {
            name: one(text, &p, "name")?.to_owned(),
            node: one(text, &p, "node")?.to_owned(),
            port: one(text, &p, "port")?.to_owned(),
            vlan: optional(text, &p, "vlan")?
                .map(|v| number("vlan", v))
                .transpose()?
                .unwrap_or(0),
            addresses: all(&p, "ip").map(str::parse).collect::<Result<_, _>>()?,
            gateways,
            mac: optional(text, &p, "mac")?.map(str::parse).transpose()?,
            mtu: optional(text, &p, "mtu")?
                .map(|v| number("mtu", v))
                .transpose()?,
        })
    }
}

impl FromStr for FabricHostSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let p = pairs(text, &["name", "ip", "route", "mac"])?;
        let mut routes = Vec::new();
        for r in all(&p, "route") {
            let (to, via) = at("route", r)?;
            routes.push(Route {
                to: to.parse()?,
                via: ip("route next hop", &via)?,
            });
        }
        Ok(Self {
            name: one(text, &p, "name")?.to_owned(),
            addresses: all(&p, "ip").map(str::parse).collect::<Result<_, _>>()?,
            routes,
            mac: optional(text, &p, "mac")?.map(str::parse).transpose()?,
        })
    }
}

impl FromStr for VtepSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let p = pairs(
            text,
            &["name", "local", "vni", "remote", "fdb", "ip", "mac"],
        )?;
        let mut fdb = Vec::new();
        for e in all(&p, "fdb") {
            let (mac, dst) = at("fdb", e)?;
            fdb.push(FdbEntry {
                mac: mac.parse()?,
                dst: ip("fdb destination", &dst)?,
            });
        }
        Ok(Self {
            name: one(text, &p, "name")?.to_owned(),
            local: one(text, &p, "local")?.parse()?,
            vni: number("vni", one(text, &p, "vni")?)?,
            remotes: all(&p, "remote")
                .map(|r| ip("remote", r))
                .collect::<Result<_, _>>()?,
            fdb,
            addresses: all(&p, "ip").map(str::parse).collect::<Result<_, _>>()?,
            mac: optional(text, &p, "mac")?.map(str::parse).transpose()?,
        })
    }
}

impl FromStr for DcGatewaySpec {
    type Err = SpecError;

    /// Defaults as [`DcGatewaySpec::new`]: `eth1` 203.0.113.1/24, host
    /// `<name>h` 203.0.113.10/24; no routes (a running lab gets them one at
    /// a time).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let p = pairs(text, &["name", "local", "outside", "host", "host-ip"])?;
        let name = one(text, &p, "name")?;
        let mut gateway = DcGatewaySpec {
            local: one(text, &p, "local")?.parse()?,
            ..DcGatewaySpec::new(name, "0.0.0.0/32")
        };
        if let Some(outside) = optional(text, &p, "outside")? {
            gateway.outside = outside.parse()?;
        }
        if let Some(host) = optional(text, &p, "host")? {
            gateway.host = host.to_owned();
        }
        if let Some(address) = optional(text, &p, "host-ip")? {
            gateway.host_address = address.parse()?;
        }
        Ok(gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_with_both_families_reads() {
        let i: InstanceSpec = "name=bms1,node=gw1,port=eth1,vlan=100,ip=192.168.1.10/24,ip=fd00:1::10/64,mac=02:00:00:00:01:01,gw=192.168.1.1,gw6=fd00:1::1"
            .parse()
            .unwrap();
        assert_eq!(
            i,
            InstanceSpec::new("bms1", "gw1", "eth1")
                .vlan(100)
                .ip("192.168.1.10/24")
                .ip("fd00:1::10/64")
                .mac("02:00:00:00:01:01")
                .gateway("192.168.1.1")
                .gateway("fd00:1::1")
        );
    }

    #[test]
    fn an_instance_without_addresses_reads() {
        let i: InstanceSpec = "name=dhcp1,node=gw1,port=eth1".parse().unwrap();
        assert!(i.addresses.is_empty() && i.gateways.is_empty());
        assert_eq!(i.vlan, 0);
    }

    #[test]
    fn nodes_hosts_and_vteps_read() {
        let n: NodeSpec =
            "name=gw1,underlay=10.0.0.1/24,underlay=fd00:f::1/64,trunk=eth1,trunk=eth2"
                .parse()
                .unwrap();
        assert_eq!(
            n,
            NodeSpec::new("gw1")
                .underlay("10.0.0.1/24")
                .underlay("fd00:f::1/64")
                .trunk("eth1")
                .trunk("eth2")
        );
        let h: FabricHostSpec =
            "name=pub,ip=10.0.0.253/24,route=192.168.1.0/24@10.0.0.1,route=fd00:1::/64@fd00:f::1"
                .parse()
                .unwrap();
        assert_eq!(h.routes.len(), 2);
        assert_eq!(h.routes[1].via.to_string(), "fd00:f::1");
        let v: VtepSpec = "name=vtep1,local=10.0.0.100/24,vni=5001,remote=10.0.0.1,fdb=02:00:00:00:01:01@10.0.0.1,ip=192.168.1.50/24"
            .parse()
            .unwrap();
        assert_eq!(
            v,
            VtepSpec::new("vtep1", "10.0.0.100/24", 5001)
                .remote("10.0.0.1")
                .fdb("02:00:00:00:01:01", "10.0.0.1")
                .ip("192.168.1.50/24")
        );
    }

    #[test]
    fn a_dc_gateway_reads_with_its_defaults() {
        let g: DcGatewaySpec = "name=dcgw,local=10.1.1.254/24,host=ext".parse().unwrap();
        assert_eq!(
            g,
            DcGatewaySpec::new("dcgw", "10.1.1.254/24").host("ext", "203.0.113.10/24")
        );
        let g: DcGatewaySpec =
            "name=dcgw,local=10.1.1.254/24,outside=198.18.0.1/24,host-ip=198.18.0.2/24"
                .parse()
                .unwrap();
        assert_eq!(g.host, "dcgwh");
        assert_eq!(g.outside.to_string(), "198.18.0.1/24");
        assert_eq!(g.host_address.to_string(), "198.18.0.2/24");
        let err = "name=dcgw".parse::<DcGatewaySpec>().unwrap_err();
        assert!(err.to_string().contains("local= is required"), "{err}");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("name=bms1,node=gw1", "port= is required"),
            (
                "name=bms1,node=gw1,port=eth1,colour=red",
                "unknown key \"colour\"",
            ),
            ("name=bms1,node=gw1,port=eth1,vlan", "is not key=value"),
            ("name=bms1,node=gw1,port=eth1,vlan=x", "vlan"),
            ("name=bms1,node=gw1,port=eth1,gw6=10.0.0.1", "IPv6"),
            ("name=bms1,name=bms2,node=gw1,port=eth1", "given twice"),
            ("name=bms1,node=gw1,port=eth1,ip=10.0.0.1", "prefix length"),
        ] {
            let err = text.parse::<InstanceSpec>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        let err = "name=pub,route=10.0.0.0/8"
            .parse::<FabricHostSpec>()
            .unwrap_err();
        assert!(err.to_string().contains("X@Y"), "{err}");
    }
}
