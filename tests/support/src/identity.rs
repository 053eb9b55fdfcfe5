//! Clients with identities other than admin, so that RBAC is tested for real:
//! a ServiceAccount token (TokenRequest API), as the operator and the node
//! dataplanes use in a cluster, or a client certificate for any user and groups.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use kube::Client;
use kube::config::AuthInfo;

use crate::{ControlPlane, Error, unique_name};

impl ControlPlane {
    /// A client authenticated as ServiceAccount `namespace/name`, by a bearer
    /// token from the TokenRequest API. Creates the ServiceAccount if missing.
    /// Its permissions are whatever RBAC grants
    /// `system:serviceaccount:<namespace>:<name>`.
    pub async fn client_for_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Client, Error> {
        let token = self.service_account_token(namespace, name).await?;
        let mut config = self.config().await?;
        config.auth_info = AuthInfo {
            token: Some(token.into()),
            ..AuthInfo::default()
        };
        Ok(Client::try_from(config)?)
    }

    /// A client authenticated as user `user` in `groups`, by a client
    /// certificate (CN = user, one O per group) that the cluster CA signs on
    /// the spot with the openssl CLI.
    ///
    /// Names may hold letters, digits and `:._@-` (enough for
    /// `system:node:<name>` or `system:serviceaccounts`).
    pub async fn client_for_user(&self, user: &str, groups: &[&str]) -> Result<Client, Error> {
        check_subject_part("user", user)?;
        for group in groups {
            check_subject_part("group", group)?;
        }
        let subject: String = groups
            .iter()
            .map(|g| format!("/O={g}"))
            .chain(std::iter::once(format!("/CN={user}")))
            .collect();
        let (cert, key) = self.sign_client_certificate(&subject)?;

        let mut config = self.config().await?;
        config.auth_info = AuthInfo {
            client_certificate: Some(cert.display().to_string()),
            client_key: Some(key.display().to_string()),
            ..AuthInfo::default()
        };
        Ok(Client::try_from(config)?)
    }

    /// Writes a new key and a certificate for `subject` signed by the cluster
    /// CA into `<state>/pki/users/`, returning (certificate, key).
    fn sign_client_certificate(&self, subject: &str) -> Result<(PathBuf, PathBuf), Error> {
        let pki = self.state_dir().join("pki");
        let dir = pki.join("users");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let base = dir.join(unique_name("user"));
        let key = base.with_extension("key");
        let csr = base.with_extension("csr");
        let cert = base.with_extension("crt");

        openssl(
            "key",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key.display().to_string(),
            ],
        )?;
        openssl(
            "csr",
            &[
                "req",
                "-new",
                "-key",
                &key.display().to_string(),
                "-subj",
                subject,
                "-out",
                &csr.display().to_string(),
            ],
        )?;
        // A random serial per certificate: no shared serial file to race on.
        let serial = format!("0x{}", random_hex());
        openssl(
            "sign",
            &[
                "x509",
                "-req",
                "-in",
                &csr.display().to_string(),
                "-CA",
                &pki.join("ca.crt").display().to_string(),
                "-CAkey",
                &pki.join("ca.key").display().to_string(),
                "-set_serial",
                &serial,
                "-days",
                "365",
                "-sha256",
                // The extensions scripts/cluster.sh uses for its own client certificates.
                "-extfile",
                &pki.join("openssl.cnf").display().to_string(),
                "-extensions",
                "client",
                "-out",
                &cert.display().to_string(),
            ],
        )?;
        let _ = std::fs::remove_file(&csr);
        Ok((cert, key))
    }
}

fn check_subject_part(what: &'static str, value: &str) -> Result<(), Error> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '@' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            value: value.to_string(),
            reason: "use a non-empty name of ASCII letters, digits and `:._@-`",
        })
    }
}

/// 128 random bits as 32 hex digits.
fn random_hex() -> String {
    use std::hash::{BuildHasher, RandomState};
    let high = RandomState::new().hash_one(1u8);
    let low = RandomState::new().hash_one(2u8);
    format!("{high:016x}{low:016x}")
}

fn openssl(step: &'static str, args: &[&str]) -> Result<(), Error> {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: "openssl".to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Openssl {
            step,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_parts_are_checked() {
        assert!(check_subject_part("user", "system:node:lab-1").is_ok());
        assert!(check_subject_part("group", "system:masters").is_ok());
        assert!(check_subject_part("user", "").is_err());
        assert!(check_subject_part("user", "a/O=system:masters").is_err());
        assert!(check_subject_part("user", "a+b").is_err());
    }
}
