//! A remote instance's first minute, end to end (issue 13): real DHCP
//! clients from Debian get their VMI's addresses (from the gateway, or
//! relayed to busybox udhcpd on an instance), traceroute and path MTU
//! discovery see the gateway's ICMP errors, IPv6 works directly and through
//! a virtual gateway, a keepalived virtual IP moves with VRRP and stays
//! reachable, and instances on a VLAN-0 (untagged) port and behind two
//! trunk ports reach each other. The operator and the node dataplane run
//! as processes with their own ServiceAccounts, the fast path is AF_XDP.
//!
//! ```text
//!   d1 (no address, udhcpc)  VLAN 110 --\                  /-- eth2 (mtu 1400 declared) --- switch
//!   s1 192.168.1.21, fd00:1::21 VLAN 120 -+- switch -- eth1     [gw]                         |
//!   k1 192.168.1.31 (keepalived) VLAN 130/   (taggers)    eth0 10.1.1.1, fd00:f::1   d2 (no address, untagged:
//!                                                           |                           udhcpc, dhclient -6)
//!                                                  pub 10.1.1.253, fd00:f::253        s2 192.168.1.22 VLAN 220
//!                                                                                     k2 192.168.1.32 VLAN 140
//! ```
//! Needs root (namespaces, XDP) and the Debian packages of
//! `scripts/install-deps.sh` (busybox with udhcpc and udhcpd,
//! isc-dhcp-client, keepalived, traceroute, ndisc6); CI runs as root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Gateway, NODE, apply_params};
use kube::api::{Api, Patch};
use serde_json::json;
use trunkline_api::{LogicalInterface, PhysicalRouter};
use trunkline_test_support::lab::TrunkSpec;
use trunkline_test_support::{FabricHostSpec, InstanceSpec, LabSpec, NodeSpec, eventually};

const NET: &str = "net1";
/// The DNS server, domain and PXE settings net1 declares.
const DNS4: &str = "192.0.2.53";
const DNS6: &str = "fd00::53";
const DOMAIN: &str = "lab.example";
const NEXT_SERVER: &str = "192.168.1.5";
const BOOT_FILE: &str = "pxelinux.0";
/// The MTU declared on trunk eth2 (its links are 1500).
const ETH2_MTU: u32 = 1400;
/// The MTU of trunk eth3 and of the instance behind it (not declared on the
/// PhysicalRouter): more than the fast path's buffers hold.
const JUMBO: u32 = 4000;
/// The virtual IP k1 and k2 share.
const VIP: &str = "192.168.1.100";

/// A remote instance of these tests: its lab spec and its VMI.
struct Remote {
    name: &'static str,
    port: &'static str,
    vlan: u16,
    mac: &'static str,
    /// The VMI's addresses (the instance gets them by DHCP when `dhcp`).
    ips: &'static [&'static str],
    dhcp: bool,
    pairs: &'static [&'static str],
}

impl Remote {
    fn spec(&self) -> InstanceSpec {
        let mut spec = InstanceSpec::new(self.name, NODE, self.port)
            .vlan(self.vlan)
            .mac(self.mac);
        if self.port == "eth3" {
            spec = spec.mtu(JUMBO);
        }
        if !self.dhcp {
            for ip in self.ips {
                let len = if ip.contains(':') { 64 } else { 24 };
                spec = spec.ip(&format!("{ip}/{len}"));
            }
            if self.ips.iter().any(|ip| !ip.contains(':')) {
                spec = spec.gateway("192.168.1.1");
            }
            if self.ips.iter().any(|ip| ip.contains(':')) {
                spec = spec.gateway("fd00:1::1");
            }
        }
        spec
    }
}

const D1: Remote = Remote {
    name: "d1",
    port: "eth1",
    vlan: 110,
    mac: "02:00:00:00:11:01",
    ips: &["192.168.1.11", "fd00:1::11"],
    dhcp: true,
    pairs: &[],
};
const D2: Remote = Remote {
    name: "d2",
    port: "eth2",
    vlan: 0,
    mac: "02:00:00:00:12:01",
    ips: &["192.168.1.12", "fd00:1::12"],
    dhcp: true,
    pairs: &[],
};
const S1: Remote = Remote {
    name: "s1",
    port: "eth1",
    vlan: 120,
    mac: "02:00:00:00:21:01",
    ips: &["192.168.1.21", "fd00:1::21"],
    dhcp: false,
    pairs: &[],
};
const S2: Remote = Remote {
    name: "s2",
    port: "eth2",
    vlan: 220,
    mac: "02:00:00:00:22:01",
    ips: &["192.168.1.22", "fd00:1::22"],
    dhcp: false,
    pairs: &[],
};
/// Behind the jumbo trunk, untagged.
const J1: Remote = Remote {
    name: "j1",
    port: "eth3",
    vlan: 0,
    mac: "02:00:00:00:41:01",
    ips: &["192.168.1.41", "fd00:1::41"],
    dhcp: false,
    pairs: &[],
};
const K1: Remote = Remote {
    name: "k1",
    port: "eth1",
    vlan: 130,
    mac: "02:00:00:00:31:01",
    ips: &["192.168.1.31"],
    dhcp: false,
    pairs: &["192.168.1.100/32"],
};
const K2: Remote = Remote {
    name: "k2",
    port: "eth2",
    vlan: 140,
    mac: "02:00:00:00:32:01",
    ips: &["192.168.1.32"],
    dhcp: false,
    pairs: &["192.168.1.100/32"],
};

/// The public host on the fabric, reaching net1 through the node (IPv4 and
/// IPv6), for the virtual gateway.
fn public_host() -> FabricHostSpec {
    FabricHostSpec::new("pub")
        .ip("10.1.1.253/24")
        .ip("fd00:f::253/64")
        .route("192.168.1.0/24", "10.1.1.1")
        .route("fd00:1::/64", "fd00:f::1")
}

/// net1's DHCP settings: the gateway serves, with DNS, domain and PXE.
fn served() -> serde_json::Value {
    json!({"dnsServers": [DNS4, DNS6], "domain": DOMAIN,
           "nextServer": NEXT_SERVER, "bootFile": BOOT_FILE})
}

/// The node with trunks eth1, eth2 and eth3, `remotes` behind them, and
/// the public host; the router, net1 (DHCP served) and the remotes' VMIs
/// and logical interfaces applied and Ready.
async fn start(remotes: &[&Remote]) -> Gateway<'static> {
    start_with(remotes, served()).await
}

/// Like [`start`], with net1's `spec.dhcp` = `dhcp`.
async fn start_with(remotes: &[&Remote], dhcp: serde_json::Value) -> Gateway<'static> {
    let mut spec = LabSpec::new().node(
        NodeSpec::new(NODE)
            .underlay("10.1.1.1/24")
            .underlay("fd00:f::1/64")
            .trunk("eth1")
            .trunk("eth2")
            .trunk_spec(TrunkSpec::new("eth3").mtu(JUMBO)),
    );
    for remote in remotes {
        spec = spec.instance(remote.spec());
    }
    spec = spec.host(public_host());
    let gw = Gateway::start_with_lab(spec, "af-xdp").await;
    let routers: Api<PhysicalRouter> = Api::all(gw.client.clone());
    let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
        "metadata": {"name": gw.node},
        "spec": {"physicalInterfaces": [{"name": "eth1"}, {"name": "eth2", "mtu": ETH2_MTU},
                                        {"name": "eth3"}]}});
    routers
        .patch(&gw.node, &apply_params(), &Patch::Apply(&router))
        .await
        .expect("router");
    gw.apply_namespaced(
        "virtualnetworks",
        NET,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": NET, "namespace": gw.ns.name()},
            "spec": {"subnets": [{"cidr": "192.168.1.0/24", "gateway": "192.168.1.1"},
                                 {"cidr": "fd00:1::/64", "gateway": "fd00:1::1"}],
                     "dhcp": dhcp}}),
    )
    .await;
    let lis: Api<LogicalInterface> = Api::all(gw.client.clone());
    let mut names = Vec::new();
    for remote in remotes {
        let ips: Vec<_> = remote.ips.iter().map(|a| json!({"address": a})).collect();
        let pairs: Vec<_> = remote.pairs.iter().map(|p| json!({"prefix": p})).collect();
        gw.apply_namespaced(
            "virtualmachineinterfaces",
            remote.name,
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                "metadata": {"name": remote.name, "namespace": gw.ns.name()},
                "spec": {"virtualNetwork": NET, "macAddress": remote.mac, "ips": ips,
                         "allowedAddressPairs": pairs}}),
        )
        .await;
        let name = format!("{}-{}-{}", gw.node, remote.port, remote.vlan);
        let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": name},
            "spec": {"physicalRouter": gw.node, "physicalInterface": remote.port, "vlan": remote.vlan,
                     "virtualMachineInterface": {"namespace": gw.ns.name(), "name": remote.name}}});
        lis.patch(&name, &apply_params(), &Patch::Apply(&li))
            .await
            .unwrap_or_else(|e| panic!("LogicalInterface {name}: {e}"));
        names.push(name);
    }
    for name in &names {
        gw.wait_li(name, "True").await;
    }
    gw
}

/// Writes an executable script into the lab's state directory.
fn script(gw: &Gateway<'_>, name: &str, body: &str) -> PathBuf {
    let path = gw.lab.state_dir().join(name);
    std::fs::write(&path, body).expect("write script");
    let out = Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .output()
        .expect("chmod");
    assert!(out.status.success());
    path
}

/// The `key=value` lines of a file written by a DHCP client script.
fn read_env(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        // The client's variables, not the environment it inherited.
        .filter(|(k, _)| !k.chars().any(|c| c.is_ascii_uppercase()))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

fn env_value<'e>(env: &'e [(String, String)], key: &str) -> Option<&'e str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Runs busybox udhcpc in `instance` until it has a lease, with a script
/// that configures the address and default route (and nothing of the
/// machine: no resolv.conf) and records what the server said.
fn udhcpc(gw: &Gateway<'_>, instance: &str) -> Vec<(String, String)> {
    let record = gw.lab.state_dir().join(format!("{instance}.dhcp4"));
    let hook = script(
        gw,
        &format!("{instance}-udhcpc.sh"),
        &format!(
            "#!/bin/sh\n\
             # udhcpc's hook: configure eth0, record the lease.\n\
             case \"$1\" in\n\
               bound|renew)\n\
                 ip -4 addr flush dev \"$interface\"\n\
                 ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"\n\
                 ip route replace default via \"$router\" dev \"$interface\"\n\
                 set > {record}\n\
                 ;;\n\
             esac\n\
             exit 0\n",
            record = record.display()
        ),
    );
    let out = gw.lab.exec(
        instance,
        &[
            "timeout",
            "60",
            "udhcpc",
            "-i",
            "eth0",
            "-f",
            "-q",
            "-n",
            "-t",
            "20",
            "-T",
            "2",
            "-s",
            &hook.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "udhcpc in {instance}: {}\nagent log: {}",
        trunkline_test_support::lab::output_text(&out),
        gw.agent().log().display()
    );
    read_env(&record)
}

/// Runs ISC dhclient -6 in `instance` until it has its IA_NA address, with
/// a script that only adds the address; leaves the client running (it is
/// killed with the lab's namespaces... and explicitly, by pid file).
fn dhclient6(gw: &Gateway<'_>, instance: &str) -> (Vec<(String, String)>, PathBuf) {
    let dir = gw.lab.state_dir();
    let record = dir.join(format!("{instance}.dhcp6"));
    let pid = dir.join(format!("{instance}.dhclient6.pid"));
    let hook = script(
        gw,
        &format!("{instance}-dhclient6.sh"),
        &format!(
            "#!/bin/sh\n\
             # dhclient's hook: add the leased address, record the reply.\n\
             case \"$reason\" in\n\
               BOUND6|RENEW6|REBIND6|REBOOT6)\n\
                 ip -6 addr replace \"$new_ip6_address/$new_ip6_prefixlen\" dev \"$interface\" nodad\n\
                 set > {record}\n\
                 ;;\n\
             esac\n\
             exit 0\n",
            record = record.display()
        ),
    );
    let out = gw.lab.exec(
        instance,
        &[
            "timeout",
            "60",
            "dhclient",
            "-6",
            "-1",
            "-v",
            "-sf",
            &hook.display().to_string(),
            "-lf",
            &dir.join(format!("{instance}.leases6"))
                .display()
                .to_string(),
            "-pf",
            &pid.display().to_string(),
            "eth0",
        ],
    );
    assert!(
        out.status.success(),
        "dhclient -6 in {instance}: {}\nagent log: {}",
        trunkline_test_support::lab::output_text(&out),
        gw.agent().log().display()
    );
    (read_env(&record), pid)
}

/// Stops the daemon whose pid file is `pid`.
fn stop_pid_file(pid: &Path) {
    if let Ok(text) = std::fs::read_to_string(pid) {
        let _ = Command::new("kill").arg(text.trim()).status();
    }
}

/// Asks for a router advertisement (rdisc6) in `instance`: the kernel
/// takes the default router from it. Returns rdisc6's report.
fn solicit_router(gw: &Gateway<'_>, instance: &str) -> String {
    let out = gw
        .lab
        .exec(instance, &["rdisc6", "-1", "-w", "2000", "-r", "5", "eth0"]);
    let text = trunkline_test_support::lab::output_text(&out);
    assert!(out.status.success(), "rdisc6 in {instance}: {text}");
    text
}

async fn pings(gw: &Gateway<'_>, from: &str, to: &str) {
    eventually(
        &format!("{from} pings {to}"),
        Duration::from_secs(30),
        || async {
            let (ok, out) = gw.lab.ping(from, to, 2);
            if ok { Ok(()) } else { Err(out) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nagent log: {}", gw.agent().log().display()));
}

/// Sends `bytes` zero bytes over TCP from `from` to `to:port`, where
/// `server` counts what it receives; returns the count.
fn bulk(gw: &Gateway<'_>, from: &str, server: &str, to: &str, port: u16, bytes: usize) -> usize {
    let family = if to.contains(':') { "-6" } else { "-4" };
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &gw.lab.namespace(server), "sh", "-c"])
        .arg(format!("timeout 30 nc {family} -l -N {port} | wc -c"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("listener");
    for _ in 0..50 {
        let out = gw
            .lab
            .exec(server, &["ss", "-Hltn", &format!("sport = :{port}")]);
        if String::from_utf8_lossy(&out.stdout).contains("LISTEN") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = gw.lab.sh(
        from,
        &format!("head -c {bytes} /dev/zero | timeout 30 nc -N -w 5 {to} {port}"),
    );
    let out = wait_output(&mut listener);
    assert!(
        sent.status.success(),
        "client: {}",
        trunkline_test_support::lab::output_text(&sent)
    );
    out.trim().parse().unwrap_or(0)
}

fn wait_output(child: &mut Child) -> String {
    use std::io::Read;
    let mut out = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        let _ = stdout.read_to_string(&mut out);
    }
    let _ = child.wait();
    out
}

#[tokio::test]
async fn instances_without_addresses_get_their_vmis_by_dhcp_and_talk_v4_and_v6() {
    let gw = start(&[&D1, &D2, &S1]).await;

    // DHCPv4 with busybox udhcpc: d1 behind eth1 (VLAN 110), d2 untagged
    // behind eth2 (a VLAN-0 logical interface on the second trunk port).
    for (remote, ip) in [(&D1, "192.168.1.11"), (&D2, "192.168.1.12")] {
        let lease = udhcpc(&gw, remote.name);
        eprintln!("{} got: {lease:?}", remote.name);
        assert_eq!(env_value(&lease, "ip"), Some(ip), "{lease:?}");
        assert_eq!(env_value(&lease, "router"), Some("192.168.1.1"));
        assert_eq!(env_value(&lease, "serverid"), Some("192.168.1.1"));
        assert_eq!(env_value(&lease, "subnet"), Some("255.255.255.0"));
        assert_eq!(env_value(&lease, "lease"), Some("86400"));
        assert_eq!(env_value(&lease, "dns"), Some(DNS4));
        assert_eq!(env_value(&lease, "domain"), Some(DOMAIN));
        assert_eq!(env_value(&lease, "siaddr"), Some(NEXT_SERVER));
        assert_eq!(env_value(&lease, "boot_file"), Some(BOOT_FILE));
        let routes = gw
            .lab
            .exec(remote.name, &["ip", "-4", "route", "show", "default"]);
        assert!(
            String::from_utf8_lossy(&routes.stdout).contains("via 192.168.1.1"),
            "the default route: {}",
            trunkline_test_support::lab::output_text(&routes)
        );
    }
    pings(&gw, "d1", "192.168.1.21").await;
    pings(&gw, "d2", "192.168.1.21").await;
    // Across the two trunk ports, both ways.
    pings(&gw, "d1", "192.168.1.12").await;
    pings(&gw, "d2", "192.168.1.11").await;
    let received = gw
        .lab
        .tcp("d2", "s1", "192.168.1.21", 7001, "over-dhcp-v4")
        .expect("TCP");
    assert_eq!(received, "over-dhcp-v4");

    // IPv6: the router from a router advertisement (M and O set, the
    // prefix on-link but not autonomous), the address by DHCPv6.
    let ra = solicit_router(&gw, "d2");
    eprintln!("d2's router advertisement:\n{ra}");
    assert!(
        ra.contains("Stateful address conf.") && ra.contains("Yes"),
        "{ra}"
    );
    assert!(ra.contains("fd00:1::/64"), "{ra}");
    assert!(ra.contains("fe80::200:5eff:fe00:100"), "{ra}");
    let addresses = gw.lab.exec(
        "d2",
        &["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"],
    );
    assert!(
        !String::from_utf8_lossy(&addresses.stdout).contains("fd00:1::"),
        "no SLAAC address: {}",
        trunkline_test_support::lab::output_text(&addresses)
    );
    let (lease, pid) = dhclient6(&gw, "d2");
    eprintln!("d2 got: {lease:?}");
    assert_eq!(
        env_value(&lease, "new_ip6_address"),
        Some("fd00:1::12"),
        "{lease:?}"
    );
    assert_eq!(env_value(&lease, "new_dhcp6_name_servers"), Some(DNS6));
    let route = gw.lab.exec("d2", &["ip", "-6", "route", "show", "default"]);
    assert!(
        String::from_utf8_lossy(&route.stdout).contains("fe80::200:5eff:fe00:100"),
        "the default router is the gateway: {}",
        trunkline_test_support::lab::output_text(&route)
    );
    pings(&gw, "d2", "fd00:1::21").await;
    let received = gw
        .lab
        .tcp("d2", "s1", "fd00:1::21", 7002, "over-dhcp-v6")
        .expect("TCP over IPv6");
    assert_eq!(received, "over-dhcp-v6");
    let received = gw
        .lab
        .tcp("s1", "d2", "fd00:1::12", 7003, "back-over-v6")
        .expect("TCP over IPv6, the other way");
    assert_eq!(received, "back-over-v6");
    stop_pid_file(&pid);
    assert_eq!(gw.drops("malformed_dhcp"), 0.0, "{}", gw.agent().metrics());
}

#[tokio::test]
async fn traceroute_sees_the_gateway_and_path_mtu_discovery_crosses_a_smaller_mtu() {
    let gw = start(&[&S1, &S2]).await;
    pings(&gw, "s1", "192.168.1.22").await;
    pings(&gw, "s1", "fd00:1::22").await;

    for (target, gateway) in [("192.168.1.22", "192.168.1.1"), ("fd00:1::22", "fd00:1::1")] {
        let family = if target.contains(':') { "-6" } else { "-4" };
        let out = gw.lab.exec(
            "s1",
            &[
                "traceroute",
                family,
                "-n",
                "-q",
                "1",
                "-w",
                "2",
                "-m",
                "4",
                target,
            ],
        );
        let text = trunkline_test_support::lab::output_text(&out);
        eprintln!("traceroute {target}:\n{text}");
        let hops: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with('1'))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(
            hops,
            [gateway, target],
            "the gateway answers the first hop with time exceeded: {text}"
        );
    }

    // s2's own link is 1500 (it announces a 1460-byte MSS), but the
    // gateway's port toward it is declared 1400: s1's full-size segments
    // get fragmentation-needed / packet-too-big and the transfer completes.
    let before = gw.drops("fragmentation_needed");
    for (to, port) in [("192.168.1.22", 7101), ("fd00:1::22", 7102)] {
        let received = bulk(&gw, "s1", "s2", to, port, 2_000_000);
        assert_eq!(received, 2_000_000, "the transfer to {to} completed");
        let route = gw.lab.exec("s1", &["ip", "route", "get", to]);
        let route = String::from_utf8_lossy(&route.stdout).into_owned();
        assert!(
            route.contains(&format!("mtu {ETH2_MTU}")),
            "s1 learnt the path MTU to {to}: {route}"
        );
    }
    assert_eq!(
        gw.drops("fragmentation_needed"),
        before,
        "every oversized packet had don't-fragment and got its error"
    );
}

/// The echo requests `instance`'s kernel received (`Icmp: InEchos`).
fn in_echos(gw: &Gateway<'_>, instance: &str) -> u64 {
    let out = gw.lab.exec(instance, &["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(names), Some(values)) = (icmp.next(), icmp.next()) else {
        panic!("no Icmp lines in /proc/net/snmp: {text}")
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "InEchos")
        .and_then(|(_, v)| v.parse().ok())
        .expect("InEchos")
}

#[tokio::test]
async fn a_frame_larger_than_the_fast_paths_buffers_is_a_counted_drop_never_truncated() {
    let gw = start(&[&S1, &J1]).await;
    pings(&gw, "j1", "192.168.1.21").await;
    let lost = || gw.drops("rx_kernel_dropped") + gw.drops("frame_too_large");
    let before = lost();
    let echoes_at_s1 = || in_echos(&gw, "s1");
    let echoes_before = echoes_at_s1();
    // 3000 bytes of ICMP in one frame: the links carry it, the fast
    // path's buffers do not.
    let out = gw.lab.exec(
        "j1",
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "3000",
            "192.168.1.21",
        ],
    );
    assert!(
        !out.status.success(),
        "a jumbo frame got through: {}",
        trunkline_test_support::lab::output_text(&out)
    );
    eventually(
        "the jumbo frames are counted",
        Duration::from_secs(10),
        || async {
            if lost() >= before + 3.0 {
                Ok(())
            } else {
                Err(format!(
                    "{} -> {}\n{}",
                    before,
                    lost(),
                    gw.agent().metrics()
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        echoes_at_s1(),
        echoes_before,
        "no echo request of them (truncated or not) reached s1"
    );
    // Frames that fit still flow.
    let (ok, out) = gw.lab.ping("j1", "192.168.1.21", 2);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn ipv6_reaches_the_public_host_through_a_virtual_gateway() {
    let gw = start(&[&S1, &S2]).await;
    let name = trunkline_test_support::unique_name("net1-public");
    gw.apply_vgw(&name, "vgw", NET, &["192.168.1.0/24", "fd00:1::/64"], &[])
        .await;
    gw.wait_vgw(&name, "True").await;
    pings(&gw, "s1", "fd00:f::253").await;
    pings(&gw, "pub", "fd00:1::22").await;
    let received = gw
        .lab
        .tcp("s2", "pub", "fd00:f::253", 7201, "v6-to-the-public")
        .expect("TCP out over IPv6");
    assert_eq!(received, "v6-to-the-public");
    let received = gw
        .lab
        .tcp("pub", "s1", "fd00:1::21", 7202, "v6-from-the-public")
        .expect("TCP in over IPv6");
    assert_eq!(received, "v6-from-the-public");
}

/// The external DHCP server of the relay test, behind eth1.
const SRV: Remote = Remote {
    name: "srv",
    port: "eth1",
    vlan: 150,
    mac: "02:00:00:00:50:01",
    ips: &["192.168.1.5"],
    dhcp: false,
    pairs: &[],
};

/// A process in an instance's namespace, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_relay_network_gets_its_addresses_from_an_external_dhcp_server() {
    let gw = start_with(
        &[&D1, &D2, &SRV, &S1],
        json!({"mode": "Relay", "relayServer": "192.168.1.5"}),
    )
    .await;
    pings(&gw, "s1", "192.168.1.5").await;
    // busybox udhcpd on srv, with the instances' VMI addresses as static
    // leases (the server must give each instance its VMI's address).
    let dir = gw.lab.state_dir();
    let conf = dir.join("udhcpd.conf");
    std::fs::write(
        &conf,
        format!(
            "start 192.168.1.200\nend 192.168.1.210\ninterface eth0\nmax_leases 10\n\
             lease_file {leases}\npidfile {pid}\n\
             static_lease {d1} 192.168.1.11\nstatic_lease {d2} 192.168.1.12\n\
             option subnet 255.255.255.0\noption router 192.168.1.1\noption lease 600\n\
             option domain relayed.example\n",
            leases = dir.join("udhcpd.leases").display(),
            pid = dir.join("udhcpd.pid").display(),
            d1 = D1.mac,
            d2 = D2.mac,
        ),
    )
    .expect("udhcpd.conf");
    std::fs::write(dir.join("udhcpd.leases"), b"").expect("lease file");
    let _server = Daemon(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &gw.lab.namespace("srv"),
                "busybox",
                "udhcpd",
                "-f",
            ])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("udhcpd starts"),
    );
    for (remote, ip) in [(&D1, "192.168.1.11"), (&D2, "192.168.1.12")] {
        let lease = udhcpc(&gw, remote.name);
        eprintln!("{} got, relayed: {lease:?}", remote.name);
        assert_eq!(env_value(&lease, "ip"), Some(ip), "{lease:?}");
        assert_eq!(
            env_value(&lease, "serverid"),
            Some("192.168.1.5"),
            "the external server"
        );
        assert_eq!(env_value(&lease, "domain"), Some("relayed.example"));
        assert_eq!(env_value(&lease, "lease"), Some("600"));
    }
    pings(&gw, "d1", "192.168.1.21").await;
    pings(&gw, "d2", "192.168.1.11").await;
}

/// keepalived in an instance's namespace, stopped when dropped.
struct Keepalived {
    child: Child,
}

impl Keepalived {
    fn start(gw: &Gateway<'_>, instance: &str, priority: u8) -> Keepalived {
        let dir = gw.lab.state_dir();
        let conf = dir.join(format!("{instance}-keepalived.conf"));
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  router_id {instance}\n}}\n\
                 vrrp_instance vip {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n\
                   priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
            ),
        )
        .expect("keepalived.conf");
        let file = |what: &str| dir.join(format!("{instance}-{what}")).display().to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &gw.lab.namespace(instance), "keepalived"])
            .args(["--dont-fork", "--log-console", "--vrrp", "-f"])
            .arg(&conf)
            .args(["-p", &file("keepalived.pid"), "-r", &file("vrrp.pid")])
            .args(["-c", &file("checkers.pid")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(file("keepalived.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("keepalived starts");
        Keepalived { child }
    }

    /// A clean stop: keepalived gives the address up (priority 0).
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Waits until a TCP connection to the VIP lands in `holder`.
async fn vip_served_by(gw: &Gateway<'_>, holder: &str, port: u16) {
    eventually(
        &format!("{VIP} is served by {holder}"),
        Duration::from_secs(30),
        || async {
            match gw.lab.tcp("s1", holder, VIP, port, "hello-vip") {
                Ok(received) if received == "hello-vip" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| {
        let log = |k: &str| {
            std::fs::read_to_string(gw.lab.state_dir().join(format!("{k}-keepalived.log")))
                .unwrap_or_default()
        };
        let addresses = |k: &str| {
            trunkline_test_support::lab::output_text(&gw.lab.exec(k, &["ip", "-4", "addr"]))
        };
        let drops: Vec<String> = gw
            .agent()
            .metrics()
            .lines()
            .filter(|l| (l.contains("drops_total") || l.contains("vmi_packets")) && !l.ends_with(" 0"))
            .map(str::to_owned)
            .collect();
        let (_, ping) = gw.lab.ping("s1", VIP, 2);
        let neigh = trunkline_test_support::lab::output_text(&gw.lab.exec("s1", &["ip", "neigh"]));
        panic!(
            "{e}\nping: {ping}\ns1 neighbours: {neigh}\ncounters: {drops:#?}\nagent log: {}\nk1: {}\n{}\nk2: {}\n{}",
            gw.agent().log().display(),
            addresses("k1"),
            log("k1"),
            addresses("k2"),
            log("k2")
        )
    });
}

#[tokio::test]
async fn a_keepalived_virtual_ip_is_reachable_and_moves_with_vrrp() {
    let gw = start(&[&S1, &K1, &K2]).await;
    pings(&gw, "k1", "192.168.1.32").await;
    let mut k1 = Keepalived::start(&gw, "k1", 150);
    let _k2 = Keepalived::start(&gw, "k2", 100);
    // k1 (higher priority) takes the address and announces it.
    vip_served_by(&gw, "k1", 7301).await;
    pings(&gw, "s1", VIP).await;
    // k1 stops: k2 takes over, its gratuitous ARP moves the route.
    k1.stop();
    vip_served_by(&gw, "k2", 7302).await;
    pings(&gw, "s1", VIP).await;
    let held = gw
        .lab
        .exec("k2", &["ip", "-4", "addr", "show", "dev", "eth0"]);
    assert!(
        String::from_utf8_lossy(&held.stdout).contains(VIP),
        "k2 holds the address now"
    );
    // And back: k1 returns with its higher priority.
    let _k1 = Keepalived::start(&gw, "k1", 150);
    vip_served_by(&gw, "k1", 7303).await;
}
