//! (d) Open vSwitch's userspace (netdev) datapath with AF_XDP ports,
//! started as plain processes in a run directory of their own (no systemd,
//! no kernel module): ovsdb-server, and ovs-vswitchd in the device's
//! namespace with its poll-mode thread on the device's core.
//!
//! ```text
//!  br0 (datapath_type=netdev)
//!    in  (type=afxdp, xdp-mode=generic, ofport 1)
//!    out (type=afxdp, xdp-mode=generic, ofport 2)
//!  table 0: in_port=1, dl_vlan=100, dl_src=VMI 1, dl_dst=gateway, ip, nw_src=VMI 1, nw_dst=VMI 2
//!             -> mod_vlan_vid:200, mod_dl_src:gateway, mod_dl_dst:VMI 2, dec_ttl, output:2
//!           anything else -> drop
//! ```
//!
//! The poll-mode thread spins while the bridge has ports, so the ports are
//! added before each of this mode's runs and removed after it. If AF_XDP
//! ports cannot be set up, the bridge falls back to `type=system` ports
//! (AF_PACKET) and the report says so and why.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;
use crate::frame::{GATEWAY_MAC, IN_VLAN, OUT_VLAN, VMI1_IP, VMI1_MAC, VMI2_IP, VMI2_MAC};
use crate::netns::Topology;

use super::Mode;

fn mac(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The OpenFlow rules of the benchmark's flow.
pub fn flows() -> Vec<String> {
    vec![
        format!(
            "table=0,priority=100,in_port=1,dl_vlan={IN_VLAN},dl_src={},dl_dst={},ip,nw_src={VMI1_IP},nw_dst={VMI2_IP},\
             actions=mod_vlan_vid:{OUT_VLAN},mod_dl_src:{},mod_dl_dst:{},dec_ttl,output:2",
            mac(VMI1_MAC),
            mac(GATEWAY_MAC),
            mac(GATEWAY_MAC),
            mac(VMI2_MAC)
        ),
        "table=0,priority=0,actions=drop".to_owned(),
    ]
}

/// ovsdb-server and ovs-vswitchd of one benchmark run.
pub struct OvsDevice {
    dir: PathBuf,
    netns: String,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
    /// `afxdp`, or `system` after a fallback.
    port_type: &'static str,
    fallback: Option<String>,
}

impl OvsDevice {
    /// Starts Open vSwitch for mode (d) with its run directory under `dir`;
    /// ovs-vswitchd is pinned to `core`.
    pub fn start(
        topology: &Topology,
        dir: &std::path::Path,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        let dir = dir.join("ovs");
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let mut device = Self {
            dir: dir.clone(),
            netns: topology.namespace(Mode::Ovs.id()),
            ovsdb: None,
            vswitchd: None,
            port_type: "afxdp",
            fallback: None,
        };
        let db = dir.join("conf.db");
        crate::netns::run(
            "ovsdb-tool",
            &[
                "create",
                &db.display().to_string(),
                "/usr/share/openvswitch/vswitch.ovsschema",
            ],
        )
        .map_err(|e| Error::Mode {
            mode: "d",
            message: format!("{e} (is openvswitch-switch installed? scripts/install-deps.sh)"),
        })?;
        let socket = dir.join("db.sock");
        device.ovsdb = Some(device.spawn(
            &[
                "ovsdb-server",
                &db.display().to_string(),
                &format!("--remote=punix:{}", socket.display()),
                &format!("--log-file={}", dir.join("ovsdb-server.log").display()),
                &format!("--pidfile={}", dir.join("ovsdb-server.pid").display()),
            ],
            None,
        )?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(device.error("ovsdb-server did not open its socket within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        device.vsctl(&["--no-wait", "init"])?;
        if let Some(core) = core {
            device.vsctl(&[
                "--no-wait",
                "set",
                "Open_vSwitch",
                ".",
                &format!("other_config:pmd-cpu-mask={:x}", 1u64 << core),
            ])?;
        }
        let netns = device.netns.clone();
        device.vswitchd = Some(device.spawn(
            &[
                "ip",
                "netns",
                "exec",
                &netns,
                "ovs-vswitchd",
                &format!("unix:{}", socket.display()),
                &format!("--log-file={}", dir.join("ovs-vswitchd.log").display()),
                &format!("--pidfile={}", dir.join("ovs-vswitchd.pid").display()),
                &format!("--unixctl={}", dir.join("ovs-vswitchd.ctl").display()),
            ],
            core,
        )?);
        // Without --no-wait, ovs-vsctl waits until ovs-vswitchd applied it.
        device.vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
            "fail_mode=secure",
        ])?;
        for flow in flows() {
            device.ofctl(&["add-flow", "br0", &flow])?;
        }
        // Probe the AF_XDP ports once; fall back to AF_PACKET if they fail.
        if let Err(e) = device.add_ports() {
            let _ = device.remove_ports();
            device.fallback = Some(e.to_string());
            device.port_type = "system";
            device.add_ports()?;
        }
        device.remove_ports()?;
        Ok(device)
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Mode {
            mode: "d",
            message: format!("{} (logs in {})", message.into(), self.dir.display()),
        }
    }

    /// Starts `args` as a child that dies with us (`setpriv --pdeathsig`),
    /// pinned to `core` (`taskset`): both exec, so the child's pid is the
    /// program's.
    fn spawn(&self, args: &[&str], core: Option<usize>) -> Result<Child, Error> {
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--"]);
        if let Some(core) = core {
            command.args(["taskset", "-c", &core.to_string()]);
        }
        let log =
            std::fs::File::create(self.dir.join(format!("{}.out", args[0].replace(' ', "_"))))
                .map_err(Error::io("creating an OVS log"))?;
        command
            .args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(Error::io("OVS log"))?)
            .stderr(log);
        command
            .spawn()
            .map_err(|e| self.error(format!("starting {}: {e}", args.join(" "))))
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let dir = self.dir.display().to_string();
        vec![
            ("OVS_RUNDIR", dir.clone()),
            ("OVS_LOGDIR", dir.clone()),
            ("OVS_DBDIR", dir.clone()),
            ("OVS_SYSCONFDIR", dir),
        ]
    }

    fn tool(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let out = Command::new(program)
            .args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.error(format!("{program}: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(self.error(format!(
                "{program} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn vsctl(&self, args: &[&str]) -> Result<String, Error> {
        let db = format!("--db=unix:{}", self.dir.join("db.sock").display());
        let mut all = vec![db.as_str(), "--timeout=30"];
        all.extend_from_slice(args);
        self.tool("ovs-vsctl", &all)
    }

    fn ofctl(&self, args: &[&str]) -> Result<String, Error> {
        self.tool("ovs-ofctl", args)
    }

    /// Adds ports `in` and `out` to the bridge; fails with the interfaces'
    /// error when Open vSwitch could not open them.
    pub fn add_ports(&mut self) -> Result<(), Error> {
        let ty = format!("type={}", self.port_type);
        let mut args = Vec::new();
        for (port, ofport) in [("in", 1), ("out", 2)] {
            args.extend([
                "--".to_owned(),
                "add-port".to_owned(),
                "br0".to_owned(),
                port.to_owned(),
                "--".to_owned(),
                "set".to_owned(),
                "interface".to_owned(),
                port.to_owned(),
                ty.clone(),
                format!("ofport_request={ofport}"),
            ]);
            if self.port_type == "afxdp" {
                args.push("options:xdp-mode=generic".to_owned());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.vsctl(&args)?;
        for port in ["in", "out"] {
            let error = self.vsctl(&["get", "interface", port, "error"])?;
            let error = error.trim();
            if !error.is_empty() && error != "[]" {
                return Err(self.error(format!("port {port} ({}): {error}", self.port_type)));
            }
        }
        Ok(())
    }

    /// Removes the ports (the poll-mode thread then stops spinning).
    pub fn remove_ports(&mut self) -> Result<(), Error> {
        self.vsctl(&[
            "--if-exists",
            "del-port",
            "br0",
            "in",
            "--",
            "--if-exists",
            "del-port",
            "br0",
            "out",
        ])?;
        Ok(())
    }

    /// ovs-vswitchd's process id.
    pub fn pid(&self) -> Option<u32> {
        self.vswitchd.as_ref().map(Child::id)
    }

    /// What the report says about this mode.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "(d) is Open vSwitch {} (Debian's, built with AF_XDP), userspace datapath, {} ports (generic XDP, copy mode), its poll-mode thread busy-polling on the device's core; one exact-match OpenFlow rule per flow (a /32 host route, not an LPM), and dec_ttl. Forwarded frames go through its flow caches (EMC / megaflow).",
            self.version(),
            if self.port_type == "afxdp" {
                "`type=afxdp`"
            } else {
                "`type=system` (AF_PACKET)"
            }
        )];
        if let Some(reason) = &self.fallback {
            notes.push(format!(
                "(d) FALLBACK: Open vSwitch's AF_XDP ports could not be set up here ({reason}); it ran with `type=system` ports instead."
            ));
        }
        notes
    }

    fn version(&self) -> String {
        self.tool("ovs-vswitchd", &["--version"])
            .ok()
            .and_then(|v| {
                v.lines()
                    .next()
                    .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
            })
            .unwrap_or_default()
    }
}

impl Drop for OvsDevice {
    fn drop(&mut self) {
        for child in [self.vswitchd.take(), self.ovsdb.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
