//! The chart runs for real: the images built without a container engine
//! (`scripts/build-images.sh`), a node (containerd, kubelet, kube-proxy,
//! kube-scheduler: `scripts/cluster.sh up --node`) whose network namespace
//! is the lab's gateway node, `helm install` of `charts/trunkline`, the
//! gateway-mode traffic of `gateway_mode.rs` forwarded by the dataplane pod
//! and a virtual gateway (a tap made through the pod's `/dev/net/tun`);
//! then `helm upgrade` and `helm uninstall`, and what each leaves on the node.
//!
//! ```text
//!  root netns: etcd, kube-apiserver (10.250.x.1), kube-controller-manager, kube-scheduler, this test
//!     | management link (veth)
//!  <p>-gw (lab's gateway node = the kubelet's node, 10.250.x.2):
//!     containerd, kubelet, kube-proxy
//!     dataplane pod (hostNetwork, the chart's capabilities) -- eth1 trunk -- switch -- bms1, bms2, other
//!        `-- tap vgw (net1's virtual gateway) -- node routing -- eth0 10.1.1.1 -- fabric -- pub 10.1.1.253
//!     cni0 -- operator pods x2 (leader election) -- Service kubernetes -- kube-apiserver
//!          -- BGP speaker pods x2 (operator image; the Lease holder runs gobgpd, no peers)
//! ```
//! Needs root (namespaces, cgroups, XDP); CI runs as root.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{BMS1, BMS2, Gateway, NODE, OTHER, TRUNK, single_node_lab};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use trunkline_test_support::{
    ControlPlane, FabricHostSpec, Lab, eventually, http_get, unique_name, without_test_env,
};

/// The release and its namespace.
const RELEASE: &str = "trunkline";
const RELEASE_NS: &str = "trunkline-system";
const CHART: &str = "charts/trunkline";
/// How long pods may take to start, be replaced or go.
const POD_TIMEOUT: Duration = Duration::from_secs(180);
/// The capabilities the chart gives the dataplane (NET_ADMIN 12, NET_RAW 13,
/// IPC_LOCK 14, SYS_NICE 23, PERFMON 38, BPF 39), as a capability mask.
const DATAPLANE_CAPS: u64 = (1 << 12) | (1 << 13) | (1 << 14) | (1 << 23) | (1 << 38) | (1 << 39);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// gobgpd as `scripts/build-gobgp.sh` builds it (cached by version).
fn gobgpd() -> std::path::PathBuf {
    trunkline_test_support::gobgpd().expect("gobgpd from scripts/build-gobgp.sh")
}

/// The two trunkline images, built once per test binary.
struct Images {
    operator: PathBuf,
    dataplane: PathBuf,
    operator_ref: String,
    dataplane_ref: String,
    took: Duration,
}

fn images() -> &'static Images {
    static BUILT: OnceLock<Images> = OnceLock::new();
    BUILT.get_or_init(|| {
        let started = Instant::now();
        let mut build = Command::new(repo_root().join("scripts/build-images.sh"));
        without_test_env(&mut build);
        let out = build
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/build-images.sh runs");
        assert!(out.status.success(), "scripts/build-images.sh failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("build-images.sh printed no {key}:\n{text}"))
                .to_owned()
        };
        Images {
            operator: value("OPERATOR_ARCHIVE").into(),
            dataplane: value("DATAPLANE_ARCHIVE").into(),
            operator_ref: value("OPERATOR_REF"),
            dataplane_ref: value("DATAPLANE_REF"),
            took: started.elapsed(),
        }
    })
}

// --- the images against their Dockerfiles ----------------------------------

/// What the final stage of a Dockerfile says about its image.
#[derive(Debug, Default)]
struct FinalStage {
    from: String,
    /// The destination of every COPY, in order.
    copies: Vec<String>,
    user: String,
    entrypoint: Value,
    exposed: Vec<String>,
    labels: serde_json::Map<String, Value>,
}

fn final_stage(dockerfile: &str) -> FinalStage {
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    let mut stage = FinalStage::default();
    for line in &lines[start..] {
        let (instruction, rest) = line.split_once(' ').expect("an instruction with arguments");
        match instruction {
            "FROM" => stage.from = rest.to_owned(),
            "COPY" => stage
                .copies
                .push(rest.rsplit(' ').next().expect("a destination").into()),
            "USER" => stage.user = rest.to_owned(),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(rest).expect("JSON form"),
            "EXPOSE" => stage
                .exposed
                .extend(rest.split_whitespace().map(|p| format!("{p}/tcp"))),
            "LABEL" => {
                let (key, value) = rest.split_once('=').expect("key=\"value\"");
                let value = value.trim_matches('"');
                stage.labels.insert(key.into(), value.into());
            }
            other => panic!("unexpected {other} in the final stage"),
        }
    }
    stage
}

/// Unpacks an OCI archive into a fresh directory; returns it with the
/// image's config and its layers (paths of the layer tars, bottom first).
fn unpack(archive: &Path) -> (PathBuf, Value, Vec<PathBuf>) {
    let dir = std::env::temp_dir().join(unique_name("trunkline-oci"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("tar");
    assert!(status.success());
    let json = |digest: &str| -> Value {
        let path = dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(path).expect("blob")).expect("JSON")
    };
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap())
        .expect("index.json");
    let manifest = json(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("a manifest"),
    );
    let config = json(manifest["config"]["digest"].as_str().expect("a config"));
    let layers = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            dir.join("blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"))
        })
        .collect();
    (dir, config, layers)
}

/// `tar -tv` of a layer: (mode, owner, path) per entry.
fn layer_entries(layer: &Path) -> Vec<(String, String, String)> {
    let out = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(layer)
        .output()
        .expect("tar");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].to_owned(), f[5].to_owned())
        })
        .collect()
}

/// The images `scripts/build-images.sh` builds are the ones the
/// Dockerfiles describe: the same binary at the same path, user, entry
/// point, ports and labels, a distroless-like runtime (the libraries, the
/// users, `/home/nonroot` owned by 65532), named as the chart expects.
#[test]
fn the_images_are_what_their_dockerfiles_describe() {
    let images = images();
    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo_root().join(CHART).join("Chart.yaml")).unwrap(),
    )
    .expect("Chart.yaml");
    let tag = chart["appVersion"].as_str().expect("appVersion");
    for (name, archive, reference) in [
        ("operator", &images.operator, &images.operator_ref),
        ("dataplane", &images.dataplane, &images.dataplane_ref),
    ] {
        let binary = format!("trunkline-{name}");
        assert_eq!(
            reference,
            &format!("trunkline.local/{binary}:{tag}"),
            "named <registry>/<chart's repository>:<appVersion>"
        );
        let dockerfile =
            std::fs::read_to_string(repo_root().join(format!("docker/{name}.Dockerfile"))).unwrap();
        let stage = final_stage(&dockerfile);
        let (dir, config, layers) = unpack(archive);
        let c = &config["config"];
        assert_eq!(c["User"], stage.user.as_str(), "{name}: USER");
        assert_eq!(c["Entrypoint"], stage.entrypoint, "{name}: ENTRYPOINT");
        let mut exposed: Vec<String> = c["ExposedPorts"]
            .as_object()
            .expect("ports")
            .keys()
            .cloned()
            .collect();
        exposed.sort();
        assert_eq!(exposed, stage.exposed, "{name}: EXPOSE");
        assert_eq!(
            c["Labels"].as_object().expect("labels"),
            &stage.labels,
            "{name}: LABEL"
        );
        assert!(
            stage.labels.contains_key("org.opencontainers.image.title"),
            "{name}: the Dockerfile labels its image"
        );
        assert!(stage.from.starts_with("gcr.io/distroless/cc-debian12"));
        assert!(
            stage
                .copies
                .iter()
                .any(|c| stage.entrypoint[0].as_str() == Some(c.as_str())),
            "{name}: the entry point is a copied binary"
        );
        assert_eq!(layers.len(), 2, "{name}: a runtime layer and the binaries'");
        // The binaries' layer holds exactly the release binaries (and the
        // gobgpd scripts/build-gobgp.sh built).
        let app = layer_entries(&layers[1]);
        for copied in &stage.copies {
            let path = format!(".{copied}");
            let (mode, owner, _) = app
                .iter()
                .find(|(_, _, p)| *p == path)
                .unwrap_or_else(|| panic!("{name}: {path} not in {app:?}"));
            assert_eq!((mode.as_str(), owner.as_str()), ("-rwxr-xr-x", "0/0"));
            let out = Command::new("tar")
                .arg("-xOf")
                .arg(&layers[1])
                .arg(&path)
                .output()
                .expect("tar");
            let file = Path::new(copied).file_name().expect("a file name");
            let source = if file == "gobgpd" {
                gobgpd()
            } else {
                Path::new(archive)
                    .parent()
                    .and_then(Path::parent)
                    .expect("<target>/images")
                    .join("release")
                    .join(file)
            };
            let built = std::fs::read(&source).expect("the built binary");
            assert!(
                out.stdout == built,
                "{name}: the image's {copied} is {}",
                source.display()
            );
        }
        assert!(
            stage.copies.contains(&format!("/usr/local/bin/{binary}")),
            "{name}: the image holds {binary}"
        );
        // The runtime: users as in distroless, the C library and the loader.
        let base = layer_entries(&layers[0]);
        let has = |p: &str| base.iter().any(|(_, _, e)| e == p);
        for p in [
            "./etc/passwd",
            "./etc/group",
            "./etc/ssl/certs/ca-certificates.crt",
            "./usr/lib/x86_64-linux-gnu/libc.so.6",
            "./lib64",
            "./tmp/",
        ] {
            assert!(has(p), "{name}: no {p} in the runtime layer");
        }
        assert!(
            base.iter().any(|(m, o, p)| p == "./home/nonroot/"
                && o == "65532/65532"
                && m.starts_with('d')),
            "{name}: /home/nonroot belongs to nonroot"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

// --- the chart on a node ------------------------------------------------------

/// A process of the node's namespace: the container's, seen from the host.
#[derive(Debug)]
struct NodeProcess {
    pid: u32,
    status: String,
}

impl NodeProcess {
    fn field(&self, name: &str) -> &str {
        self.status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
    }
}

/// The processes whose first argument is `argv0` (an image's entry point)
/// and that live in the network namespace at `netns` (host-network pods),
/// or anywhere when `netns` is `None` (pods behind the bridge).
fn processes(argv0: &str, netns: Option<&Path>) -> Vec<NodeProcess> {
    let want = netns.map(|p| std::fs::metadata(p).expect("netns").ino());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).next() != Some(argv0.as_bytes()) {
            continue;
        }
        if let Some(want) = want {
            match std::fs::metadata(entry.path().join("ns/net")) {
                Ok(m) if m.ino() == want => {}
                _ => continue,
            }
        }
        if let Ok(status) = std::fs::read_to_string(entry.path().join("status")) {
            found.push(NodeProcess { pid, status });
        }
    }
    found
}

/// `ip <args>` in the node's namespace.
fn node_ip_cmd(lab: &Lab, args: &[&str]) -> String {
    let mut all = vec!["ip"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&lab.exec(NODE, &all).stdout).into_owned()
}

/// What the node's namespace holds that a dataplane could have left:
/// links (name and alias), routes of the agent's protocol, XDP programs.
fn host_state(lab: &Lab) -> (Vec<String>, String, usize) {
    let links: Vec<String> = node_ip_cmd(lab, &["-o", "-details", "link", "show"])
        .lines()
        .filter_map(|l| {
            let name = l.split(':').nth(1)?.trim().split('@').next()?.to_owned();
            // The node's own: its pod bridge and the pods' veths come and go
            // with pods, not with the chart's host state.
            if name == "cni0" || name.starts_with("veth") {
                return None;
            }
            let alias = l
                .split(" alias ")
                .nth(1)
                .map(|a| format!(" alias {}", a.split_whitespace().next().unwrap_or("")))
                .unwrap_or_default();
            Some(format!("{name}{alias}"))
        })
        .collect();
    let routes = node_ip_cmd(lab, &["route", "show", "table", "all", "proto", "200"])
        + &node_ip_cmd(
            lab,
            &["-6", "route", "show", "table", "all", "proto", "200"],
        );
    let xdp = node_ip_cmd(lab, &["-details", "link", "show", TRUNK])
        .matches("prog/xdp")
        .count();
    (links, routes, xdp)
}

async fn pods_of(client: &kube::Client, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), RELEASE_NS)
        .list(&ListParams::default().labels(selector))
        .await
        .expect("pods")
        .items
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

const OPERATOR_PODS: &str = "app.kubernetes.io/component=operator";
const BGP_PODS: &str = "app.kubernetes.io/component=bgp";
const DATAPLANE_PODS: &str = "app.kubernetes.io/component=node-dataplane";

/// On failure: what the node ran, and the pods' logs.
struct Diagnostics<'a> {
    plane: &'a ControlPlane,
}

impl Drop for Diagnostics<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let show = |args: &[&str]| {
            let out = self.plane.kubectl(args);
            eprintln!(
                "--- kubectl {} ---\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        show(&["get", "pods", "-A", "-o", "wide"]);
        show(&["get", "events", "-A", "--sort-by", ".lastTimestamp"]);
        for component in ["operator", "bgp", "node-dataplane"] {
            show(&[
                "logs",
                "-n",
                RELEASE_NS,
                "-l",
                &format!("app.kubernetes.io/component={component}"),
                "--tail",
                "40",
                "--prefix",
            ]);
        }
        let kubelet =
            std::fs::read_to_string(self.plane.log_dir().join("kubelet.log")).unwrap_or_default();
        let lines: Vec<&str> = kubelet.lines().collect();
        eprintln!(
            "--- last lines of {} ---\n{}",
            self.plane.log_dir().join("kubelet.log").display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
}

fn phase(name: &str, since: &mut Instant) {
    eprintln!("[pods] {name}: {:.1} s", since.elapsed().as_secs_f64());
    *since = Instant::now();
}

/// The whole user path on a real kubelet: install, traffic, upgrade,
/// uninstall, in one test (a node and its pods are too slow to start per
/// case, and each step needs the previous one).
#[tokio::test]
async fn the_chart_runs_on_a_node_forwards_traffic_upgrades_and_uninstalls_cleanly() {
    let total = Instant::now();
    let images = images();
    eprintln!("[pods] images built in {:.1} s", images.took.as_secs_f64());
    let mut t = Instant::now();

    let instances = [BMS1, BMS2, OTHER];
    // A public host on the fabric, reached through net1's virtual gateway.
    let public = FabricHostSpec::new("pub")
        .ip("10.1.1.253/24")
        .route("192.168.1.0/24", "10.1.1.1");
    let lab = Lab::up(single_node_lab(&instances, Some(public))).expect("the lab");
    let netns_path = lab.netns_path(NODE);
    let netns = netns_path
        .file_name()
        .expect("a namespace name")
        .to_string_lossy()
        .into_owned();
    let node = unique_name("gw-node");
    let state = std::env::temp_dir().join(unique_name(&format!(
        "trunkline-rig-pods-{}",
        std::process::id()
    )));
    let plane = ControlPlane::start_with_node(&state, Some(std::process::id()), &netns, &node)
        .expect("a control plane with a node");
    let _diagnostics = Diagnostics { plane: &plane };
    phase("lab, control plane and node up", &mut t);
    plane
        .import_images(&[&images.operator, &images.dataplane])
        .expect("images imported into the node's containerd");
    phase("images imported", &mut t);
    let node_ip = plane.node_ip().expect("the node's address");
    let client = plane.client().await.expect("client");
    let before = host_state(&lab);
    assert_eq!(before.2, 0, "no XDP program before the install");

    // --- helm install ---------------------------------------------------
    let install = [
        "install",
        RELEASE,
        CHART,
        "--namespace",
        RELEASE_NS,
        "--create-namespace",
        "--set",
        "image.registry=trunkline.local",
        // Nothing is pulled: a missing image is an error, not a download.
        "--set",
        "image.pullPolicy=Never",
        "--wait",
        "--timeout",
        "180s",
    ];
    plane.helm_ok(&install).expect("helm install --wait");
    // Helm's --wait counts a DaemonSet ready while no more than
    // maxUnavailable (1) of its pods are not: wait for the pod itself.
    eventually("the dataplane pod Ready", POD_TIMEOUT, || async {
        let pods = pods_of(&client, DATAPLANE_PODS).await;
        if pods.len() == 1 && ready(&pods[0]) {
            Ok(())
        } else {
            Err(format!(
                "{} pods, ready: {:?}",
                pods.len(),
                pods.iter().map(ready).collect::<Vec<_>>()
            ))
        }
    })
    .await
    .expect("the dataplane pod Ready");
    phase("helm install --wait, all pods Ready", &mut t);

    let deployment = Api::<Deployment>::namespaced(client.clone(), RELEASE_NS)
        .get("trunkline-operator")
        .await
        .expect("the operator Deployment");
    assert_eq!(
        deployment.status.as_ref().and_then(|s| s.ready_replicas),
        Some(2),
        "both operator replicas Ready (their probes pass)"
    );
    let daemonset = Api::<DaemonSet>::namespaced(client.clone(), RELEASE_NS)
        .get("trunkline-dataplane")
        .await
        .expect("the dataplane DaemonSet");
    let ds_status = daemonset.status.expect("status");
    assert_eq!(
        (ds_status.desired_number_scheduled, ds_status.number_ready),
        (1, 1),
        "one dataplane pod, on the one gateway node, Ready"
    );
    let dataplane_pods = pods_of(&client, DATAPLANE_PODS).await;
    assert_eq!(dataplane_pods.len(), 1);
    let dataplane_pod = &dataplane_pods[0];
    let spec = dataplane_pod.spec.as_ref().expect("spec");
    assert_eq!(spec.node_name.as_deref(), Some(node.as_str()));
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(
        dataplane_pod
            .status
            .as_ref()
            .and_then(|s| s.host_ip.clone()),
        Some(node_ip.to_string()),
        "HOST_IP, where the metrics listen, is the node's address"
    );

    // The dataplane process runs with exactly the chart's capabilities, in
    // the node's namespace, not privileged, with no privilege escalation and
    // the runtime's seccomp filter.
    let agents = processes("/usr/local/bin/trunkline-dataplane", Some(&netns_path));
    assert_eq!(
        agents.len(),
        1,
        "one dataplane process in the node: {agents:?}"
    );
    let agent = &agents[0];
    let caps = u64::from_str_radix(agent.field("CapEff"), 16).expect("CapEff");
    assert_eq!(
        caps, DATAPLANE_CAPS,
        "effective capabilities {caps:#x}, the chart's are {DATAPLANE_CAPS:#x}"
    );
    assert_eq!(
        u64::from_str_radix(agent.field("CapBnd"), 16).ok(),
        Some(DATAPLANE_CAPS),
        "nothing more can be gained"
    );
    assert_eq!(
        agent.field("NoNewPrivs"),
        "1",
        "allowPrivilegeEscalation: false"
    );
    assert_eq!(
        agent.field("Seccomp"),
        "2",
        "seccomp RuntimeDefault (a filter)"
    );
    assert!(agent.field("Uid").starts_with("0\t"), "UID 0");

    // The operators: two processes, user 65532, no capability at all.
    let operators = processes("/usr/local/bin/trunkline-operator", None);
    assert_eq!(operators.len(), 2, "{operators:?}");
    for operator in &operators {
        assert!(operator.field("Uid").starts_with("65532\t"), "{operator:?}");
        assert_eq!(operator.field("CapEff"), "0000000000000000", "{operator:?}");
        assert_eq!(operator.field("NoNewPrivs"), "1");
    }

    // Leader election: the Lease names one of the two pods, and exactly one
    // says it leads.
    let operator_pods = pods_of(&client, OPERATOR_PODS).await;
    let names: Vec<String> = operator_pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let lease = Api::<Lease>::namespaced(client.clone(), RELEASE_NS)
        .get("trunkline-operator")
        .await
        .expect("the Lease");
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .expect("a holder");
    assert!(names.contains(&holder), "{holder} is one of {names:?}");
    let leaders: f64 = operator_pods
        .iter()
        .map(|p| {
            let ip = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .expect("pod IP");
            let out = lab.exec(
                NODE,
                &[
                    "curl",
                    "-s",
                    "--max-time",
                    "5",
                    &format!("http://{ip}:8080/metrics"),
                ],
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find_map(|l| l.strip_prefix("trunkline_operator_leader "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no trunkline_operator_leader from {ip}:\n{text}"))
        })
        .sum();
    assert_eq!(leaders, 1.0, "exactly one operator pod leads");

    // The BGP speaker (the operator image): both replicas Ready, one holds
    // the Lease and is the only one running gobgpd, as user 65532 with no
    // capability.
    // Ready is their readiness probe's (the active one's once gobgpd
    // answers and a pass succeeded): polled, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(120);
    let speaker_pods = loop {
        let pods = pods_of(&client, BGP_PODS).await;
        if pods.len() == 2 && pods.iter().all(ready) {
            break pods;
        }
        assert!(
            Instant::now() < deadline,
            "two BGP speaker pods, both Ready, within 120 s: {} pod(s), {} Ready",
            pods.len(),
            pods.iter().filter(|p| ready(p)).count()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let names: Vec<String> = speaker_pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let gobgpds = eventually(
        "one gobgpd, under the Lease's holder",
        POD_TIMEOUT,
        || async {
            let holder = Api::<Lease>::namespaced(client.clone(), RELEASE_NS)
                .get_opt("trunkline-bgp")
                .await
                .map_err(|e| e.to_string())?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity);
            let gobgpds = processes("/usr/local/bin/gobgpd", None);
            if holder.as_ref().is_some_and(|h| names.contains(h)) && gobgpds.len() == 1 {
                Ok(gobgpds)
            } else {
                Err(format!(
                    "holder {holder:?} of {names:?}, gobgpd processes {gobgpds:?}"
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let speakers = processes("/usr/local/bin/trunkline-bgp", None);
    assert_eq!(speakers.len(), 2, "{speakers:?}");
    for p in speakers.iter().chain(&gobgpds) {
        assert!(p.field("Uid").starts_with("65532\t"), "{p:?}");
        assert_eq!(p.field("CapEff"), "0000000000000000", "{p:?}");
        assert_eq!(p.field("NoNewPrivs"), "1");
    }
    assert!(
        speakers
            .iter()
            .any(|p| p.pid.to_string() == gobgpds[0].field("PPid")),
        "gobgpd is a speaker's child"
    );

    // The dataplane's endpoints, where the chart binds them (the node's address).
    let (code, _) = http_get(&format!("http://{node_ip}:9090/readyz")).expect("readyz");
    assert_eq!(code, 200);
    let metrics_url = format!("http://{node_ip}:9090/metrics");
    let metric = |sample: &str| -> f64 {
        http_get(&metrics_url)
            .map(|(_, body)| body)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix(sample)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    phase("pods, capabilities, leader and endpoints checked", &mut t);

    // --- gateway-mode traffic through the dataplane pod -------------------
    let ns = plane.namespace("gw").await.expect("namespace");
    let gw = Gateway::without_processes(ns, client.clone(), lab, node.clone());
    gw.apply_objects(&instances).await;
    for vlan in [100, 200, 300] {
        // Written by the operator pod, from what the dataplane pod reports.
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    let out = gw.ping_eventually("bms1", "192.168.1.20").await;
    eprintln!("bms1 -> bms2 through the dataplane pod:\n{out}");
    let (ok, out) = gw.lab.ping("bms2", "192.168.1.10", 3);
    assert!(ok, "bms2 -> bms1: {out}");
    let (ok, out) = gw.lab.ping("bms1", "192.168.1.1", 2);
    assert!(ok, "the gateway address answers: {out}");
    let (ok, out) = gw.lab.ping("other", "192.168.1.10", 2);
    assert!(!ok, "net2 reached net1: {out}");
    let received = gw
        .lab
        .tcp("bms1", "bms2", "192.168.1.20", 5001, "hello-from-a-pod")
        .expect("TCP");
    assert_eq!(received, "hello-from-a-pod");
    let vmi = format!("{}/bms1", gw.ns.name());
    let rx = metric(&format!(
        "trunkline_dataplane_vmi_packets_total{{vmi=\"{vmi}\",direction=\"rx\"}}"
    ));
    assert!(rx >= 5.0, "the pod's metrics count bms1's packets ({rx})");
    let status = gw.router_status().await;
    assert_eq!(
        status.backend.as_deref(),
        Some("XDP"),
        "the chart's default backend, the XDP tier with AF_XDP, works with the chart's capabilities and seccomp profile"
    );
    let in_kernel = metric("trunkline_dataplane_xdp_tier_frames_total{decision=\"kernel\"}");
    assert!(in_kernel > 0.0, "the XDP tier in the pod decided no frame");
    assert_eq!(host_state(&gw.lab).2, 1, "one XDP program on the trunk");
    phase("gateway-mode traffic through the pod", &mut t);

    // A virtual gateway: a tap the pod makes through /dev/net/tun (hostPath)
    // with NET_ADMIN, routes on the node, public access both ways.
    let vgw = unique_name("net1-public");
    gw.apply_vgw(&vgw, "vgw", "net1", &["192.168.1.0/24"], &[])
        .await;
    gw.wait_vgw(&vgw, "True").await;
    let public_reachable = || async {
        for (from, to) in [("bms1", "10.1.1.253"), ("pub", "192.168.1.10")] {
            eventually(
                &format!("{from} reaches {to} through the virtual gateway"),
                Duration::from_secs(30),
                || async {
                    let (ok, out) = gw.lab.ping(from, to, 2);
                    if ok { Ok(()) } else { Err(out) }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    public_reachable().await;
    let sorted = |mut links: Vec<String>| {
        links.sort();
        links
    };
    let with_tap = sorted(
        before
            .0
            .iter()
            .cloned()
            .chain([format!("vgw alias trunkline:vgw:{vgw}")])
            .collect(),
    );
    let (links, routes, _) = host_state(&gw.lab);
    assert_eq!(sorted(links), with_tap, "the tap, marked as the agent's");
    assert!(routes.contains("192.168.1.0/24 dev vgw"), "{routes}");
    phase("virtual gateway through the pod's tap", &mut t);

    // --- helm upgrade: the dataplane pod is replaced ----------------------
    let old_uid = dataplane_pod.metadata.uid.clone().expect("uid");
    let old_pid = agent.pid;
    let mut upgrade = vec![
        "upgrade",
        RELEASE,
        CHART,
        "--namespace",
        RELEASE_NS,
        "--reuse-values",
    ];
    upgrade.extend_from_slice(&[
        "--set",
        "dataplane.logLevel=debug",
        "--wait",
        "--timeout",
        "180s",
    ]);
    plane.helm_ok(&upgrade).expect("helm upgrade --wait");
    eventually("the new dataplane pod Ready", POD_TIMEOUT, || async {
        let pods = pods_of(&client, DATAPLANE_PODS).await;
        match pods.as_slice() {
            [pod] if pod.metadata.uid.as_deref() != Some(old_uid.as_str()) && ready(pod) => Ok(()),
            other => Err(format!(
                "{:?}",
                other
                    .iter()
                    .map(|p| (p.metadata.name.clone(), ready(p)))
                    .collect::<Vec<_>>()
            )),
        }
    })
    .await
    .expect("the dataplane pod replaced");
    let agents = processes("/usr/local/bin/trunkline-dataplane", Some(&netns_path));
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_ne!(agents[0].pid, old_pid, "a new process");
    gw.ping_eventually("bms1", "192.168.1.20").await;
    public_reachable().await;
    let after_upgrade = host_state(&gw.lab);
    assert_eq!(
        after_upgrade.2, 1,
        "still exactly one XDP program: nothing stale"
    );
    assert_eq!(
        sorted(after_upgrade.0),
        with_tap,
        "the tap kept and adopted by the new pod, nothing else left or added"
    );
    assert!(after_upgrade.1.contains("192.168.1.0/24 dev vgw"));
    phase(
        "helm upgrade: dataplane pod replaced, traffic and tap kept",
        &mut t,
    );

    // --- helm uninstall: nothing of it stays on the node ------------------
    plane
        .helm_ok(&[
            "uninstall",
            RELEASE,
            "--namespace",
            RELEASE_NS,
            "--wait",
            "--timeout",
            "180s",
        ])
        .expect("helm uninstall --wait");
    eventually("the release's pods gone", POD_TIMEOUT, || async {
        let left = pods_of(&client, "app.kubernetes.io/name=trunkline").await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{} pods left", left.len()))
        }
    })
    .await
    .expect("pods deleted");
    eventually("the containers' processes gone", POD_TIMEOUT, || async {
        let agents = processes("/usr/local/bin/trunkline-dataplane", Some(&netns_path));
        let operators = processes("/usr/local/bin/trunkline-operator", None);
        let speakers = processes("/usr/local/bin/trunkline-bgp", None);
        let gobgpds = processes("/usr/local/bin/gobgpd", None);
        if agents.is_empty() && operators.is_empty() && speakers.is_empty() && gobgpds.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} agents, {} operators, {} speakers, {} gobgpd",
                agents.len(),
                operators.len(),
                speakers.len(),
                gobgpds.len()
            ))
        }
    })
    .await
    .expect("processes gone");
    // The virtual gateway is still declared, but its agent was uninstalled:
    // the tap and its routes went with it.
    let after = host_state(&gw.lab);
    assert_eq!(after.2, 0, "no XDP program left on the trunk");
    assert_eq!(
        after.0, before.0,
        "the node's links as before the install: no tap"
    );
    assert_eq!(after.1, "", "no route of the agent's left");
    let (ok, _) = gw.lab.ping("pub", "192.168.1.10", 2);
    assert!(!ok, "no public access once uninstalled");
    let (ok, _) = gw.lab.ping("bms1", "192.168.1.20", 2);
    assert!(!ok, "nothing forwards once uninstalled");
    phase(
        "helm uninstall: pods, processes and host state gone",
        &mut t,
    );
    eprintln!(
        "[pods] total {:.1} s (images {:.1} s)",
        total.elapsed().as_secs_f64(),
        images.took.as_secs_f64()
    );
}
