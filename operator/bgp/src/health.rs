//! The speaker's probes: `/healthz` (the controller loop still turns) and
//! `/readyz` (a standby is ready; the active replica is ready while its
//! last pass drove gobgpd over gRPC to the desired peers and routes, and
//! that pass is recent).
//!
//! ```text
//!   controller loop, each turn:
//!        ├── not leading ──standby()──────┐
//!        ├── pass ok ──applied()──────────┼──> Health ──> GET /healthz, /readyz
//!        └── pass failed ──failed(why)────┘
//! ```
//!
//! The state is what the loop last said, with when: a loop stuck in a call
//! (gobgpd's API not answering) stops refreshing it, and the probes turn
//! unhealthy by age rather than by trusting a stale "ok".

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

/// What the active replica's last pass came to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    /// Nothing known yet.
    Starting,
    /// Not holding the Lease: gobgpd is not run here.
    Standby,
    /// Leading, and the last pass applied everything.
    Applied,
    /// Leading, and the last pass failed (why).
    Failed(String),
}

#[derive(Debug)]
struct Inner {
    role: Role,
    /// When the loop last turned (and said `role`).
    at: Instant,
}

/// The speaker's health, written by the controller loop, read by the
/// probes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
    /// The longest a loop turn or a pass result may be old.
    max_age: Duration,
}

impl Health {
    /// A health whose facts expire after `max_age` (a few resync periods,
    /// and more than gobgpd's start-up wait).
    pub fn new(max_age: Duration) -> Self {
        let now = Instant::now();
        Health {
            inner: Arc::new(Mutex::new(Inner {
                role: Role::Starting,
                at: now,
            })),
            max_age,
        }
    }

    /// This replica does not lead: it runs no gobgpd.
    pub fn standby(&self) {
        self.set(Role::Standby);
    }

    /// A pass drove gobgpd to the desired peers and routes.
    pub fn applied(&self) {
        self.set(Role::Applied);
    }

    /// A pass failed.
    pub fn failed(&self, why: String) {
        self.set(Role::Failed(why));
    }

    /// The active replica (re)starts gobgpd: not ready until a pass
    /// completes, and the last failure (why it had to) is kept.
    pub fn restarting(&self) {
        const STARTING: &str = "gobgpd is not running: starting it";
        let previous = match &self.inner.lock().unwrap_or_else(|p| p.into_inner()).role {
            Role::Failed(why) => Some(
                why.split_once(" (last failure: ")
                    .map_or(why.as_str(), |(_, last)| last.trim_end_matches(')'))
                    .to_owned(),
            )
            .filter(|why| why != STARTING),
            _ => None,
        };
        self.set(Role::Failed(match previous {
            Some(last) => format!("{STARTING} (last failure: {last})"),
            None => STARTING.to_owned(),
        }));
    }

    fn set(&self, role: Role) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.role = role;
        inner.at = Instant::now();
    }

    /// `Ok` while the loop turned within `max_age`, else why not.
    pub fn live(&self) -> Result<(), String> {
        self.live_at(Instant::now())
    }

    /// [`Health::live`] as of `now`.
    fn live_at(&self, now: Instant) -> Result<(), String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let age = now.saturating_duration_since(inner.at);
        if age <= self.max_age {
            Ok(())
        } else {
            Err(format!(
                "the controller loop has not turned for {} s",
                age.as_secs()
            ))
        }
    }

    /// `Ok` (with what) when ready, else why not.
    pub fn ready(&self) -> Result<&'static str, String> {
        self.ready_at(Instant::now())
    }

    /// [`Health::ready`] as of `now`.
    fn ready_at(&self, now: Instant) -> Result<&'static str, String> {
        self.live_at(now)
            .map_err(|why| format!("{why} (a call to gobgpd's API hangs?)"))?;
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &inner.role {
            Role::Starting => Err("starting: no pass yet".into()),
            Role::Standby => Ok("standby: another replica holds the Lease"),
            Role::Applied => {
                Ok("active: gobgpd answers over gRPC and holds the desired peers and routes")
            }
            Role::Failed(why) => Err(format!("active, and the last pass failed: {why}")),
        }
    }
}

/// The probe routes.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn healthz(State(h): State<Health>) -> (StatusCode, String) {
    match h.live() {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn readyz(State(h): State<Health>) -> (StatusCode, String) {
    match h.ready() {
        Ok(what) => (StatusCode::OK, format!("{what}\n")),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// Why the probes could not be served.
#[derive(Debug, thiserror::Error)]
#[error("serving /healthz and /readyz on {addr}: {source}")]
pub struct ServeError {
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    pub source: std::io::Error,
}

/// Binds `addr` (before anything else starts, so that a taken port fails
/// the process at once).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })
}

/// Serves the probes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(|source| ServeError {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    tracing::info!(%addr, "serving /healthz and /readyz");
    axum::serve(listener, router(health))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeError { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_last_pass_and_expires() {
        // Long enough that no stall of a loaded machine expires it: the
        // expiry is checked at a later instant given, not by waiting.
        const MAX_AGE: Duration = Duration::from_secs(60);
        let h = Health::new(MAX_AGE);
        assert!(h.live().is_ok());
        assert!(h.ready().is_err(), "no pass yet");
        h.standby();
        assert!(h.ready().is_ok(), "a standby is ready");
        h.applied();
        assert!(h.ready().is_ok());
        h.failed("gobgpd ListPath: broken pipe".into());
        let why = h.ready().expect_err("a failed pass");
        assert!(why.contains("ListPath"), "{why}");
        h.restarting();
        let why = h.ready().expect_err("restarting");
        assert!(
            why.contains("starting it") && why.contains("last failure: gobgpd ListPath"),
            "{why}"
        );
        h.restarting();
        assert_eq!(h.ready().expect_err("still restarting"), why, "not nested");
        h.applied();
        let later = Instant::now() + MAX_AGE + Duration::from_secs(1);
        assert!(h.live_at(later).is_err(), "a loop that stopped turning");
        assert!(h.ready_at(later).is_err(), "a pass result too old");
        assert!(h.ready().is_ok(), "fresh now");
        h.standby();
        assert!(h.live().is_ok() && h.ready().is_ok());
    }
}
