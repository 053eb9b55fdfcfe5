//! Identities other than admin, for programs the tests start as child
//! processes (the operator, a node dataplane) and for clients in tests:
//! ServiceAccount tokens from the TokenRequest API, and kubeconfig files
//! carrying them, exactly as a developer would run a program against a
//! cluster.

use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::{ControlPlane, Error, status_code, unique_name};

/// Lifetime of the tokens issued: longer than any test.
pub(crate) const TOKEN_SECONDS: i64 = 3600;

impl ControlPlane {
    /// A bearer token of ServiceAccount `namespace/name` from the
    /// TokenRequest API (the ServiceAccount is created if missing).
    pub(crate) async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, Error> {
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
        accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::NoToken {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
    }

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
        let token = self.service_account_token(namespace, name).await?;
        self.write_token_kubeconfig(&format!("system:serviceaccount:{namespace}:{name}"), &token)
    }

    /// Writes a kubeconfig file authenticating with bearer `token` as the
    /// user entry `user`, and returns its path.
    pub(crate) fn write_token_kubeconfig(&self, user: &str, token: &str) -> Result<PathBuf, Error> {
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
        let file_name: String = user
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let path = dir.join(format!("{}.kubeconfig", unique_name(&file_name)));
        std::fs::write(&path, kubeconfig.to_string()).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}
