//! FRR (zebra + bgpd) in a lab namespace: the independent BGP
//! implementation the L3VPN tests, `make demo-l3vpn` and the
//! route-propagation benchmark peer with (usually in a DC gateway's
//! namespace, see [`crate::DcGatewaySpec`]).
//!
//! Each instance runs in its own FRR path space (`-N <pathspace>`:
//! `/etc/frr/<pathspace>`, `/var/run/frr/<pathspace>`), so several can run
//! at once beside a system FRR; `vtysh -N <pathspace>` reaches it.
//!
//! ```text
//!   ip netns exec <p>-<at> /usr/lib/frr/zebra -N <ps> -S --pid_file=/var/run/frr/<ps>/zebra.pid
//!   ip netns exec <p>-<at> /usr/lib/frr/bgpd  -N <ps> -S --config_file=/etc/frr/<ps>/bgpd.conf
//!   logs: $TMPDIR/<ps>/{zebra,bgpd}.log
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Lab, LabError};

/// The FRR daemons started, in order (zebra first: bgpd connects to it).
const DAEMONS: [&str; 2] = ["zebra", "bgpd"];

/// A running FRR; dropping it stops the daemons unless [`Frr::keep`] was
/// called.
#[derive(Debug)]
pub struct Frr {
    netns: String,
    pathspace: String,
    children: Vec<Child>,
    log_dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn run_dir(pathspace: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/frr/{pathspace}"))
}

fn etc_dir(pathspace: &str) -> PathBuf {
    PathBuf::from(format!("/etc/frr/{pathspace}"))
}

impl Frr {
    /// Starts zebra and bgpd in namespace `at` of `lab` under path space
    /// `pathspace` with bgpd configuration `config` (an FRR from an earlier
    /// run with the same path space is stopped first).
    pub fn start(lab: &Lab, at: &str, pathspace: &str, config: &str) -> Result<Frr, LabError> {
        Self::stop(pathspace)?;
        let (run, etc) = (run_dir(pathspace), etc_dir(pathspace));
        let log_dir = std::env::temp_dir().join(pathspace);
        for dir in [&run, &etc, &log_dir] {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let write = |name: &str, text: &str| {
            let path = etc.join(name);
            std::fs::write(&path, text).map_err(io(&path))
        };
        write("bgpd.conf", config)?;
        write("zebra.conf", "hostname dcgw\n")?;
        write("vtysh.conf", "")?;
        let netns = lab.namespace(at);
        let mut frr = Frr {
            netns,
            pathspace: pathspace.to_owned(),
            children: Vec::new(),
            log_dir,
        };
        for daemon in DAEMONS {
            let log_path = frr.log_dir.join(format!("{daemon}.log"));
            let log = std::fs::File::create(&log_path).map_err(io(&log_path))?;
            let err = log.try_clone().map_err(io(&log_path))?;
            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &frr.netns,
                    &format!("/usr/lib/frr/{daemon}"),
                ])
                // -S: stay root (FRR's own users and groups are not set up
                // for a private path space).
                .args(["-N", pathspace, "-S"])
                .arg(format!("--pid_file={}/{daemon}.pid", run.display()))
                .arg(format!("--config_file={}/{daemon}.conf", etc.display()))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|source| LabError::Spawn {
                    program: format!("/usr/lib/frr/{daemon} (Debian package frr)"),
                    source,
                })?;
            frr.children.push(child);
            // bgpd retries its zebra connection, but starting it once zebra
            // is up (its pid file written) saves that retry's second. Past
            // the deadline, go on: bgpd's retry (and the caller's wait for
            // the session) still covers a slow zebra.
            let pid_file = run.join(format!("{daemon}.pid"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while !pid_file.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(frr)
    }

    /// Stops the FRR of `pathspace` started by an earlier process (by its
    /// pid files) and removes its path space; nothing running is not an
    /// error.
    pub fn stop(pathspace: &str) -> Result<(), LabError> {
        let run = run_dir(pathspace);
        for daemon in DAEMONS {
            let pid_file = run.join(format!("{daemon}.pid"));
            let Ok(text) = std::fs::read_to_string(&pid_file) else {
                continue;
            };
            let pid = text.trim();
            // Only a process that still is this daemon (a pid may be reused).
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == daemon {
                let _ = Command::new("kill")
                    .args(["-9", pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for dir in [run, etc_dir(pathspace)] {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LabError::Io {
                        path: dir,
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Leaves the daemons running after this value is gone (until
    /// [`Frr::stop`] with its path space), e.g. for the lab's command line.
    pub fn keep(mut self) {
        self.children.clear();
    }

    /// Its path space (`vtysh -N <pathspace>`).
    pub fn pathspace(&self) -> &str {
        &self.pathspace
    }

    /// The directory of the daemons' logs.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// `vtysh -c command`'s output (empty when vtysh fails).
    pub fn vtysh(&self, command: &str) -> String {
        Command::new("ip")
            .args(["netns", "exec", &self.netns, "vtysh", "-N", &self.pathspace])
            .args(["-c", command])
            .stdin(Stdio::null())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }

    /// FRR's VPN routes of `afi` (`ipv4`, `ipv6`): (RD, prefix) -> the
    /// best path's JSON.
    pub fn vpn_routes_of(&self, afi: &str) -> BTreeMap<(String, String), Value> {
        let text = self.vtysh(&format!("show bgp {afi} vpn json"));
        vpn_routes_from(&serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Detail of one VPN route (`show bgp ipv4|ipv6 vpn rd RD PREFIX
    /// json`, by the prefix's family).
    pub fn vpn_route_detail(&self, rd: &str, prefix: &str) -> Value {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        serde_json::from_str(&self.vtysh(&format!("show bgp {afi} vpn rd {rd} {prefix} json")))
            .unwrap_or(Value::Null)
    }

    /// Prefixes received from neighbour `peer` in the VPN family of `afi`
    /// (`show bgp <afi> vpn summary json`: `pfxRcd`, what FRR accepted),
    /// `None` when FRR does not answer, has no such neighbour or its
    /// session is not Established. Cheap at any table size, unlike listing
    /// the routes.
    pub fn vpn_prefixes_received(&self, afi: &str, peer: &str) -> Option<u64> {
        let text = self.vtysh(&format!("show bgp {afi} vpn summary json"));
        prefixes_received(&serde_json::from_str(&text).ok()?, peer)
    }
}

/// (RD, prefix) -> best path of `show bgp <afi> vpn json`.
fn vpn_routes_from(all: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let Some(rds) = all["routes"]["routeDistinguishers"].as_object() else {
        return out;
    };
    for (rd, prefixes) in rds {
        for (prefix, paths) in prefixes.as_object().into_iter().flatten() {
            let best = paths
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["bestpath"] == true || p["valid"] == true)
                .cloned()
                .unwrap_or(Value::Null);
            out.insert((rd.clone(), prefix.clone()), best);
        }
    }
    out
}

/// `pfxRcd` of neighbour `peer`, Established, in a `show bgp ... summary json` answer
/// (FRR 8 nests it under the family's key, e.g. `ipv4Vpn`, or not at all
/// when one family was asked for).
fn prefixes_received(summary: &Value, peer: &str) -> Option<u64> {
    let peers = if summary["peers"].is_object() {
        &summary["peers"]
    } else {
        summary
            .as_object()?
            .values()
            .map(|family| &family["peers"])
            .find(|p| p.is_object())?
    };
    let peer = &peers[peer];
    (peer["state"] == "Established")
        .then(|| peer["pfxRcd"].as_u64())
        .flatten()
}

impl Drop for Frr {
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The daemons run under `ip netns exec`, which execs them: the pid
        // files named the same processes; remove the path space.
        let _ = std::fs::remove_dir_all(run_dir(&self.pathspace));
        let _ = std::fs::remove_dir_all(etc_dir(&self.pathspace));
        eprintln!("FRR logs: {}", self.log_dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_are_keyed_by_rd_and_prefix_with_their_best_path() {
        let answer = json!({"routes": {"routeDistinguishers": {
            "10.0.0.1:5": {"192.168.1.10/32": [{"valid": true, "bestpath": true, "nexthops": [{"ip": "10.0.0.1"}]}]},
            "65001:1": {"0.0.0.0/1": [{"valid": false}, {"valid": true}]}
        }}});
        let routes = vpn_routes_from(&answer);
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[&("10.0.0.1:5".into(), "192.168.1.10/32".into())]["nexthops"][0]["ip"],
            "10.0.0.1"
        );
        assert_eq!(
            routes[&("65001:1".into(), "0.0.0.0/1".into())],
            json!({"valid": true})
        );
        assert!(vpn_routes_from(&Value::Null).is_empty());
    }

    #[test]
    fn prefixes_received_are_read_nested_or_flat() {
        let nested =
            json!({"ipv4Vpn": {"peers": {"10.0.0.100": {"pfxRcd": 2048, "state": "Established"}}}});
        assert_eq!(prefixes_received(&nested, "10.0.0.100"), Some(2048));
        let flat = json!({"peers": {"10.0.0.100": {"pfxRcd": 7, "state": "Established"},
                                    "10.0.0.101": {"pfxRcd": 0, "state": "Active"}}});
        assert_eq!(prefixes_received(&flat, "10.0.0.100"), Some(7));
        assert_eq!(
            prefixes_received(&flat, "10.0.0.101"),
            None,
            "not Established"
        );
        assert_eq!(prefixes_received(&flat, "10.0.0.102"), None);
        assert_eq!(prefixes_received(&json!({}), "10.0.0.100"), None);
    }
}
