//! The lab's only way to change the system: one `ip`/`tc`/`bridge`/
//! `ethtool`/`sysctl` process per step, so that what the lab does reads as
//! the command lines an operator would type, and a failing step's error is
//! that command line with its stderr.

use std::process::{Command, Stdio};

use crate::LabError;

/// Runs `program args...`; its stdout, or [`LabError::Command`].
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `ip args...` (use `-n <ns>` in `args` to act in a namespace).
pub(crate) fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// `program args...` inside namespace `ns` (`ip netns exec`), for tools
/// without a `-n` option (ethtool, sysctl).
pub(crate) fn in_netns(ns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// The namespaces whose names start with `<prefix>-`.
pub(crate) fn namespaces_of(prefix: &str) -> Vec<String> {
    let head = format!("{prefix}-");
    let mut found: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&head))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_names_itself_and_its_stderr() {
        let err = run("sh", &["-c", "echo oops >&2; exit 3"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sh -c") && err.contains("oops"), "{err}");
        let err = run("no-such-program-here", &[]).unwrap_err().to_string();
        assert!(err.contains("could not run no-such-program-here"), "{err}");
    }
}
