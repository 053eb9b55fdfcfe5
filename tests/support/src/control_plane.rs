//! Starting, reaching and stopping a control plane through `scripts/cluster.sh`,
//! so that tests and people share one implementation of the rig.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::{Error, TestNamespace, unique_name};

/// Set to a state dir to make [`ControlPlane::shared`] use (or start) the
/// control plane there and leave it running after the tests, e.g. the one
/// `make cluster` started: `TRUNKLINE_TEST_STATE=/tmp/trunkline-cluster`.
pub const REUSE_ENV: &str = "TRUNKLINE_TEST_STATE";

/// A running etcd + kube-apiserver + kube-controller-manager on loopback.
///
/// Cheap to share: it only holds paths. Clients are made per test (see
/// [`ControlPlane::client`]).
#[derive(Debug)]
pub struct ControlPlane {
    repo_root: PathBuf,
    state_dir: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    server: String,
    startup: Duration,
    /// Whether dropping this value stops the control plane.
    owned: bool,
}

impl ControlPlane {
    /// The control plane of this test binary, started on first call and
    /// reused by every later call from any test.
    ///
    /// It is stopped, and its state dir removed, by a watchdog once this
    /// process has exited, whatever the reason. With [`REUSE_ENV`] set it
    /// uses that state dir instead and leaves the control plane running.
    ///
    /// # Panics
    /// When the control plane cannot be started; every test calling this
    /// then fails with the same message.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            let plane = match std::env::var_os(REUSE_ENV) {
                Some(state) => Self::start_with(Path::new(&state), None),
                None => Self::start(&default_state_dir(), Some(std::process::id())),
            };
            // Never `owned`: a static is not dropped; the watchdog stops it.
            let plane = plane.map_err(|e| e.to_string())?;
            eprintln!(
                "trunkline-test-support: control plane ready in {:.1} s at {} (state {})",
                plane.startup.as_secs_f64(),
                plane.server,
                plane.state_dir.display()
            );
            Ok(plane)
        });
        match started {
            Ok(plane) => plane,
            Err(e) => panic!("the shared control plane could not start: {e}"),
        }
    }

    /// Starts a control plane of its own in `state_dir` (which must not hold
    /// anything but an earlier control plane), stopped when the value is
    /// dropped. If `watch_pid` is given, a watchdog also stops it once that
    /// process is gone.
    ///
    /// Most tests want [`ControlPlane::shared`]; this is for tests that
    /// restart or break the control plane itself.
    pub fn start(state_dir: &Path, watch_pid: Option<u32>) -> Result<ControlPlane, Error> {
        let mut plane = Self::start_with(state_dir, watch_pid)?;
        plane.owned = true;
        Ok(plane)
    }

    /// Like [`ControlPlane::start`], with a node that runs pods
    /// (`scripts/cluster.sh up --node`): containerd, a kubelet named
    /// `node_name` and kube-proxy in the network namespace `netns` (e.g. a
    /// lab's gateway node, so that host-network pods own its ports), and
    /// kube-scheduler. The node is Ready and labelled
    /// `trunkline.io/gateway=true` when this returns.
    pub fn start_with_node(
        state_dir: &Path,
        watch_pid: Option<u32>,
        netns: &str,
        node_name: &str,
    ) -> Result<ControlPlane, Error> {
        let args = ["--node", "--node-netns", netns, "--node-name", node_name];
        let mut plane = Self::start_with_args(state_dir, watch_pid, &args)?;
        plane.owned = true;
        Ok(plane)
    }

    /// Imports OCI image archives (`scripts/build-images.sh`) into the
    /// node's containerd (`scripts/cluster.sh import`).
    pub fn import_images(&self, archives: &[&Path]) -> Result<(), Error> {
        let script = self.repo_root.join("scripts/cluster.sh");
        let status = Command::new(&script)
            .arg("import")
            .arg("--state")
            .arg(&self.state_dir)
            .args(archives)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|source| Error::Spawn {
                program: script.display().to_string(),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Script {
                action: "import",
                state: self.state_dir.clone(),
                status,
            })
        }
    }

    /// The node's address (its InternalIP, on the management link), when
    /// this control plane has a node.
    pub fn node_ip(&self) -> Option<std::net::IpAddr> {
        std::fs::read_to_string(self.state_dir.join("node/ip"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn start_with(state_dir: &Path, watch_pid: Option<u32>) -> Result<ControlPlane, Error> {
        Self::start_with_args(state_dir, watch_pid, &[])
    }

    fn start_with_args(
        state_dir: &Path,
        watch_pid: Option<u32>,
        extra: &[&str],
    ) -> Result<ControlPlane, Error> {
        let repo_root = repo_root();
        let script = repo_root.join("scripts/cluster.sh");
        let started = Instant::now();
        let mut up = Command::new(&script);
        up.arg("up")
            .arg("--state")
            .arg(state_dir)
            .args(extra)
            .current_dir(&repo_root);
        if let Some(pid) = watch_pid {
            up.env("CLUSTER_WATCH_PID", pid.to_string());
        }
        // stdout carries the export line; stderr (progress, the start time)
        // goes straight to the test's stderr so that CI logs show it.
        let out = up
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| Error::Spawn {
                program: script.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Script {
                action: "up",
                state: state_dir.to_path_buf(),
                status: out.status,
            });
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last_line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let kubeconfig = match last_line.strip_prefix("export KUBECONFIG=") {
            Some(path) => PathBuf::from(path.trim()),
            None => {
                return Err(Error::ClusterOutput {
                    last_line: last_line.to_string(),
                });
            }
        };
        let server = read_kubeconfig(&kubeconfig)?
            .clusters
            .into_iter()
            .find_map(|c| c.cluster.and_then(|c| c.server))
            .unwrap_or_default();
        let state_dir = kubeconfig
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| state_dir.to_path_buf());
        Ok(ControlPlane {
            kubectl: kubectl_path(&repo_root)?,
            repo_root,
            state_dir,
            kubeconfig,
            server,
            startup: started.elapsed(),
            owned: false,
        })
    }

    /// Stops the control plane now (`scripts/cluster.sh down`): its
    /// processes by PID, then its state dir.
    pub fn stop(&self) -> Result<(), Error> {
        let script = self.repo_root.join("scripts/cluster.sh");
        let out = Command::new(&script)
            .arg("down")
            .arg("--state")
            .arg(&self.state_dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                program: script.display().to_string(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Script {
                action: "down",
                state: self.state_dir.clone(),
                status: out.status,
            })
        }
    }

    /// The admin kubeconfig (client certificate CN `admin`, O `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The directory holding certificates, etcd data and one log file per
    /// component (`etcd.log`, `kube-apiserver.log`, `kube-controller-manager.log`).
    pub fn log_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The cluster CA certificate (PEM): it signed the serving certificate and
    /// every client certificate the API server accepts.
    pub fn ca_cert(&self) -> PathBuf {
        self.state_dir.join("pki/ca.crt")
    }

    /// How long `scripts/cluster.sh up` took, CRD installation included.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The root of the repository (where `scripts/` and `crds/` are).
    pub fn repo_root(&self) -> &Path {
        &self.repo_root
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The rig's kubectl binary (built by `scripts/build-k8s.sh`), for a
    /// test that must run it with its own identity or environment.
    pub fn kubectl_command(&self) -> PathBuf {
        self.kubectl.clone()
    }

    /// A client configuration with the admin identity.
    pub async fn config(&self) -> Result<Config, Error> {
        let kubeconfig = read_kubeconfig(&self.kubeconfig)?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| Error::Kubeconfig {
                path: self.kubeconfig.clone(),
                source,
            })
    }

    /// A new admin client.
    ///
    /// Make one per test: each `#[tokio::test]` has its own runtime, and a
    /// client's connections die with the runtime that opened them.
    pub async fn client(&self) -> Result<Client, Error> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// Runs the rig's kubectl (not whatever `kubectl` is on `PATH`) with the
    /// admin kubeconfig. Blocks the calling thread.
    ///
    /// # Panics
    /// When kubectl cannot be started at all.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_stdin(args, &[])
    }

    /// Like [`ControlPlane::kubectl`], feeding `stdin` to it (e.g. a manifest
    /// for `apply -f -`).
    ///
    /// # Panics
    /// When kubectl cannot be started at all.
    pub fn kubectl_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.kubectl.display()));
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = stdin.to_vec();
        // A separate writer: kubectl may fill its stdout before reading all of stdin.
        let writer = std::thread::spawn(move || {
            // kubectl may exit without reading stdin; a broken pipe is not our error.
            let _ = pipe.write_all(&input);
        });
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.kubectl.display()));
        let _ = writer.join();
        out
    }

    /// Runs kubectl like [`ControlPlane::kubectl`] and returns its stdout, or
    /// [`Error::Kubectl`] with its stderr when it exits non-zero.
    pub fn kubectl_ok(&self, args: &[&str]) -> Result<String, Error> {
        let out = self.kubectl(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Kubectl {
                args: args.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Creates a namespace named `prefix-<random>` for one test. Dropping the
    /// returned value deletes it (without waiting) and, if the test is
    /// panicking, first copies the component logs to
    /// `target/test-logs/<namespace>/`.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace<'_>, Error> {
        let name = unique_name(prefix);
        let namespaces: Api<Namespace> = Api::all(self.client().await?);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("trunkline.io/e2e".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
        Ok(TestNamespace::new(self, name))
    }

    /// Runs `test` in a fresh namespace (see [`ControlPlane::namespace`]),
    /// keeping the logs if it returns `Err` or panics, and deleting the
    /// namespace afterwards:
    ///
    /// ```no_run
    /// # use trunkline_test_support::{ControlPlane, Error};
    /// # async fn example() -> Result<(), Error> {
    /// ControlPlane::shared()
    ///     .in_namespace("gc", async |ns| {
    ///         let client = ns.control_plane().client().await?;
    ///         // ... Api::namespaced(client, ns.name()) ...
    /// #       let _ = client;
    ///         Ok(())
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn in_namespace<T, E, F>(&self, prefix: &str, test: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&TestNamespace<'_>) -> Result<T, E>,
        E: From<Error> + std::fmt::Display,
    {
        let ns = self.namespace(prefix).await?;
        let result = test(&ns).await;
        ns.finish(result)
    }

    /// Where failing tests leave the logs: `$CARGO_TARGET_DIR/test-logs`, or
    /// `target/test-logs` at the repository root.
    pub fn test_logs_dir(&self) -> PathBuf {
        test_logs_dir_in(&self.repo_root)
    }
}

/// `<target dir>/test-logs` of the repository at `repo_root`.
pub(crate) fn test_logs_dir_in(repo_root: &Path) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root.join(dir),
        None => repo_root.join("target"),
    };
    target.join("test-logs")
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = self.stop()
        {
            eprintln!("trunkline-test-support: stopping the control plane failed: {e}");
        }
    }
}

/// The repository root: this crate lives at `<root>/tests/support`.
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// A fresh state dir per test process: `$TMPDIR/trunkline-rig-<binary>-<pid>-<random>`.
fn default_state_dir() -> PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".to_string());
    // Test binaries are named <crate>-<hash>; keep the crate part.
    let binary = binary
        .rsplit_once('-')
        .map_or(binary.as_str(), |(head, _)| head);
    let name = unique_name(&format!("trunkline-rig-{binary}-{}", std::process::id()));
    std::env::temp_dir().join(name)
}

/// The kubectl that `scripts/build-k8s.sh` built (its `--print` names it).
fn kubectl_path(repo_root: &Path) -> Result<PathBuf, Error> {
    let script = repo_root.join("scripts/build-k8s.sh");
    let out = Command::new(&script)
        .arg("--print")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: script.display().to_string(),
            source,
        })?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("KUBECTL="))
        .map(PathBuf::from)
        .ok_or_else(|| Error::Spawn {
            program: script.display().to_string(),
            source: std::io::Error::other("--print named no KUBECTL"),
        })
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, Error> {
    Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}
