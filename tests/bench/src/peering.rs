//! The route-propagation measurement's BGP side (issue 17: "time from 16K
//! VMIs being Programmed until their VPNv4 routes are all visible in
//! FRR"): the product's speaker (`trunkline-bgp` supervising gobgpd) and
//! FRR's bgpd as the counting peer, each in a namespace of a small lab;
//! the scale set's network exports its VMIs' addresses.
//!
//! ```text
//!   <p>r-ctl 10.254.0.100 (gobgpd, AS 64512) ── eBGP VPNv4 ── <p>r-dcgw 10.254.0.200 (FRR, AS 65001)
//!   ═══════════════ <p>r-fab bridge 10.254.0.0/24 ═══════════════
//!   agent's node: fabric port `fab` 10.255.0.1 (the routes' next hop; no data path needed)
//! ```
//!
//! FRR counts what it accepted from the speaker (`pfxRcd` of `show bgp
//! ipv4 vpn summary json`, cheap at any table size) and sends nothing
//! back (an outbound route-map denies all), so gobgpd's work is the
//! export alone.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::json;
use trunkline_test_support::lab::Frr;
use trunkline_test_support::{FabricHostSpec, Lab, LabSpec, ManagedProcess, child_named};

use crate::Error;
use crate::modes::agent::AgentDevice;

/// The speaker's address (its router ID) and AS.
const SPEAKER: Ipv4Addr = Ipv4Addr::new(10, 254, 0, 100);
const SPEAKER_AS: u32 = 64512;
/// FRR's address and AS.
const FRR: Ipv4Addr = Ipv4Addr::new(10, 254, 0, 200);
const FRR_AS: u32 = 65001;
/// The agent node's underlay address (the exported routes' next hop).
pub const UNDERLAY: &str = "10.255.0.1";
/// The agent node's fabric port (a veth in its namespace, peer `fabp`).
pub const FABRIC_PORT: &str = "fab";
/// The route target the scale network exports.
pub const EXPORT_RT: &str = "target:64512:4242";
/// How long the session may take to come up.
const ESTABLISHED: Duration = Duration::from_secs(60);

/// FRR's configuration: VPNv4 with the speaker, nothing sent back.
fn frr_config() -> String {
    format!(
        "frr defaults traditional\n\
         hostname dcgw\n\
         log stdout warnings\n\
         !\n\
         route-map NOTHING deny 10\n\
         !\n\
         router bgp {FRR_AS}\n \
          bgp router-id {FRR}\n \
          no bgp ebgp-requires-policy\n \
          neighbor {SPEAKER} remote-as {SPEAKER_AS}\n \
          neighbor {SPEAKER} timers connect 2\n \
          address-family ipv4 unicast\n  \
           no neighbor {SPEAKER} activate\n \
          exit-address-family\n \
          address-family ipv4 vpn\n  \
           neighbor {SPEAKER} activate\n  \
           neighbor {SPEAKER} route-map NOTHING out\n \
          exit-address-family\n\
         !\n"
    )
}

/// The speaker and FRR, peered. Drops the speaker, then FRR, then the lab.
pub struct Peering {
    speaker: ManagedProcess,
    /// Taken on drop, to stop FRR before its namespace goes.
    frr: Option<Frr>,
    lab: Lab,
}

impl Drop for Peering {
    fn drop(&mut self) {
        // The speaker takes its gobgpd along (parent-death signal).
        self.speaker.kill();
        drop(self.frr.take());
        // A named lab stays until it is taken down.
        if let Err(e) = Lab::down(self.lab.prefix()) {
            eprintln!("[bench] removing the peering's lab: {e}");
        }
    }
}

impl Peering {
    /// Builds the lab `<prefix>r`, starts FRR and the speaker (gobgpd
    /// `gobgpd`) in `device`'s cluster, gives the agent's node its fabric
    /// port `fab` (veth, in its namespace) with [`UNDERLAY`], applies a
    /// BGPPeer for FRR and waits until FRR has the session Established.
    pub async fn start(
        device: &AgentDevice,
        prefix: &str,
        gobgpd: &std::path::Path,
    ) -> Result<Self, Error> {
        let ns = device.netns_name();
        if crate::netns::run("ip", &["-n", ns, "link", "show", FABRIC_PORT]).is_err() {
            crate::netns::run(
                "ip",
                &[
                    "-n",
                    ns,
                    "link",
                    "add",
                    FABRIC_PORT,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "fabp",
                ],
            )?;
            crate::netns::run(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{UNDERLAY}/24"),
                    "dev",
                    FABRIC_PORT,
                ],
            )?;
        }
        for port in [FABRIC_PORT, "fabp"] {
            crate::netns::run("ip", &["-n", ns, "link", "set", port, "up"])?;
        }
        let lab = Lab::up_named(
            &format!("{prefix}r"),
            LabSpec::new()
                .host(FabricHostSpec::new("ctl").ip(&format!("{SPEAKER}/24")))
                .host(FabricHostSpec::new("dcgw").ip(&format!("{FRR}/24"))),
        )?;
        let frr = Frr::start(&lab, "dcgw", &lab.namespace("dcgw"), &frr_config())?;
        let speaker = device
            .cluster()
            .start_speaker(gobgpd, &lab.netns_path("ctl"), SPEAKER, SPEAKER_AS)
            .await?;
        device
            .cluster()
            .apply_cluster_scoped(
                "bgppeers",
                &json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
                        "metadata": {"name": "bench-frr"},
                        "spec": {"address": FRR.to_string(), "peerASN": FRR_AS,
                                 "timers": {"connectRetrySeconds": 1}}}),
            )
            .await?;
        let peering = Self {
            speaker,
            frr: Some(frr),
            lab,
        };
        let started = Instant::now();
        while peering.received().is_none() {
            if started.elapsed() > ESTABLISHED {
                return Err(Error::Timeout {
                    what: format!(
                        "FRR's session with the speaker (logs: {}, speaker {})",
                        peering
                            .frr
                            .as_ref()
                            .map(|f| f.log_dir().display().to_string())
                            .unwrap_or_default(),
                        peering.speaker.log().display()
                    ),
                    seconds: ESTABLISHED.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "[bench] route propagation: FRR peers with the speaker (lab {})",
            peering.lab.namespace("dcgw")
        );
        Ok(peering)
    }

    /// Kills the speaker's gobgpd and times until FRR holds `n` routes
    /// again: the speaker restarts gobgpd and gives it every path at once,
    /// so this is its cost for a burst of `n` routes, plus gobgpd's start
    /// and the session's re-establishment (FRR's connect timer 2 s, the
    /// speaker's retry 1 s).
    pub async fn readvertise(&self, n: u64, limit: Duration) -> Result<f64, Error> {
        let pid = self
            .speaker
            .pid()
            .and_then(|p| child_named(p, "gobgpd"))
            .ok_or_else(|| Error::Options("no gobgpd under the speaker".into()))?;
        crate::netns::run("kill", &["-9", &pid.to_string()])?;
        let started = Instant::now();
        let mut dropped = false;
        loop {
            let received = self.received();
            dropped |= received.is_none_or(|c| c < n);
            if dropped && received >= Some(n) {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > limit {
                return Err(Error::Timeout {
                    what: format!("FRR to hold {n} routes again after gobgpd was killed"),
                    seconds: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// VPNv4 prefixes FRR accepted from the speaker; `None` until the
    /// session is Established.
    pub fn received(&self) -> Option<u64> {
        self.frr
            .as_ref()?
            .vpn_prefixes_received("ipv4", &SPEAKER.to_string())
    }
}
