//! Identities with the product's own roles: a ServiceAccount bound to a
//! ClusterRole from `deploy/rbac/`, and a kubeconfig file for a process to
//! run as it. Tests that run the operator or a node dataplane this way fail
//! when the role lacks a permission, instead of a production install.

use std::path::PathBuf;

use crate::{ControlPlane, Error, unique_name};

impl ControlPlane {
    /// Applies `deploy/rbac/<role>.yaml` (a ClusterRole named
    /// `trunkline-<role>`), binds it to ServiceAccount `account` of
    /// namespace `namespace` (created if missing), and returns a kubeconfig
    /// for that account.
    pub async fn kubeconfig_with_role(
        &self,
        namespace: &str,
        account: &str,
        role: &str,
    ) -> Result<PathBuf, Error> {
        let file = self
            .repo_root()
            .join("deploy/rbac")
            .join(format!("{role}.yaml"));
        let file = file.to_string_lossy().into_owned();
        // Tests install the same role concurrently: server-side apply is
        // idempotent, and a create race (AlreadyExists) is simply retried.
        let mut attempt = 0;
        while let Err(e) =
            self.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", &file])
        {
            attempt += 1;
            if attempt == 5 {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let binding = unique_name(&format!("{account}-{role}"));
        let manifest = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {account}, namespace: {namespace}}}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {binding}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: trunkline-{role}}}\n\
             subjects: [{{kind: ServiceAccount, name: {account}, namespace: {namespace}}}]\n"
        );
        let out = self.kubectl_with_stdin(&["apply", "-f", "-"], manifest.as_bytes());
        if !out.status.success() {
            return Err(Error::Kubectl {
                args: "apply -f - (ServiceAccount and ClusterRoleBinding)".to_owned(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        self.kubeconfig_for_service_account(namespace, account)
            .await
    }
}
