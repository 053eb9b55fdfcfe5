//! Errors of the benchmark: each says which step failed and why, so that a
//! mode that cannot run is reported as such rather than as a zero rate.

use std::io;

/// Something the benchmark could not do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command (ip, tc, ethtool, ovs-vsctl, ...) failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr, or why it could not start.
        message: String,
    },
    /// Loading, attaching or running a BPF program failed.
    #[error("BPF {what}: {message}")]
    Bpf {
        /// Which step.
        what: &'static str,
        /// What the kernel or loader said.
        message: String,
    },
    /// A file or system call failed.
    #[error("{what}: {source}")]
    Io {
        /// Which step.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// A device under test could not be set up or stopped working.
    #[error("mode {mode}: {message}")]
    Mode {
        /// The mode's short label.
        mode: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The control plane rig failed.
    #[error("control plane: {0}")]
    ControlPlane(#[from] trunkline_test_support::Error),
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The network lab (the BGP peering's namespaces, FRR) failed.
    #[error("lab: {0}")]
    Lab(#[from] trunkline_test_support::lab::LabError),
    /// The plot could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
    /// A condition was not met in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// The options make no sense.
    #[error("invalid options: {0}")]
    Options(String),
}

impl Error {
    /// An [`Error::Io`] for step `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
