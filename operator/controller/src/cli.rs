//! Command-line flags of the `trunkline-operator` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use trunkline_model::EncapsulationPriority;

use crate::leader::LeaseConfig;

/// Flags of the operator.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "trunkline-operator",
    version,
    about = "Validates trunkline objects across kinds and writes their status"
)]
pub struct Args {
    /// Kubeconfig file to use. Default: the in-cluster service account, or
    /// else $KUBECONFIG / ~/.kube/config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// The shortest time between two passes, in milliseconds: a change
    /// after a quiet spell is decided at once; a burst of changes (an
    /// `apply -f` of many objects) is decided in batches, one pass per
    /// interval.
    #[arg(long, default_value_t = 150)]
    pub debounce_ms: u64,

    /// Seconds between full passes when nothing changes (repairs a status
    /// edited by hand, retries what failed).
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,

    /// Encapsulations between gateway nodes, in priority order, for every
    /// VirtualNetwork without `spec.encapsulation`: a comma-separated list
    /// of `MPLSoUDP` and `VXLAN`, each at most once. Toward each peer the
    /// first one it supports is used.
    #[arg(long, default_value = "MPLSoUDP,VXLAN")]
    pub encapsulation_priority: EncapsulationPriority,

    /// Log format: `text`, or `json` (also chosen by LOG_FORMAT=json).
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Elect a leader among the replicas with a coordination.k8s.io Lease:
    /// only the leader writes status; the others watch, ready to take over.
    /// Off by default (one process); the Helm chart turns it on.
    #[arg(long, default_value_t = false)]
    pub leader_elect: bool,

    /// Namespace of the Lease. Default: $POD_NAMESPACE, else the
    /// namespace of the kubeconfig context or of the in-cluster account.
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, default_value = "trunkline-operator")]
    pub leader_election_id: String,

    /// This replica's identity in the Lease. Default: $POD_NAME, else
    /// `<hostname>_<random>`.
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,

    /// How long standby replicas wait, after the Lease last changed, before
    /// taking it over from a leader that stopped renewing (e.g. `15s`).
    #[arg(long, default_value = "15s", value_parser = crate::leader::parse_duration)]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps writing without a successful renewal;
    /// shorter than the lease duration.
    #[arg(long, default_value = "10s", value_parser = crate::leader::parse_duration)]
    pub leader_election_renew_deadline: Duration,

    /// Pause between two attempts to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = crate::leader::parse_duration)]
    pub leader_election_retry_period: Duration,

    /// How long a PacketTrace (`kubectl trunkline`'s questions and answers)
    /// is kept after its creation before the operator deletes it (e.g.
    /// `10m`, `3600s`); at least 330 s, so that the longest Observe is
    /// answered first.
    #[arg(long, default_value = "10m", value_parser = crate::packet_traces::parse_ttl)]
    pub packet_trace_ttl: Duration,
}

impl Args {
    /// `--debounce-ms` as a duration.
    pub fn debounce(&self) -> Duration {
        Duration::from_millis(self.debounce_ms)
    }

    /// `--resync-seconds` as a duration (at least one second).
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_seconds.max(1))
    }

    /// What the decisions take from the flags.
    pub fn settings(&self) -> trunkline_operator_core::Settings {
        trunkline_operator_core::Settings {
            encapsulation_priority: self.encapsulation_priority.clone(),
        }
    }

    /// The Lease to campaign for when `--leader-elect` is on, with
    /// `default_namespace` (the client's) when no namespace is given.
    pub fn lease_config(&self, default_namespace: &str) -> Option<LeaseConfig> {
        self.leader_elect.then(|| LeaseConfig {
            namespace: self
                .leader_election_namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_namespace.to_owned()),
            name: self.leader_election_id.clone(),
            identity: self
                .leader_election_identity
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(crate::leader::default_identity),
            lease_duration: self.leader_election_lease_duration,
            renew_deadline: self.leader_election_renew_deadline,
            retry_period: self.leader_election_retry_period,
        })
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults() {
        let args = Args::try_parse_from(["trunkline-operator"]).unwrap();
        assert_eq!(args.metrics_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(args.kubeconfig, None);
        assert_eq!(args.debounce(), Duration::from_millis(150));
        assert!(!args.leader_elect);
        assert_eq!(args.lease_config("ns"), None);
        assert_eq!(
            args.settings(),
            trunkline_operator_core::Settings::default()
        );
        assert_eq!(args.encapsulation_priority.to_string(), "MPLSoUDP,VXLAN");
        assert_eq!(args.packet_trace_ttl, Duration::from_secs(600));
    }

    #[test]
    fn packet_trace_ttl() {
        let args =
            Args::try_parse_from(["trunkline-operator", "--packet-trace-ttl", "1h"]).unwrap_err();
        assert!(args.to_string().contains("--packet-trace-ttl"), "{args}");
        let args =
            Args::try_parse_from(["trunkline-operator", "--packet-trace-ttl", "60m"]).unwrap();
        assert_eq!(args.packet_trace_ttl, Duration::from_secs(3600));
        let e = Args::try_parse_from(["trunkline-operator", "--packet-trace-ttl", "1m"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than 330 s"), "{e}");
    }

    #[test]
    fn encapsulation_priority() {
        let args = Args::try_parse_from([
            "trunkline-operator",
            "--encapsulation-priority",
            "VXLAN,MPLSoUDP",
        ])
        .unwrap();
        assert_eq!(args.encapsulation_priority.to_string(), "VXLAN,MPLSoUDP");
        for bad in ["GRE", "VXLAN,VXLAN", ""] {
            let e = Args::try_parse_from(["trunkline-operator", "--encapsulation-priority", bad])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--encapsulation-priority"), "{bad}: {e}");
        }
    }

    #[test]
    fn leader_election_flags() {
        let args = Args::try_parse_from([
            "trunkline-operator",
            "--leader-elect",
            "--leader-election-namespace",
            "trunkline-system",
            "--leader-election-identity",
            "op-0",
            "--leader-election-lease-duration",
            "4s",
            "--leader-election-renew-deadline",
            "3s",
            "--leader-election-retry-period",
            "500ms",
        ])
        .unwrap();
        let lease = args.lease_config("default").unwrap();
        assert_eq!(lease.namespace, "trunkline-system");
        assert_eq!(lease.name, "trunkline-operator");
        assert_eq!(lease.identity, "op-0");
        assert_eq!(lease.lease_duration, Duration::from_secs(4));
        assert_eq!(lease.renew_deadline, Duration::from_secs(3));
        assert_eq!(lease.retry_period, Duration::from_millis(500));
        assert!(lease.validate().is_ok());
    }

    #[test]
    fn flags() {
        let args = Args::try_parse_from([
            "trunkline-operator",
            "--kubeconfig",
            "/tmp/k",
            "--metrics-addr",
            "127.0.0.1:9000",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(args.kubeconfig, Some(PathBuf::from("/tmp/k")));
        assert_eq!(args.log_format, LogFormat::Json);
    }
}
