//! Prometheus metrics of the node dataplane, read at scrape time from the
//! shared control state (prometheus-client, as the operator): nothing on
//! the forwarding path knows about them.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `trunkline_dataplane_tables_version` | | version of the tables in the fast path |
//! | `trunkline_dataplane_objects` | `kind` | objects in the tables |
//! | `trunkline_dataplane_port_up` | `port`, `backend` | 1 when the port is open and its link up |
//! | `trunkline_dataplane_frames_total` | `verdict` | frames decided: `forward`, `flood`, `pass`, `drop` |
//! | `trunkline_dataplane_sent_frames_total`, `..._sent_bytes_total` | | frames (and bytes) that really left by a port |
//! | `trunkline_dataplane_drops_total` | `reason` | frames dropped, by the pipeline or the I/O layer |
//! | `trunkline_dataplane_vmi_packets_total`, `..._vmi_bytes_total` | `vmi`, `direction` | per VMI; `rx` from the instance, `tx` to it (counted once sent) |
//! | `trunkline_dataplane_vmi_dropped_total` | `vmi` | frames from the VMI that were dropped |
//! | `trunkline_dataplane_security_group_flows_total` | `vmi`, `direction`, `group`, `rule` | flows of a policed VMI each rule allowed (first packets; `rule`: its index in the group's list for the direction) |
//! | `trunkline_dataplane_security_group_denied_total` | `vmi`, `direction`, `rule` | packets of a policed VMI no rule allowed (`rule="default-deny"`; also in `drops_total` as `policy_ingress_denied` / `policy_egress_denied`) |
//! | `trunkline_dataplane_network_policy_flows_total` | `from`, `to`, `policy`, `rule`, `action` | flows between two networks a VirtualNetworkPolicy connects, by the rule that decided them at their first packet (`rule`: its index in the policy's `spec.rules`; `policy="",rule="default-deny"`: no rule decided; later packets of denied flows are in `drops_total` as `network_policy_denied`) |
//! | `trunkline_dataplane_tunnel_peers` | `state` | tunnel peers whose underlay next hop is `resolved` or `unresolved` |
//! | `trunkline_dataplane_xdp_tier_frames_total` | `decision` | frames the XDP tier decided in the kernel (`kernel`) or handed to userspace (`handoff`) |
//! | `trunkline_dataplane_xdp_tier_flow_hits_total` | | of the frames forwarded in the kernel, those of established flows its flow stage decided (SNAT translated, both ways; a policed VMI's flow allowed; a network policy's connection between two networks of the node crossed) |
//! | `trunkline_dataplane_xdp_tier_tables_version` | | version of the tables the kernel decides with (absent without the tier) |
//! | `trunkline_dataplane_ha_state` | `group`, `state` | 1 for the node's state in each HA group it is a member of (`Active`, `Standby`, `Down`) |
//! | `trunkline_dataplane_ha_transitions_total` | `group`, `state` | changes of the node's state in a group, by the state entered |
//! | `trunkline_dataplane_ha_messages_total` | `kind`, `direction` | heartbeats and claims sent and received; `refused` (unknown sender, wrong address, malformed) |
//! | `trunkline_dataplane_ha_announcements_total` | | gratuitous ARPs / unsolicited NAs injected at takeovers |
//! | `trunkline_dataplane_flows` | | flows in the flow table (SNAT, security groups), each a forward and a reverse entry |
//! | `trunkline_dataplane_flows_created_total`, `..._flows_expired_total` | | flows created; removed for being idle |
//! | `trunkline_dataplane_flow_allocation_failures_total` | `reason` | first packets refused: `table_full`, `ports_exhausted` (also in `drops_total`) |
//! | `trunkline_dataplane_fabric_next_hops` | | fabric next hops (SNAT, IP fabric forwarding) whose MAC is known |
//! | `trunkline_dataplane_watch_events_total` | `kind` | watch events received (the agent watches only the objects labelled for its node) |
//! | `trunkline_dataplane_compile_wakes_total` | `outcome` | what the compile loop did when woken: `build_swapped` (new tables), `build_unchanged` (built, same tables), `watermarks_only` (nothing a build reads changed: reported without a build), `waiting` (an edit waits for the operator's verdict) |
//! | `trunkline_dataplane_build_seconds_total` | | time spent building the node's desired state and tables |
//! | `trunkline_dataplane_reports_total` | | status writes of the node's report (its PhysicalRouter's status) |
//!
//! With the XDP tier, the frame, drop and per-VMI counters are the sums of
//! what userspace counted and what the kernel counted (per-CPU maps): each
//! frame is counted once, by whoever decided it (a frame the kernel hands
//! off is counted by userspace only). The kernel counts a frame as sent when
//! it gives it to the kernel's transmit (XDP_TX, a devmap redirect); a
//! transmit failure after that is the driver's (its own interface
//! counters), which userspace, sending itself, sees and counts.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use trunkline_pipeline::kernel::{KernelCounters, vmi_from_per_cpu};
use trunkline_pipeline::{CounterSnapshot, VmiCounterSnapshot};

use crate::control::Control;

/// What the XDP tier's kernel counters hold now: totals, and a reader of
/// the counters of a VMI by key.
struct Kernel {
    counters: KernelCounters,
    installed: Option<i64>,
    vmi: Box<dyn Fn(&str) -> VmiCounterSnapshot>,
}

/// Reads the XDP tier's counters (nothing when the tier is off).
fn kernel(control: &Control) -> Kernel {
    let none = || Kernel {
        counters: KernelCounters::default(),
        installed: None,
        vmi: Box::new(|_| VmiCounterSnapshot::default()),
    };
    let Some(maps) = control.tier_maps() else {
        return none();
    };
    let counters = maps
        .lookup_per_cpu("tier_stats", &0u32.to_ne_bytes())
        .map(|values| KernelCounters::from_per_cpu(&values))
        .unwrap_or_default();
    let installed = control.tier_installed();
    let version = installed.as_ref().map(|(v, _)| *v);
    let slots = installed.map(|(_, slots)| slots);
    Kernel {
        counters,
        installed: version,
        vmi: Box::new(move |key| {
            slots
                .as_ref()
                .and_then(|s| s.vmi(key))
                .and_then(|slot| {
                    maps.lookup_per_cpu("tier_vmi_stats", &slot.to_ne_bytes())
                        .ok()
                })
                .map(|values| vmi_from_per_cpu(&values))
                .unwrap_or_default()
        }),
    }
}

fn add_vmi(a: VmiCounterSnapshot, b: VmiCounterSnapshot) -> VmiCounterSnapshot {
    VmiCounterSnapshot {
        rx_packets: a.rx_packets + b.rx_packets,
        rx_bytes: a.rx_bytes + b.rx_bytes,
        rx_dropped: a.rx_dropped + b.rx_dropped,
        tx_packets: a.tx_packets + b.tx_packets,
        tx_bytes: a.tx_bytes + b.tx_bytes,
    }
}

/// Reads the control state at every scrape.
#[derive(Debug)]
struct Scrape(Arc<ControlHandle>);

/// `Control` is not `Debug`; the collector holds it through this.
struct ControlHandle(Arc<Control>);

impl std::fmt::Debug for ControlHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let control = &self.0.0;
        let report = control.report();
        let plan = control.plan();
        gauge(
            &mut encoder,
            "tables_version",
            "Version of the tables in the fast path",
            report.tables_version,
        )?;

        let c = &report.counts;
        let mut family = encoder.encode_descriptor(
            "objects",
            "Objects in the node's tables, by kind",
            None,
            MetricType::Gauge,
        )?;
        for (kind, n) in [
            ("LogicalInterface", c.logical_interfaces),
            ("VirtualMachineInterface", c.virtual_machine_interfaces),
            ("RoutingInstance", c.routing_instances),
            ("Route", c.routes),
            ("VirtualGateway", c.virtual_gateways),
            (
                "RemoteVirtualMachineInterface",
                plan.tables.remote_vmi_count() as u32,
            ),
        ] {
            ConstGauge::new(i64::from(n)).encode(family.encode_family(&[("kind", kind)])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "watch_events",
            "Watch events received, by kind (only the objects labelled for this node are watched)",
            None,
            MetricType::Counter,
        )?;
        for (kind, n) in control.watch_events() {
            ConstCounter::new(n).encode(family.encode_family(&[("kind", kind.as_str())])?)?;
        }

        let compile = control.compile_stats();
        let mut family = encoder.encode_descriptor(
            "compile_wakes",
            "What the compile loop did when woken: built (new or the same tables), reported watermarks without a build, or waited for the operator's verdict on an edit",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in &compile.wakes {
            ConstCounter::new(*n)
                .encode(family.encode_family(&[("outcome", outcome.as_str())])?)?;
        }
        ConstCounter::new(compile.build_seconds).encode(encoder.encode_descriptor(
            "build_seconds",
            "Time spent building the node's desired state and tables",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(compile.reports).encode(encoder.encode_descriptor(
            "reports",
            "Status writes of the node's report",
            None,
            MetricType::Counter,
        )?)?;

        let mut family = encoder.encode_descriptor(
            "port_up",
            "Whether a port is open and its link up",
            None,
            MetricType::Gauge,
        )?;
        let backend = report.backend.as_deref().unwrap_or("none");
        for port in &report.ports {
            let labels = [("port", port.name.as_str()), ("backend", backend)];
            ConstGauge::new(i64::from(port.state == "Up"))
                .encode(family.encode_family(&labels)?)?;
        }

        let kernel = kernel(control);
        let s: CounterSnapshot = control.counters().snapshot() + kernel.counters.decided;
        let mut family = encoder.encode_descriptor(
            "frames",
            "Frames the fast path decided on, by verdict (forward: to one egress; flood: replicated)",
            None,
            MetricType::Counter,
        )?;
        // The pipeline's drops only: I/O losses are not verdicts.
        let dropped: u64 = s
            .drops_by_reason()
            .filter(|(reason, _)| !reason.is_io())
            .map(|(_, n)| n)
            .sum();
        for (verdict, n) in [
            ("forward", s.forwarded),
            ("flood", s.flooded),
            ("pass", s.passed),
            ("drop", dropped),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&[("verdict", verdict)])?)?;
        }
        counter(
            &mut encoder,
            "sent_frames",
            "Frames that left by a port (forwarded, replies, flood copies)",
            s.sent,
        )?;
        counter(
            &mut encoder,
            "sent_bytes",
            "Bytes of the frames that left by a port",
            s.sent_bytes,
        )?;
        let mut family = encoder.encode_descriptor(
            "drops",
            "Frames dropped, by reason (pipeline verdicts and I/O losses)",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in s.drops_by_reason() {
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason.as_str())])?)?;
        }

        let vmis: Vec<_> = plan
            .tables
            .vmi_counters()
            .map(|(key, c)| (key, add_vmi(c, (kernel.vmi)(key))))
            .collect();
        let mut family = encoder.encode_descriptor(
            "vmi_packets",
            "Packets per VMI and direction (rx: from the instance; tx: to it, once sent)",
            None,
            MetricType::Counter,
        )?;
        for (vmi, c) in &vmis {
            for (direction, n) in [("rx", c.rx_packets), ("tx", c.tx_packets)] {
                let labels = [("vmi", *vmi), ("direction", direction)];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "vmi_bytes",
            "Bytes per VMI and direction",
            None,
            MetricType::Counter,
        )?;
        for (vmi, c) in &vmis {
            for (direction, n) in [("rx", c.rx_bytes), ("tx", c.tx_bytes)] {
                let labels = [("vmi", *vmi), ("direction", direction)];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "vmi_dropped",
            "Frames from a VMI that were dropped",
            None,
            MetricType::Counter,
        )?;
        for (vmi, c) in &vmis {
            ConstCounter::new(c.rx_dropped).encode(family.encode_family(&[("vmi", *vmi)])?)?;
        }

        let policies: Vec<_> = plan
            .tables
            .vmi_policies()
            .map(|(vmi, p)| (vmi, p.counters.snapshot(&p.policy)))
            .collect();
        let mut family = encoder.encode_descriptor(
            "security_group_flows",
            "Flows of a policed VMI each security-group rule allowed",
            None,
            MetricType::Counter,
        )?;
        for (vmi, counts) in &policies {
            for c in counts {
                if let Some((group, index)) = &c.rule {
                    let index = index.to_string();
                    let labels = [
                        ("vmi", *vmi),
                        ("direction", c.direction.as_str()),
                        ("group", group.as_str()),
                        ("rule", index.as_str()),
                    ];
                    ConstCounter::new(c.count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "security_group_denied",
            "Packets of a policed VMI no security-group rule allowed (the default deny)",
            None,
            MetricType::Counter,
        )?;
        for (vmi, counts) in &policies {
            for c in counts.iter().filter(|c| c.rule.is_none()) {
                let labels = [
                    ("vmi", *vmi),
                    ("direction", c.direction.as_str()),
                    ("rule", "default-deny"),
                ];
                ConstCounter::new(c.count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "network_policy_flows",
            "Flows between connected networks, by the network-policy rule that decided them",
            None,
            MetricType::Counter,
        )?;
        for link in plan.tables.network_links() {
            for c in link.counters.snapshot(&link.config) {
                let (policy, rule) = match &c.rule {
                    Some((policy, index)) => (policy.as_str(), index.to_string()),
                    None => ("", "default-deny".to_owned()),
                };
                let action = match c.action {
                    Some(trunkline_pipeline::network_policy::NetworkAction::Allow) => "Allow",
                    Some(trunkline_pipeline::network_policy::NetworkAction::Deny) => "Deny",
                    Some(trunkline_pipeline::network_policy::NetworkAction::Pass) => "Pass",
                    None => "Deny",
                };
                let labels = [
                    ("from", link.config.from.as_str()),
                    ("to", link.config.to.as_str()),
                    ("policy", policy),
                    ("rule", rule.as_str()),
                    ("action", action),
                ];
                ConstCounter::new(c.count).encode(family.encode_family(&labels)?)?;
            }
        }

        let peers = plan.tables.peers();
        let resolved = peers.iter().filter(|p| p.next_hop_mac().is_some()).count();
        let mut family = encoder.encode_descriptor(
            "tunnel_peers",
            "Tunnel peers by the state of their underlay next hop",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in [
            ("resolved", resolved),
            ("unresolved", peers.len() - resolved),
        ] {
            ConstGauge::new(n as i64).encode(family.encode_family(&[("state", state)])?)?;
        }
        if control.tier_maps().is_some() {
            let mut family = encoder.encode_descriptor(
                "xdp_tier_frames",
                "Frames the XDP tier decided in the kernel, or handed to userspace",
                None,
                MetricType::Counter,
            )?;
            for (decision, n) in [
                ("kernel", kernel.counters.decided.received),
                ("handoff", kernel.counters.handed_off),
            ] {
                ConstCounter::new(n).encode(family.encode_family(&[("decision", decision)])?)?;
            }
            ConstCounter::new(kernel.counters.flow_hits).encode(encoder.encode_descriptor(
                "xdp_tier_flow_hits",
                "Frames of established flows the XDP tier's flow stage forwarded itself (SNAT, both ways; policed VMIs' allowed flows; network policies' connections on one node)",
                None,
                MetricType::Counter,
            )?)?;
            if let Some(version) = kernel.installed {
                gauge(
                    &mut encoder,
                    "xdp_tier_tables_version",
                    "Version of the tables the XDP tier decides with",
                    version,
                )?;
            }
        }

        let ha = control.ha_stats(|s| s.clone());
        let mut family = encoder.encode_descriptor(
            "ha_state",
            "The node's state in each HA group it is a member of (1 for the current one)",
            None,
            MetricType::Gauge,
        )?;
        for group in &ha.groups {
            for state in ["Active", "Standby", "Down"] {
                let labels = [("group", group.group.as_str()), ("state", state)];
                ConstGauge::new(i64::from(group.state == state))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "ha_transitions",
            "Changes of the node's state in an HA group, by the state entered",
            None,
            MetricType::Counter,
        )?;
        for ((group, state), n) in &ha.transitions {
            let labels = [("group", group.as_str()), ("state", state.as_str())];
            ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "ha_messages",
            "Gateway HA datagrams by kind and direction",
            None,
            MetricType::Counter,
        )?;
        for (kind, direction, n) in [
            ("heartbeat", "sent", ha.heartbeats_sent),
            ("heartbeat", "received", ha.heartbeats_received),
            ("claim", "sent", ha.claims_sent),
            ("claim", "received", ha.claims_received),
            ("any", "refused", ha.refused),
        ] {
            let labels = [("kind", kind), ("direction", direction)];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        counter(
            &mut encoder,
            "ha_announcements",
            "Gratuitous ARPs and unsolicited neighbour advertisements injected at takeovers",
            ha.announcements,
        )?;

        let flows = control.flow_stats().unwrap_or_default();
        gauge(
            &mut encoder,
            "flows",
            "Flows in the flow table (SNAT), each a forward and a reverse entry",
            flows.active as i64,
        )?;
        counter(
            &mut encoder,
            "flows_created",
            "Flows created",
            flows.created,
        )?;
        counter(
            &mut encoder,
            "flows_expired",
            "Flows removed for being idle past their timeout",
            flows.expired,
        )?;
        let mut family = encoder.encode_descriptor(
            "flow_allocation_failures",
            "First packets of new flows refused: the table was full, or no SNAT port was free",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("table_full", flows.table_full),
            ("ports_exhausted", flows.ports_exhausted),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
        }
        gauge(
            &mut encoder,
            "fabric_next_hops",
            "Fabric next hops of traffic leaving the overlay untunneled whose MAC is known",
            plan.tables.fabric_neighbours().resolved_count() as i64,
        )?;
        Ok(())
    }
}

/// The agent's metrics registry.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry (prefix `trunkline_dataplane_`) reading `control`.
    pub fn new(control: Arc<Control>) -> Self {
        let mut registry = Registry::with_prefix("trunkline_dataplane");
        registry.register_collector(Box::new(Scrape(Arc::new(ControlHandle(control)))));
        Self { registry }
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_pipeline::{DropReason, Verdict};

    #[test]
    fn renders_counters_with_their_labels() {
        let control = Arc::new(Control::default());
        control
            .counters()
            .record(&Verdict::Drop(DropReason::SourceIpSpoofed));
        control.counters().lost(DropReason::TxRingFull, 2);
        control.counters().sent(60);
        control.ha_stats(|s| {
            s.transitions.insert(("g".into(), "Active".into()), 2);
            s.heartbeats_sent = 5;
        });
        let text = Metrics::new(control).render().unwrap();
        for line in [
            "trunkline_dataplane_drops_total{reason=\"source_ip_spoofed\"} 1",
            "trunkline_dataplane_drops_total{reason=\"tx_ring_full\"} 2",
            "trunkline_dataplane_frames_total{verdict=\"drop\"} 1",
            "trunkline_dataplane_sent_frames_total 1",
            "trunkline_dataplane_sent_bytes_total 60",
            "trunkline_dataplane_tables_version 0",
            "trunkline_dataplane_tunnel_peers{state=\"unresolved\"} 0",
            "trunkline_dataplane_ha_transitions_total{group=\"g\",state=\"Active\"} 2",
            "trunkline_dataplane_ha_messages_total{kind=\"heartbeat\",direction=\"sent\"} 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }

    #[test]
    fn security_group_counts_by_rule_and_default_deny() {
        use trunkline_pipeline::policy::{Direction, Policy, Rule, RuleId, RuleProtocol};
        let control = Arc::new(Control::default());
        let mut desired = crate::desired::Desired::default();
        desired.config.vmis.push(trunkline_pipeline::VmiConfig {
            key: "t1/web-1".into(),
            network: "t1/net1".into(),
            mac: [2, 0, 0, 0, 0, 1],
            ips: vec!["10.0.0.10".parse().unwrap()],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            label: None,
        });
        desired
            .config
            .networks
            .push(trunkline_pipeline::NetworkConfig {
                key: "t1/net1".into(),
                vrf: 1,
                ..Default::default()
            });
        let rule = Rule {
            id: RuleId { group: 0, index: 0 },
            ipv6: false,
            protocol: RuleProtocol::Tcp,
            ports: None,
            remote: None,
        };
        desired.config.policies.insert(
            "t1/web-1".into(),
            Policy {
                groups: vec!["web".into()],
                ingress: vec![rule],
                egress: Vec::new(),
            },
        );
        control.install(&desired, None, Some(1), Default::default());
        let plan = control.plan();
        let (_, policy) = plan.tables.vmi_policies().next().expect("a policed VMI");
        policy.counters.allowed(Direction::Ingress, 0);
        policy.counters.denied(Direction::Ingress);
        policy.counters.denied(Direction::Ingress);
        let text = Metrics::new(control).render().unwrap();
        for line in [
            "trunkline_dataplane_security_group_flows_total{vmi=\"t1/web-1\",direction=\"ingress\",group=\"web\",rule=\"0\"} 1",
            "trunkline_dataplane_security_group_denied_total{vmi=\"t1/web-1\",direction=\"ingress\",rule=\"default-deny\"} 2",
            "trunkline_dataplane_security_group_denied_total{vmi=\"t1/web-1\",direction=\"egress\",rule=\"default-deny\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }

    #[test]
    fn network_policy_flows_by_rule_and_default_deny() {
        use trunkline_pipeline::network_policy::{
            LinkConfig, NetworkAction, NetworkRule, PolicyRules,
        };
        use trunkline_pipeline::policy::RuleProtocol;
        let control = Arc::new(Control::default());
        let mut desired = crate::desired::Desired::default();
        for (n, key) in ["t1/red", "t1/blue"].into_iter().enumerate() {
            desired
                .config
                .networks
                .push(trunkline_pipeline::NetworkConfig {
                    key: key.into(),
                    vrf: n as u32 + 1,
                    ..Default::default()
                });
        }
        desired.config.network_links.push(LinkConfig {
            from: "t1/red".into(),
            to: "t1/blue".into(),
            policies: vec![PolicyRules {
                policy: "t1/ssh".into(),
                rules: vec![NetworkRule {
                    index: 3,
                    action: NetworkAction::Allow,
                    protocol: RuleProtocol::Tcp,
                    ports: None,
                }],
            }],
        });
        control.install(&desired, None, Some(1), Default::default());
        let plan = control.plan();
        let link = plan.tables.network_links().first().expect("a link");
        link.counters.decided(0, 0);
        link.counters.default_denied();
        link.counters.default_denied();
        let text = Metrics::new(control).render().unwrap();
        for line in [
            "trunkline_dataplane_network_policy_flows_total{from=\"t1/red\",to=\"t1/blue\",policy=\"t1/ssh\",rule=\"3\",action=\"Allow\"} 1",
            "trunkline_dataplane_network_policy_flows_total{from=\"t1/red\",to=\"t1/blue\",policy=\"\",rule=\"default-deny\",action=\"Deny\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
