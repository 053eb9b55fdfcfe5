//! Kubernetes client plumbing shared by the operator and the node
//! dataplane, so that both reach the API server the same way:
//!
//! - [`client`]: a client from a kubeconfig file, or from the environment
//!   (in-cluster ServiceAccount, then `KUBECONFIG`);
//! - [`WatchBackoff`]: how a broken watch is retried. kube-runtime's default
//!   backs off up to 30 s; after an API server restart that meant a new
//!   object waited up to half a minute to be seen. Both processes retry
//!   every watch after 250 ms, doubling to at most 2 s, and go back to
//!   250 ms once a watch works again: a handful of requests per kind while
//!   the API server is away, and objects seen within seconds of its return.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::utils::Backoff;
use kube::{Client, Config};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// Neither an in-cluster configuration nor `KUBECONFIG` could be used.
    #[error("no Kubernetes configuration (in-cluster or KUBECONFIG): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from `kubeconfig` when given, else from the environment.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let error = |source| Error::Kubeconfig {
                path: path.to_owned(),
                source,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(error)?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(error)?
        }
        None => Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// The first wait before retrying a broken watch.
pub const WATCH_RETRY_MIN: Duration = Duration::from_millis(250);
/// The longest wait between two attempts of one watch.
pub const WATCH_RETRY_MAX: Duration = Duration::from_secs(2);

/// The retry policy of every watch: see the module documentation.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: WATCH_RETRY_MIN,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(WATCH_RETRY_MAX);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_RETRY_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_starts_over_when_reset() {
        let mut b = WatchBackoff::default();
        let waits: Vec<u128> = (&mut b).take(6).map(|d| d.as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.next(), Some(WATCH_RETRY_MIN));
    }
}
