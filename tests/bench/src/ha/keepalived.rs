//! The baseline no one here wrote: two Linux routers running keepalived
//! (Debian's) VRRPv3 for the same gateway addresses, with the same advert
//! interval as the trunkline group's hello, on untagged LANs (this kernel
//! has no 802.1Q module).
//!
//! ```text
//!   k1 192.168.50.10 ── switch "lana" ──┬── kr1 eth1 .2 (priority 200) ── eth2 .2 ──┬── switch "lanb" ── k2 192.168.51.10
//!   (gateway .1: VIP)                   └── kr2 eth1 .3 (priority 100) ── eth2 .3 ──┘                  (gateway .1: VIP)
//!   one sync group: both VIPs move together; preempt (the default)
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trunkline_test_support::lab::{InstanceSpec, Lab, LabSpec, NodeSpec, SwitchSpec, TrunkSpec};

use crate::Error;

/// A failure of the baseline's master router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Both LAN links of the master down: the router is gone for the LANs
    /// (what a crashed node looks like).
    RouterDown,
    /// The master's link to LAN A down (the sync group moves both).
    LinkDown,
}

impl Failure {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Failure::RouterDown => "router down (both links)",
            Failure::LinkDown => "LAN link down",
        }
    }
}

/// The running baseline.
pub(super) struct Baseline {
    pub lab: Lab,
    daemons: Vec<Child>,
    dir: PathBuf,
}

fn config(router: &str, priority: u8, advert: Duration) -> String {
    let advert = format!("{:.2}", advert.as_secs_f64());
    format!(
        r#"global_defs {{
  router_id {router}
  vrrp_version 3
  enable_script_security
}}
vrrp_sync_group G {{
  group {{
    A
    B
  }}
}}
vrrp_instance A {{
  state BACKUP
  interface eth1
  virtual_router_id 51
  priority {priority}
  advert_int {advert}
  virtual_ipaddress {{
    192.168.50.1/24
  }}
}}
vrrp_instance B {{
  state BACKUP
  interface eth2
  virtual_router_id 52
  priority {priority}
  advert_int {advert}
  virtual_ipaddress {{
    192.168.51.1/24
  }}
}}
"#
    )
}

impl Baseline {
    /// The LANs, the routers and their keepalived, with `advert` as the
    /// VRRP advertisement interval; returns once kr1 is master and k1 and
    /// k2 talk.
    pub async fn start(dir: &Path, advert: Duration) -> Result<Baseline, Error> {
        let spec = LabSpec::new()
            .switch(SwitchSpec::new("lana"))
            .switch(SwitchSpec::new("lanb"))
            .node(
                NodeSpec::new("kr1")
                    .trunk_spec(TrunkSpec::new("eth1").switch("lana"))
                    .trunk_spec(TrunkSpec::new("eth2").switch("lanb")),
            )
            .node(
                NodeSpec::new("kr2")
                    .trunk_spec(TrunkSpec::new("eth1").switch("lana"))
                    .trunk_spec(TrunkSpec::new("eth2").switch("lanb")),
            )
            .instance(
                InstanceSpec::new("k1", "kr1", "eth1")
                    .ip("192.168.50.10/24")
                    .gateway("192.168.50.1"),
            )
            .instance(
                InstanceSpec::new("k2", "kr1", "eth2")
                    .ip("192.168.51.10/24")
                    .gateway("192.168.51.1"),
            );
        let lab = Lab::up(spec).map_err(|e| Error::Mode {
            mode: "keepalived",
            message: e.to_string(),
        })?;
        let dir = dir.join("keepalived");
        std::fs::create_dir_all(&dir).map_err(Error::io("the keepalived directory"))?;
        let mut baseline = Baseline {
            lab,
            daemons: Vec::new(),
            dir,
        };
        for (router, host, priority) in [("kr1", 2, 200u8), ("kr2", 3, 100)] {
            for (port, net) in [("eth1", 50), ("eth2", 51)] {
                baseline.sh(
                    router,
                    &format!("ip addr add 192.168.{net}.{host}/24 dev {port}"),
                )?;
            }
            baseline.sh(router, "sysctl -qw net.ipv4.ip_forward=1")?;
            let conf = baseline.dir.join(format!("{router}.conf"));
            std::fs::write(&conf, config(router, priority, advert))
                .map_err(Error::io("a keepalived configuration"))?;
            let ns = baseline.lab.namespace(router);
            let pid = |what: &str| baseline.dir.join(format!("{router}-{what}.pid"));
            let log = std::fs::File::create(baseline.dir.join(format!("{router}.log")))
                .map_err(Error::io("a keepalived log"))?;
            let daemon = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", "ip", "netns", "exec", &ns])
                .args(["keepalived", "--dont-fork", "--log-console", "--vrrp"])
                .arg("--use-file")
                .arg(&conf)
                .arg("--pid")
                .arg(pid("main"))
                .arg("--vrrp_pid")
                .arg(pid("vrrp"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(Error::io("a keepalived log"))?)
                .stderr(log)
                .spawn()
                .map_err(Error::io("starting keepalived"))?;
            baseline.daemons.push(daemon);
        }
        baseline.wait_master(Duration::from_secs(60)).await?;
        Ok(baseline)
    }

    fn sh(&self, name: &str, line: &str) -> Result<String, Error> {
        let out = self.lab.sh(name, line);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Command {
                command: format!("{line} in {name}"),
                message: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Waits until kr1 holds both VIPs and k1 and k2 ping each other.
    pub async fn wait_master(&self, limit: Duration) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let held = self.sh("kr1", "ip -4 -o addr show").unwrap_or_default();
            let master = held.contains("192.168.50.1/24") && held.contains("192.168.51.1/24");
            if master && self.lab.ping("k1", "192.168.51.10", 1).0 {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(Error::Timeout {
                    what: format!("kr1 VRRP master and k1 <-> k2 (kr1 holds: {held})"),
                    seconds: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Injects `failure` on kr1.
    pub fn fail(&self, failure: Failure) {
        let ports: &[&str] = match failure {
            Failure::RouterDown => &["eth1", "eth2"],
            Failure::LinkDown => &["eth1"],
        };
        let line: Vec<String> = ports
            .iter()
            .map(|p| format!("ip link set {p} down"))
            .collect();
        let _ = self.lab.sh("kr1", &line.join("; "));
    }

    /// Undoes `failure` and waits until kr1 is master again.
    pub async fn restore(&self, limit: Duration) -> Result<(), Error> {
        let _ = self
            .lab
            .sh("kr1", "ip link set eth1 up; ip link set eth2 up");
        self.wait_master(limit).await
    }
}

impl Drop for Baseline {
    /// SIGTERM first: keepalived then stops its VRRP child itself.
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        for daemon in &mut self.daemons {
            if let Ok(pid) = i32::try_from(daemon.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(daemon.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }
}
