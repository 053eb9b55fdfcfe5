//! Errors of the lab, each naming the command, file or part that failed.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::spec::SpecError;

/// What went wrong while building, growing, using or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The spec (or the change to a running lab) is not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A prefix that cannot name the lab's namespaces.
    #[error("lab prefix {prefix:?}: 1 to 12 lower-case letters and digits, starting with a letter")]
    Prefix {
        /// The prefix given.
        prefix: String,
    },
    /// A command (`ip`, `tc`, `bridge`, `ethtool`, `clang`, `tshark`) exited non-zero.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A program could not be started at all (not installed?).
    #[error(
        "could not run {program}: {source} (scripts/install-deps.sh installs what the lab needs)"
    )]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file of the lab (state, capture, tagger object) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The saved state of a lab does not read.
    #[error("lab state {}: {reason}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// Why it does not read.
        reason: String,
    },
    /// A lab, or a part of it, that does not exist.
    #[error("lab {prefix}: {what}")]
    NotFound {
        /// The lab.
        prefix: String,
        /// What is missing.
        what: String,
    },
    /// Something awaited did not happen in time.
    #[error("timed out after {timeout:?} waiting for {what}; last observed: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        timeout: Duration,
        /// The last thing seen.
        last: String,
    },
    /// tshark's output did not read as expected.
    #[error("decoding {}: {reason}", path.display())]
    Decode {
        /// The capture file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
