//! The network-namespace lab of `scripts/lab.sh` for tests: a gateway-node
//! namespace with trunk port `eth1`, a switch, and remote instances behind
//! VLAN access ports. Removed when dropped (also on panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A remote instance of the lab.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Short name (letters and digits), used in its namespace's name.
    pub name: &'static str,
    /// The VLAN its access port tags (0: untagged).
    pub vlan: u16,
    /// Address with prefix length, e.g. `192.168.1.10/24`.
    pub cidr: &'static str,
    /// Its MAC.
    pub mac: &'static str,
    /// Its default gateway.
    pub gateway: &'static str,
}

/// A running lab.
pub struct Lab {
    prefix: String,
    script: PathBuf,
}

impl Lab {
    /// Builds a lab with these instances, under a prefix unique to this
    /// process and call.
    pub fn up(instances: &[Instance]) -> Self {
        Self::up_with_public(instances, None)
    }

    /// Like [`Lab::up`], plus a public host on the gateway node's fabric
    /// port: `public` is `GW/LEN,HOST/LEN[,ROUTE...]` (see `scripts/lab.sh`).
    pub fn up_with_public(instances: &[Instance], public: Option<&str>) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "l{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lab.sh");
        let lab = Self { prefix, script };
        let mut args = vec!["up".to_owned(), "--prefix".to_owned(), lab.prefix.clone()];
        for i in instances {
            args.push("--instance".to_owned());
            args.push(format!(
                "{}:{}:{}:{}:{}",
                i.name, i.vlan, i.cidr, i.mac, i.gateway
            ));
        }
        if let Some(public) = public {
            args.push("--public".to_owned());
            args.push(public.to_owned());
        }
        let out = Command::new(&lab.script)
            .args(&args)
            .output()
            .expect("scripts/lab.sh runs");
        assert!(
            out.status.success(),
            "lab.sh up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    /// The prefix of every namespace of the lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of the namespace of `node` (`gw`, `sw` or an instance name).
    pub fn namespace(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// The path of the gateway node's namespace, for `--port-netns`.
    pub fn gateway_netns(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.namespace("gw")))
    }

    /// Runs `args` in the namespace of `node`.
    pub fn exec(&self, node: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.namespace(node)])
            .args(args)
            .output()
            .expect("ip netns exec runs")
    }

    /// Runs a shell command line in the namespace of `node`.
    pub fn sh(&self, node: &str, line: &str) -> Output {
        self.exec(node, &["sh", "-c", line])
    }

    /// `ping -c count` from instance `from` to `to`: (success, ping's output).
    pub fn ping(&self, from: &str, to: &str, count: u32) -> (bool, String) {
        let out = self.exec(
            from,
            &["ping", "-c", &count.to_string(), "-i", "0.2", "-W", "1", to],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Sends `payload` over TCP from instance `from` to `to:port`, where
    /// instance `server` listens; returns what the server received.
    pub fn tcp(
        &self,
        from: &str,
        server: &str,
        to: &str,
        port: u16,
        payload: &str,
    ) -> Result<String, String> {
        let listen = format!("timeout 10 nc -l -N {port}");
        let listener = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace(server),
                "sh",
                "-c",
                &listen,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        let send = format!("printf '%s' '{payload}' | timeout 10 nc -N -w 3 {to} {port}");
        let sent = self.sh(from, &send);
        // The listener ends by itself: with the client's EOF, or its timeout.
        let received = listener.wait_with_output().map_err(|e| e.to_string())?;
        if !sent.status.success() {
            return Err(format!(
                "client failed: {}",
                String::from_utf8_lossy(&sent.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&received.stdout).into_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["down", "--prefix", &self.prefix])
            .output();
    }
}
