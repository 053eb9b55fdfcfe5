//! Errors of the operator, each with a short label for the
//! `trunkline_operator_reconcile_errors_total` metric.

use std::net::SocketAddr;

/// What went wrong, naming the object or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Kubernetes client: the kubeconfig given with `--kubeconfig`, or
    /// the environment, could not be used.
    #[error("{0}")]
    Client(#[from] trunkline_client::Error),
    /// A watch failed; the watcher retries with back-off.
    #[error("watching {kind}s: {source}")]
    Watch {
        /// The kind watched.
        kind: &'static str,
        /// The watcher's error.
        source: kube::runtime::watcher::Error,
    },
    /// The status of an object could not be written.
    #[error("writing the status of {object}: {source}")]
    StatusWrite {
        /// The object (`Kind namespace/name`).
        object: String,
        /// The API error.
        source: kube::Error,
    },
    /// The node labels of an object could not be written.
    #[error("writing the node labels of {object}: {source}")]
    LabelWrite {
        /// The object (`Kind namespace/name`).
        object: String,
        /// The API error.
        source: kube::Error,
    },
    /// A status could not be turned into JSON (a bug).
    #[error("encoding the status of {object}: {source}")]
    Encode {
        /// The object.
        object: String,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// An event could not be published.
    #[error("publishing an event for {object}: {source}")]
    Event {
        /// The regarding object.
        object: String,
        /// The API error.
        source: kube::Error,
    },
    /// The HTTP server for metrics and probes could not run.
    #[error("serving metrics and probes on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A store's writer went away before the store synced (a bug).
    #[error("the {kind} store was dropped before its first list completed")]
    StoreDropped {
        /// The kind of the store.
        kind: &'static str,
    },
    /// Installing the signal handlers failed.
    #[error("installing signal handlers: {0}")]
    Signal(#[source] std::io::Error),
    /// The leader election flags break a timing rule.
    #[error("leader election: {0}")]
    LeaderElectionConfig(String),
    /// Reading or writing the leader election Lease failed.
    #[error("leader election Lease {lease}: {source}")]
    Lease {
        /// The Lease (`namespace/name`).
        lease: String,
        /// The API error.
        source: kube::Error,
    },
}

impl Error {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Client(_) => "config",
            Error::Watch { .. } => "watch",
            Error::StatusWrite { source, .. } => match source {
                kube::Error::Api(s) if s.code == 409 => "status_conflict",
                kube::Error::Api(s) if s.code == 403 => "status_forbidden",
                kube::Error::Api(s) if s.code == 404 => "status_not_found",
                _ => "status_write",
            },
            Error::LabelWrite { source, .. } => match source {
                kube::Error::Api(s) if s.code == 403 => "label_forbidden",
                _ => "label_write",
            },
            Error::Encode { .. } => "encode",
            Error::Event { .. } => "event",
            Error::Http { .. } => "http",
            Error::StoreDropped { .. } => "store",
            Error::Signal(_) => "signal",
            Error::LeaderElectionConfig(_) => "config",
            Error::Lease { .. } => "lease",
        }
    }
}
