//! (m) Linux's own source NAT, the baseline of (l): in the device's
//! namespace the lab's tc tagger pops VLAN 100 on `in` (as in (c)), the
//! kernel forwards (strict rp_filter as the source check), and netfilter
//! masquerades what leaves the fabric port `eth0` to its address:
//!
//! ```text
//!  gen --VLAN 100--> in [tc pop 100; rp_filter; conntrack; FIB; TTL; nat POSTROUTING -o eth0 MASQUERADE] eth0 10.10.0.1 --> sink (fabric host 10.10.0.253)
//! ```
//!
//! With `iptables` (here the nf_tables backend, `iptables-nft`, the only
//! netfilter front end installed), conntrack's defaults (the table shared
//! by all namespaces holds `nf_conntrack_max` entries; unreplied UDP
//! expires after 30 s; when the table is full, conntrack evicts unreplied
//! entries to make room, "early drop"). Before a new-flow run the
//! namespace's conntrack table is flushed ([`MasqueradeDevice::flush`]:
//! a ctnetlink flush, what `conntrack -F` sends; conntrack-tools are not
//! installed here).

use std::path::Path;

use crate::Error;
use crate::frame::{GATEWAY_IP, SUBNET};
use crate::netns::{FABRIC_PORT, Topology, run};
use crate::report::FlowCounts;

use super::Mode;
use super::linux::write_taggers;

/// A ctnetlink flush of the IPv4 conntrack table, sent from the device's
/// namespace: nlmsghdr (len 20, type IPCTNL_MSG_CT_DELETE of
/// NFNL_SUBSYS_CTNETLINK, flags REQUEST | ACK) and nfgenmsg (AF_INET), no
/// attributes; the reply's error code must be 0.
const FLUSH: &str = "import socket, struct\n\
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)\n\
s.send(struct.pack('=IHHIIBBH', 20, (1 << 8) | 2, 1 | 4, 1, 0, socket.AF_INET, 0, 0))\n\
reply = s.recv(4096)\n\
error = struct.unpack_from('=i', reply, 16)[0]\n\
assert error == 0, 'conntrack flush: errno %d' % -error\n";

/// What the report says about this mode.
pub fn notes() -> Vec<String> {
    vec![
        "(m) is Linux's own masquerade on the same topology: tc BPF untag of VLAN 100 on `in` (as (c)), strict rp_filter, conntrack, a connected route, TTL, `iptables -t nat -A POSTROUTING -s 192.168.1.0/24 -o eth0 -j MASQUERADE` (nf_tables backend), a permanent neighbour entry for the fabric host; conntrack's defaults (nf_conntrack_max shared by all namespaces, unreplied UDP 30 s, early drop of unreplied entries when full). Masquerade keeps the instance's source port where the tuple stays unique, so its ports differ from (l)'s. Before each new-flow run its conntrack table was flushed. Its CPU is kernel softirq time on the device's core (RPS); no device process.".to_owned(),
    ]
}

/// The configured namespace (nothing runs: the kernel translates).
pub struct MasqueradeDevice {
    netns: String,
}

impl MasqueradeDevice {
    /// Configures mode (m)'s namespace; tagger objects are written to `dir`.
    pub fn start(topology: &Topology, dir: &Path) -> Result<Self, Error> {
        let ns = Mode::Masquerade.id();
        let objects = write_taggers(dir)?;
        let sh = |line: &str| topology.exec(ns, &["sh", "-c", line]);
        sh(
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.in.rp_filter=1 net.ipv4.conf.all.send_redirects=0",
        )?;
        sh(&format!("ip addr add {GATEWAY_IP}/24 dev in"))?;
        sh(&format!(
            "tc qdisc add dev in clsact && \
             tc filter add dev in ingress bpf direct-action obj {} sec classifier/pop",
            objects[0]
        ))?;
        sh(&format!(
            "iptables -t nat -A POSTROUTING -s {SUBNET} -o {FABRIC_PORT} -j MASQUERADE"
        ))?;
        Ok(Self {
            netns: topology.namespace(ns),
        })
    }

    /// Empties the namespace's conntrack table.
    pub fn flush(&self) -> Result<(), Error> {
        run(
            "ip",
            &["netns", "exec", &self.netns, "python3", "-c", FLUSH],
        )?;
        Ok(())
    }

    fn read(&self, file: &str) -> Option<String> {
        run("ip", &["netns", "exec", &self.netns, "cat", file]).ok()
    }

    /// The namespace's conntrack counters now: entries, and from
    /// `/proc/net/stat/nf_conntrack` (per CPU, hexadecimal) the entries
    /// that could not be made (`drop`, `insert_failed`) and those evicted
    /// to make room (`early_drop`).
    pub fn flow_counts(&self) -> FlowCounts {
        let active = self
            .read("/proc/sys/net/netfilter/nf_conntrack_count")
            .and_then(|s| s.trim().parse().ok());
        let stat = self.read("/proc/net/stat/nf_conntrack");
        let column = |name: &str| -> Option<u64> {
            let text = stat.as_deref()?;
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next()?.split_whitespace().collect();
            let at = header.iter().position(|h| *h == name)?;
            Some(
                lines
                    .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(at)?, 16).ok())
                    .sum(),
            )
        };
        FlowCounts {
            // Not counted by this kernel (its `insert` column stays 0).
            created: None,
            refused: column("drop")
                .zip(column("insert_failed"))
                .map(|(a, b)| a + b),
            evicted: column("early_drop"),
            active,
        }
    }
}
