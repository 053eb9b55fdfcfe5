//! `kubectl trunkline`: ask a gateway node what it does with a packet, watch
//! its real verdicts, read its status; everything through the API server.
//!
//! ```text
//!  kubectl trunkline trace --node gw1 --port eth1 --vlan 100 ...
//!     -> create PacketTrace (mode Trace)        needs the trace role
//!     -> watch it until status.conditions Ready is set, or --timeout
//!     -> print the stages and the verdict (text, or -o json)
//!  kubectl trunkline observe --node gw1 --duration 10 ...
//!     -> create PacketTrace (mode Observe), wait duration + margin, print samples
//!  kubectl trunkline status --node gw1
//!     -> get PhysicalRouter gw1: tables version and sizes, ports, backend,
//!        what the node left out and why (read-only: the status-viewer role)
//! ```
//!
//! The user's kubeconfig (or `--kubeconfig`, `KUBECONFIG`) and its RBAC
//! decide what is allowed; the plugin opens no connection to a node.

pub mod cli;
pub mod render;
pub mod request;

pub use cli::{Cli, Command, Output};

/// What can go wrong, for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No client could be built from the kubeconfig.
    #[error("connecting to the API server: {0}")]
    Client(#[from] trunkline_client::Error),
    /// The API server refused or failed a request.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// No answer before the deadline.
    #[error(
        "no answer from node {node} within {seconds} s (PacketTrace {name} left for the operator to expire): is the node's dataplane running?"
    )]
    Timeout {
        /// The node.
        node: String,
        /// The PacketTrace.
        name: String,
        /// The deadline.
        seconds: u64,
    },
    /// The node answered that it could not trace the packet.
    #[error("node {node} could not answer ({reason}): {message}")]
    Refused {
        /// The node.
        node: String,
        /// The condition's reason.
        reason: String,
        /// The condition's message.
        message: String,
    },
    /// A flag does not describe a packet.
    #[error("{0}")]
    Flag(String),
    /// JSON output failed.
    #[error("rendering JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Run one command; returns what to print.
pub async fn run(cli: Cli) -> Result<String, Error> {
    let client = trunkline_client::client(cli.kubeconfig.as_deref()).await?;
    match cli.command {
        Command::Trace(args) => {
            let (name, trace) = request::trace(&client, &args).await?;
            render::trace(&name, &trace, args.output)
        }
        Command::Observe(args) => {
            let (name, trace) = request::observe(&client, &args).await?;
            render::observe(&name, &trace, args.output)
        }
        Command::Status(args) => {
            let router = request::router(&client, &args.node).await?;
            render::status(&router, args.output)
        }
    }
}
