//! gobgpd dies with the speaker, however the speaker ends (SIGKILL, the
//! OOM killer, a panic that aborts): gobgpd is started through this very
//! binary, which asks the kernel for a parent-death signal (`prctl
//! PR_SET_PDEATHSIG`, through `nix`'s safe wrapper) and then *replaces
//! itself* with gobgpd (`execve`, which keeps the signal for a program
//! that gains no privilege). No `pre_exec` hook, so no `unsafe`, and no
//! `setpriv` needed in the image (distroless has none).
//!
//! ```text
//!   trunkline-bgp (speaker, pid P)
//!     └─ spawn /proc/self/exe --exec-dying-with-parent P -- [nsenter --net=N --] gobgpd ARGS
//!          (same pid from here on)
//!          1. prctl(PR_SET_PDEATHSIG, SIGKILL)
//!          2. getppid() == P ? else exit: P died before step 1
//!          3. execve(nsenter | gobgpd)     (nsenter execs gobgpd in turn)
//!   P ends ──kernel──> SIGKILL to gobgpd
//! ```
//!
//! The kernel sends the signal when the *thread* that spawned the child
//! ends: the speaker spawns from its runtime's threads, which live as long
//! as the process.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// The argument that makes `trunkline-bgp` the shim (never a flag of the
/// speaker itself).
pub const SHIM_ARG: &str = "--exec-dying-with-parent";

/// `program args...` run through the shim of this binary, dying with
/// this process.
pub fn command(program: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("/proc/self/exe");
    command
        .arg(SHIM_ARG)
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(program);
    command
}

/// Why the shim could not run its program.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The arguments are not `<parent pid> -- <program> [args]`.
    #[error("usage: trunkline-bgp {SHIM_ARG} <parent pid> -- <program> [args...]")]
    Usage,
    /// The kernel refused the parent-death signal.
    #[error("prctl(PR_SET_PDEATHSIG): {0}")]
    Prctl(nix::Error),
    /// The parent died before the signal was set.
    #[error("the parent {expected} is gone (parent now {actual}): not starting")]
    Orphaned {
        /// The speaker's pid.
        expected: u32,
        /// Who the parent is now.
        actual: i32,
    },
    /// The program could not be executed.
    #[error("executing {program}: {source}")]
    Exec {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// When this process was started as the shim (`args` without the program
/// name begin with [`SHIM_ARG`]), sets its parent-death signal and
/// replaces itself with the program: returns only on failure, with the
/// exit code. `None` for an ordinary start.
pub fn run_if_shim(args: &[OsString]) -> Option<ExitCode> {
    if args.first().is_none_or(|a| a != SHIM_ARG) {
        return None;
    }
    let error = exec(&args[1..]);
    eprintln!("trunkline-bgp {SHIM_ARG}: {error}");
    Some(ExitCode::from(127))
}

/// Sets the signal, checks the parent, executes the program.
fn exec(args: &[OsString]) -> ShimError {
    let (Some(parent), Some(separator), Some(program)) = (args.first(), args.get(1), args.get(2))
    else {
        return ShimError::Usage;
    };
    let Some(expected) = parent.to_str().and_then(|p| p.parse::<u32>().ok()) else {
        return ShimError::Usage;
    };
    if separator != "--" {
        return ShimError::Usage;
    }
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return ShimError::Prctl(e);
    }
    // The parent may have died between fork and prctl: then the signal
    // will never come, and the parent is someone else (init, a reaper).
    let actual = nix::unistd::getppid().as_raw();
    if u32::try_from(actual).ok() != Some(expected) {
        return ShimError::Orphaned { expected, actual };
    }
    let source = std::os::unix::process::CommandExt::exec(
        std::process::Command::new(program).args(&args[3..]),
    );
    ShimError::Exec {
        program: Path::new(program).display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_the_shim_argument_makes_the_shim_and_bad_use_says_how() {
        assert!(run_if_shim(&args(&["--router-id", "10.0.0.1"])).is_none());
        assert!(run_if_shim(&[]).is_none());
        for bad in [
            &[][..],
            &["x", "--", "gobgpd"][..],
            &["1", "gobgpd"][..],
            &["1", "--"][..],
        ] {
            assert!(matches!(exec(&args(bad)), ShimError::Usage), "{bad:?}");
        }
    }
}
