//! Processes a test runs: the operator and node dataplane binaries of the
//! workspace, built once per test binary, started with a log file of their
//! own, killed when the test ends (also on panic), with the end of their log
//! printed when the test fails.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::control_plane::test_logs_dir_in;
use crate::{eventually, unique_name};

/// Builds `bin` of workspace package `package` (debug profile) once per test
/// binary and returns the executable's path.
///
/// # Panics
/// When the build fails: every test needing the binary fails with it.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut build = Command::new(cargo);
    without_test_env(&mut build);
    let out = build
        .current_dir(&root)
        .args([
            "build",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for {bin}"));
    built.insert(bin.to_owned(), path.clone());
    path
}

/// Whether `name` is one of the variables cargo sets for a test binary it
/// runs (rather than one a user set to configure cargo).
fn cargo_set_for_tests(name: &str) -> bool {
    const SET: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    SET.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// Removes from `command`'s environment what cargo set for this test
/// binary: build scripts that watch these variables (ring watches
/// CARGO_MANIFEST_DIR and CARGO_PKG_NAME) would otherwise be rebuilt by a
/// cargo that `command` runs, and again by the next `cargo test`, every time.
pub fn without_test_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if cargo_set_for_tests(&name) {
            command.env_remove(name.as_ref());
        }
    }
}

/// A free TCP port on loopback (for a process's metrics endpoint).
pub fn free_local_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound")
}

/// A plain HTTP/1.0 GET on loopback: (status code, body).
pub fn http_get(url: &str) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .ok_or("no path")?;
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status:?}"))?;
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// A process of the product under test, with an HTTP endpoint serving
/// `/readyz` and `/metrics`.
pub struct ManagedProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    addr: SocketAddr,
}

impl ManagedProcess {
    /// Starts `program args...` with its output in a log file under the
    /// control plane's test-log dir; `addr` is where it serves HTTP.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        addr: SocketAddr,
    ) -> Self {
        let dir = test_logs_dir_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        std::fs::create_dir_all(&dir).expect("log dir");
        let log = dir.join(format!("{}.log", unique_name(name)));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        for (k, v) in envs {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} ({}) does not start: {e}", program.display()));
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
            addr,
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let url = self.url("/readyz");
        eventually(&format!("{}'s /readyz", self.name), timeout, || async {
            match http_get(&url) {
                Ok((200, _)) => Ok(()),
                Ok((code, body)) => Err(format!("{code}: {body}")),
                Err(e) => Err(e),
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; log: {}", self.log.display()));
    }

    /// The `/metrics` page.
    pub fn metrics(&self) -> String {
        http_get(&self.url("/metrics"))
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The value of the sample `name{labels}` (write the labels exactly as
    /// the process renders them), or of `name` alone.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        self.metrics().lines().find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// SIGTERM, then waits for the exit; panics if it does not exit cleanly
    /// within `timeout`.
    pub fn stop(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(term.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "{} exited with {status} on SIGTERM; log: {}",
                    self.name,
                    self.log.display()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not stop within {timeout:?} of SIGTERM; log: {}",
                    self.name,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (a crash), and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- last lines of the {} log {} ---\n{}",
                self.name,
                self.log.display(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// The pid of a child of process `pid` whose command name (`comm`) is
/// `name` (a supervised daemon, e.g. the BGP speaker's gobgpd), if any.
pub fn child_named(pid: u32, name: &str) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|comm| comm.trim() == name)
        })
}
