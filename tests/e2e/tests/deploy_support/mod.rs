//! What the install tests share: the repository's paths, Helm and kubectl
//! run without a cluster (`helm template`, `kubectl kustomize`), and the
//! rendered manifests as JSON values.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use trunkline_test_support::rig_tool;

/// The chart, relative to the repository root.
pub const CHART: &str = "charts/trunkline";
/// The kustomize base, relative to the repository root.
pub const BASE: &str = "deploy/kustomize/base";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The Kubernetes version the rig builds (`scripts/versions.env`), for
/// `helm template --kube-version`.
pub fn k8s_version() -> String {
    let env = std::fs::read_to_string(repo_root().join("scripts/versions.env"))
        .expect("scripts/versions.env");
    env.lines()
        .find_map(|l| l.strip_prefix("K8S_VERSION="))
        .expect("K8S_VERSION in scripts/versions.env")
        .trim()
        .to_owned()
}

/// The rig's helm, with its settings in a scratch directory, run in the
/// repository root (no cluster: for `lint` and `template`).
pub fn helm(args: &[&str]) -> Output {
    let helm = rig_tool("HELM").expect("scripts/build-k8s.sh names helm");
    let home = std::env::temp_dir().join(format!("trunkline-helm-{}", std::process::id()));
    Command::new(&helm)
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()))
}

/// The rig's kubectl without a cluster (for `kustomize`).
pub fn kubectl_local(args: &[&str]) -> Output {
    let kubectl = rig_tool("KUBECTL").expect("scripts/build-k8s.sh names kubectl");
    Command::new(&kubectl)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl.display()))
}

/// stdout of a successful run, else a panic with its stderr.
pub fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template <release> charts/trunkline -n <namespace> <extra...>`.
pub fn render_chart(release: &str, namespace: &str, extra: &[&str]) -> String {
    let version = k8s_version();
    let mut args = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--kube-version",
        &version,
    ];
    args.extend_from_slice(extra);
    ok(&format!("helm {}", args.join(" ")), helm(&args))
}

/// The documents of a multi-document YAML stream, empty ones left out.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("YAML does not parse: {e}\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The YAML file at `path` (relative to the repository root), as one value.
pub fn yaml_file(path: &str) -> Value {
    let text =
        std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The only object of `kind` named `name` in `docs`.
pub fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} {name}, found {}; objects: {:?}",
        found.len(),
        docs.iter()
            .map(|d| format!("{} {}", d["kind"], d["metadata"]["name"]))
            .collect::<Vec<_>>()
    );
    found[0]
}

/// Every object of `kind` in `docs`.
pub fn objects<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The first container of a workload (Deployment, DaemonSet).
pub fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

/// A container's args as strings.
pub fn args_of(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}
