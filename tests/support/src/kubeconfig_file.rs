//! Kubeconfig files for identities other than admin, for programs the
//! tests start as child processes (the operator, a node dataplane), exactly
//! as a developer would run them against a cluster.

use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::{ControlPlane, Error, status_code, unique_name};

/// Lifetime of the tokens written: longer than any test.
const TOKEN_SECONDS: i64 = 3600;

impl ControlPlane {
    /// Writes a kubeconfig authenticating as ServiceAccount
    /// `namespace/name` (a bearer token from the TokenRequest API; the
    /// ServiceAccount is created if missing) and returns its path, a new
    /// file under the control plane's state dir. Its permissions are
    /// whatever RBAC grants `system:serviceaccount:<namespace>:<name>`.
    pub async fn kubeconfig_for_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<PathBuf, Error> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client().await?, namespace);
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        match accounts.create(&PostParams::default(), &account).await {
            Ok(_) => {}
            Err(e) if status_code(&e) == Some(409) => {} // already there
            Err(e) => return Err(e.into()),
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(TOKEN_SECONDS),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::NoToken {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })?;

        let user = format!("system:serviceaccount:{namespace}:{name}");
        // JSON is YAML: every kubeconfig reader accepts it.
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": "rig",
                "cluster": {
                    "server": self.server(),
                    "certificate-authority": self.ca_cert().display().to_string(),
                },
            }],
            "users": [{ "name": user, "user": { "token": token } }],
            "contexts": [{ "name": "rig", "context": { "cluster": "rig", "user": user } }],
            "current-context": "rig",
        });
        let dir = self.state_dir().join("kubeconfigs");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("{}.kubeconfig", unique_name(name)));
        std::fs::write(&path, kubeconfig.to_string()).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}
