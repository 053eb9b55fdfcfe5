//! The rig's other tools and identities for installation tests: Helm (the
//! version `scripts/build-k8s.sh` builds, isolated from the user's Helm
//! settings), kubeconfigs for a ServiceAccount token bound to a Pod (so
//! that the API server puts the Pod's node in the caller's identity), and
//! clients from any kubeconfig file.
//!
//! ```text
//!  Pod (spec.nodeName = N, serviceAccountName = SA) -- stored, never runs
//!   └─ TokenRequest(SA, boundObjectRef = the Pod)
//!        └─ token: user system:serviceaccount:<ns>:SA,
//!           extra authentication.kubernetes.io/node-name = [N]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::kubeconfig_file::TOKEN_SECONDS;
use crate::{ControlPlane, Error};

/// The path of a tool `scripts/build-k8s.sh --print` names (`KUBECTL`,
/// `HELM`, `KUBE_APISERVER`, ...).
pub fn rig_tool(name: &str) -> Result<PathBuf, Error> {
    script_path("build-k8s.sh", &["--print"], name)
}

/// gobgpd as `scripts/build-gobgp.sh` builds it (cached by version; built
/// first if missing): the speaker `trunkline-bgp` supervises.
pub fn gobgpd() -> Result<PathBuf, Error> {
    script_path("build-gobgp.sh", &[], "GOBGPD")
}

/// The path a build script of `scripts/` prints as `<name>=<path>`.
fn script_path(script: &str, args: &[&str], name: &str) -> Result<PathBuf, Error> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let out = Command::new(&script)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| Error::Spawn {
            program: script.display().to_string(),
            source,
        })?;
    let prefix = format!("{name}=");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(PathBuf::from)
        .ok_or_else(|| Error::Spawn {
            program: script.display().to_string(),
            source: std::io::Error::other(format!("printed no {name}= ({})", out.status)),
        })
}

/// A client from a kubeconfig file (e.g. one written by
/// [`ControlPlane::kubeconfig_for_pod`]).
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, Error> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Client::try_from(config)?)
}

impl ControlPlane {
    /// Runs the rig's helm with the admin kubeconfig, its config, cache and
    /// data under the control plane's state dir (no user settings, no
    /// network). Blocks the calling thread.
    ///
    /// # Panics
    /// When helm cannot be found or started.
    pub fn helm(&self, args: &[&str]) -> Output {
        let helm = rig_tool("HELM").expect("scripts/build-k8s.sh names helm");
        let home = self.state_dir().join("helm");
        Command::new(&helm)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .current_dir(self.repo_root())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()))
    }

    /// Runs helm like [`ControlPlane::helm`] and returns its stdout, or
    /// [`Error::Tool`] with its stderr when it exits non-zero.
    pub fn helm_ok(&self, args: &[&str]) -> Result<String, Error> {
        let out = self.helm(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Tool {
                tool: "helm",
                args: args.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Writes a kubeconfig for the ServiceAccount of Pod `namespace/pod`
    /// with a token bound to that Pod (TokenRequest `boundObjectRef`), as
    /// the kubelet gives a running pod: the API server then authenticates
    /// the caller with the Pod's name and, if the Pod has `spec.nodeName`,
    /// its node (`authentication.kubernetes.io/node-name`). The token is
    /// valid while the Pod exists.
    pub async fn kubeconfig_for_pod(&self, namespace: &str, pod: &str) -> Result<PathBuf, Error> {
        let client = self.client().await?;
        let found = Api::<Pod>::namespaced(client.clone(), namespace)
            .get(pod)
            .await?;
        let account = found
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".to_owned());
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(TOKEN_SECONDS),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".to_owned()),
                    kind: Some("Pod".to_owned()),
                    name: Some(pod.to_owned()),
                    uid: found.metadata.uid.clone(),
                }),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let token = Api::<ServiceAccount>::namespaced(client, namespace)
            .create_token_request(&account, &PostParams::default(), &request)
            .await?
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::NoToken {
                namespace: namespace.to_owned(),
                name: account.clone(),
            })?;
        self.write_token_kubeconfig(&format!("{account}-{pod}"), &token)
    }
}
