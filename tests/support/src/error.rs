//! Errors of the test rig, each saying which step failed and where to look.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// What went wrong while starting, using or talking to the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `scripts/cluster.sh up`, `down` or `import` failed; its own messages went to stderr.
    #[error("`scripts/cluster.sh {action} --state {}` failed ({status}); see its output above and the logs in that dir", state.display())]
    Script {
        /// `up`, `down` or `import`.
        action: &'static str,
        /// The state dir handed to the script.
        state: PathBuf,
        /// How the script exited.
        status: ExitStatus,
    },
    /// `scripts/cluster.sh up` succeeded but its last line was not `export KUBECONFIG=<path>`.
    #[error(
        "`scripts/cluster.sh up` ended with {last_line:?} instead of `export KUBECONFIG=<path>`"
    )]
    ClusterOutput {
        /// The last line the script printed on stdout.
        last_line: String,
    },
    /// A program could not be run at all.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// A kubectl invocation exited non-zero.
    #[error("kubectl {args} failed ({status}): {stderr}")]
    Kubectl {
        /// The arguments, space separated.
        args: String,
        /// How kubectl exited.
        status: ExitStatus,
        /// What kubectl printed on stderr.
        stderr: String,
    },
    /// A rig tool other than kubectl (helm) exited non-zero.
    #[error("{tool} {args} failed ({status}): {stderr}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// The arguments, space separated.
        args: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An openssl invocation (client certificate for a test user) exited non-zero.
    #[error("openssl {step} failed ({status}): {stderr}")]
    Openssl {
        /// Which step: key, csr or sign.
        step: &'static str,
        /// How openssl exited.
        status: ExitStatus,
        /// What openssl printed on stderr.
        stderr: String,
    },
    /// A file of the rig could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The admin kubeconfig could not be loaded.
    #[error("kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// Why kube could not use it.
        source: kube::config::KubeconfigError,
    },
    /// A request to the API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The API server answered a TokenRequest without a token.
    #[error("TokenRequest for ServiceAccount {namespace}/{name} returned no token")]
    NoToken {
        /// Namespace of the ServiceAccount.
        namespace: String,
        /// Name of the ServiceAccount.
        name: String,
    },
    /// A user or group name that cannot go into a certificate subject.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the name is for (user, group, prefix).
        what: &'static str,
        /// The name given.
        value: String,
        /// What would be valid.
        reason: &'static str,
    },
    /// A condition did not become true in time.
    #[error("timed out after {timeout:?} waiting for {what}; last observed: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound that ran out.
        timeout: Duration,
        /// The last reason the probe gave for not being done.
        last: String,
    },
}

/// The HTTP status code of an error the API server returned (403, 404, 409,
/// 422, ...), or `None` for errors that are not API answers.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
