//! Control-plane figures: how long the real operator and agent take to
//! program N logical interfaces and N VMIs applied at once, and the agent's
//! resident memory at that scale.
//!
//! ```text
//!  t0 ── apply VirtualNetwork scale (10.128.0.0/16) + N x (VMI s-<i>, LI <node>-{in,out}-<vlan>)
//!        (16 requests in flight, server-side apply)
//!  t_applied ── the last apply returned
//!  t_programmed ── the PhysicalRouter's status.programmed holds all N LIs and N VMIs
//!                  at the applied generation (the agent compiled and swapped them in)
//!  t_ready ── the operator reports every one of those LIs and VMIs Ready=True
//! ```
//!
//! LIs alternate between ports `in` and `out`, VLANs from 1000 up, so they
//! never meet the forwarding benchmark's VLANs 100 and 200.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams};
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface};

use crate::Error;
use crate::cpu::resident_kib;
use crate::modes::agent::AgentDevice;

/// First VLAN of the scale objects.
const FIRST_VLAN: u16 = 1000;
/// Label value of the scale objects (`trunkline.io/bench`).
const LABEL: &str = "scale";
/// Requests in flight while applying.
const IN_FLIGHT: usize = 16;

/// What the control-plane measurement found.
#[derive(Clone, Debug, Default)]
pub struct ScaleResult {
    /// Logical interfaces applied (and as many VMIs).
    pub objects: usize,
    /// Seconds from the first apply to the last apply's answer.
    pub applied_s: f64,
    /// Seconds from the first apply until the node reported all of them
    /// programmed; none if not within the time limit.
    pub programmed_s: Option<f64>,
    /// Seconds until the operator reported all of them Ready.
    pub ready_s: Option<f64>,
    /// The time limit, seconds.
    pub limit_s: u64,
    /// Agent VmRSS before applying, KiB.
    pub agent_rss_before_kib: Option<u64>,
    /// Agent VmRSS once all were programmed (or at the limit), KiB.
    pub agent_rss_after_kib: Option<u64>,
    /// Agent VmHWM (peak) at the end, KiB.
    pub agent_peak_kib: Option<u64>,
    /// Operator VmRSS at the end, KiB.
    pub operator_rss_kib: Option<u64>,
    /// Operator VmHWM at the end, KiB.
    pub operator_peak_kib: Option<u64>,
    /// Size of the PhysicalRouter object (JSON) at the end, bytes.
    pub router_bytes: usize,
    /// Programmed objects counted at the end (LIs + VMIs of the scale set).
    pub programmed_count: usize,
    /// Ready objects counted at the end.
    pub ready_count: usize,
}

fn vmi_name(i: usize) -> String {
    format!("s-{i}")
}

fn vmi_mac(i: usize) -> String {
    format!("02:10:00:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

fn vmi_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + 16 + i as u32)
}

fn li_port_vlan(i: usize) -> (&'static str, u16) {
    (
        if i.is_multiple_of(2) { "in" } else { "out" },
        FIRST_VLAN + (i / 2) as u16,
    )
}

fn ready(conditions: &[trunkline_api::status::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Applies `n` LIs and VMIs for the agent's node and measures; gives up
/// waiting after `limit`.
pub async fn measure(
    device: &AgentDevice,
    n: usize,
    limit: Duration,
) -> Result<ScaleResult, Error> {
    if n > 2 * usize::from(4094 - FIRST_VLAN) {
        return Err(Error::Options(format!(
            "--scale {n}: at most {} (two ports, VLANs {FIRST_VLAN}..4094)",
            2 * (4094 - FIRST_VLAN)
        )));
    }
    let agent_pid = device.pid();
    let mut result = ScaleResult {
        objects: n,
        limit_s: limit.as_secs(),
        agent_rss_before_kib: agent_pid.and_then(resident_kib).map(|r| r.0),
        ..ScaleResult::default()
    };
    eprintln!("[bench] control plane: applying {n} VMIs and {n} logical interfaces");
    let t0 = Instant::now();
    device
        .apply_network(LABEL, "10.128.0.0/16", "10.128.0.1")
        .await?;
    let expected: Vec<(String, String, i64)> = futures::stream::iter(0..n)
        .map(|i| async move {
            let vmi = vmi_name(i);
            let vmi_generation = device
                .apply_vmi(&vmi, LABEL, &vmi_mac(i), &vmi_ip(i).to_string())
                .await?;
            let (port, vlan) = li_port_vlan(i);
            let li_generation = device.apply_li(port, vlan, &vmi, LABEL).await?;
            Ok::<_, Error>([
                ("VirtualMachineInterface".to_owned(), vmi, vmi_generation),
                (
                    "LogicalInterface".to_owned(),
                    device.li_name(port, vlan),
                    li_generation,
                ),
            ])
        })
        .buffer_unordered(IN_FLIGHT)
        .map_ok(|pair| futures::stream::iter(pair.map(Ok::<_, Error>)))
        .try_flatten()
        .try_collect()
        .await?;
    result.applied_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "[bench] control plane: applied in {:.1} s; waiting for the node to program them",
        result.applied_s
    );
    let expected: HashSet<(String, String, i64)> = expected.into_iter().collect();
    let routers: Api<PhysicalRouter> = Api::all(device.client().clone());
    let lis: Api<LogicalInterface> = Api::all(device.client().clone());
    let vmis: Api<VirtualMachineInterface> =
        Api::namespaced(device.client().clone(), crate::modes::agent::NAMESPACE);
    let selector = ListParams::default().labels(&format!("trunkline.io/bench={LABEL}"));
    let mut last_report = Instant::now();
    loop {
        let elapsed = t0.elapsed();
        if result.programmed_s.is_none() {
            let router = routers.get(device.node()).await?;
            result.router_bytes = serde_json::to_vec(&router).map_or(0, |v| v.len());
            let programmed = |conditions: &[trunkline_api::status::Condition]| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Programmed" && c.status == "True")
            };
            let generations: HashSet<(String, String, i64)> = lis
                .list(&selector)
                .await?
                .items
                .iter()
                .filter(|li| {
                    li.status
                        .as_ref()
                        .is_some_and(|s| programmed(&s.conditions))
                })
                .map(|li| {
                    let name = li.metadata.name.clone().unwrap_or_default();
                    (
                        "LogicalInterface".to_owned(),
                        name,
                        li.metadata.generation.unwrap_or(0),
                    )
                })
                .chain(
                    vmis.list(&selector)
                        .await?
                        .items
                        .iter()
                        .filter(|v| v.status.as_ref().is_some_and(|s| programmed(&s.conditions)))
                        .map(|v| {
                            let name = v.metadata.name.clone().unwrap_or_default();
                            (
                                "VirtualMachineInterface".to_owned(),
                                name,
                                v.metadata.generation.unwrap_or(0),
                            )
                        }),
                )
                .collect();
            result.programmed_count = generations.intersection(&expected).count();
            if result.programmed_count == expected.len() {
                result.programmed_s = Some(elapsed.as_secs_f64());
                result.agent_rss_after_kib = agent_pid.and_then(resident_kib).map(|r| r.0);
                eprintln!(
                    "[bench] control plane: all programmed after {:.1} s",
                    elapsed.as_secs_f64()
                );
            }
        }
        if result.programmed_s.is_some() {
            let ready_lis = lis
                .list(&selector)
                .await?
                .items
                .iter()
                .filter(|li| li.status.as_ref().is_some_and(|s| ready(&s.conditions)))
                .count();
            let ready_vmis = vmis
                .list(&selector)
                .await?
                .items
                .iter()
                .filter(|v| v.status.as_ref().is_some_and(|s| ready(&s.conditions)))
                .count();
            result.ready_count = ready_lis + ready_vmis;
            if result.ready_count == expected.len() {
                result.ready_s = Some(t0.elapsed().as_secs_f64());
                eprintln!(
                    "[bench] control plane: all Ready after {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                break;
            }
        }
        if elapsed > limit {
            eprintln!(
                "[bench] control plane: gave up after {} s ({} of {} programmed, {} Ready)",
                limit.as_secs(),
                result.programmed_count,
                expected.len(),
                result.ready_count
            );
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "[bench] control plane: {:.0} s: {} of {} programmed, {} Ready",
                elapsed.as_secs_f64(),
                result.programmed_count,
                expected.len(),
                result.ready_count
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if result.agent_rss_after_kib.is_none() {
        result.agent_rss_after_kib = agent_pid.and_then(resident_kib).map(|r| r.0);
    }
    result.agent_peak_kib = agent_pid.and_then(resident_kib).map(|r| r.1);
    if let Some((rss, peak)) = device.operator_pid().and_then(resident_kib) {
        result.operator_rss_kib = Some(rss);
        result.operator_peak_kib = Some(peak);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_objects_are_distinct_and_avoid_the_forwarded_vlans() {
        let n = 2 * usize::from(4094 - FIRST_VLAN + 1);
        let mut seen = HashSet::new();
        for i in 0..n {
            let (port, vlan) = li_port_vlan(i);
            assert!((FIRST_VLAN..=4094).contains(&vlan));
            assert!(seen.insert((port, vlan)), "{port} {vlan}");
        }
        let macs: HashSet<String> = (0..4096).map(vmi_mac).collect();
        let ips: HashSet<Ipv4Addr> = (0..4096).map(vmi_ip).collect();
        assert_eq!((macs.len(), ips.len()), (4096, 4096));
        assert_eq!(vmi_ip(0), Ipv4Addr::new(10, 128, 0, 16));
    }
}
