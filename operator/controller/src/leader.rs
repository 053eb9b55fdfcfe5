//! Leader election over a `coordination.k8s.io/v1` Lease, so that several
//! replicas of the operator can run and exactly one writes status.
//!
//! ```text
//!   candidate ──(lease absent, released, or unchanged for leaseDuration)──> leader
//!       ^   every retryPeriod: read the Lease                                 │
//!       │                                                                     │ every retryPeriod:
//!       │                                                                     │ renew (update renewTime)
//!       └──── no successful renew for renewDeadline, or another holder ───────┘
//!                                     (stop writing at once)
//!   shutdown (SIGTERM): after the last write, the leader clears holderIdentity
//!   so a standby takes over within one retryPeriod instead of leaseDuration.
//! ```
//!
//! The rules are client-go's `leaderelection` package's:
//!
//! - Expiry is judged on the candidate's own clock: a lease is expired when
//!   its record has not changed for `leaseDurationSeconds` since *this
//!   process* last saw it change. Clocks of different nodes are never
//!   compared.
//! - Every write is an update with the `resourceVersion` read, so two
//!   candidates cannot both take the same expired lease: one gets 409.
//! - A leader stops writing when it has not renewed for `renewDeadline`,
//!   which is shorter than `leaseDuration`: it steps down before any other
//!   candidate can consider the lease expired.
//!
//! The pure part ([`decide`], [`Observation`]) is tested here without a
//! cluster; the end-to-end test `tests/e2e/tests/leader_election.rs` runs
//! two operators against a real API server.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Error;

/// Where the lease is and how it is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (`holderIdentity` while it leads).
    pub identity: String,
    /// How long others wait, after the lease last changed, before taking it.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Pause between two attempts (to acquire, or to renew).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Checks the timing rules: `leaseDuration > renewDeadline >
    /// retryPeriod > 0`, and a lease duration of at least one second (the
    /// Lease stores whole seconds).
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::LeaderElectionConfig(why));
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return invalid(
                "--leader-election-id, the namespace and the identity must not be empty".into(),
            );
        }
        if self.lease_duration < Duration::from_secs(1) {
            return invalid(format!(
                "--leader-election-lease-duration must be at least 1s, not {:?}",
                self.lease_duration
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return invalid(format!(
                "--leader-election-renew-deadline ({:?}) must be shorter than --leader-election-lease-duration ({:?}), so that a leader steps down before others may take over",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return invalid(format!(
                "--leader-election-retry-period ({:?}) must be positive and shorter than --leader-election-renew-deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// The identity of this process when none is given: `<hostname>_<random>`,
/// unique even for two processes on one host (as client-go does).
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "trunkline-operator".to_owned());
    format!(
        "{host}_{:016x}",
        RandomState::new().hash_one(std::process::id())
    )
}

/// What the election reads from a Lease: the fields whose change proves
/// the holder alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `holderIdentity`; `None` (or empty) once released.
    pub holder: Option<String>,
    /// `leaseDurationSeconds` as the holder set it.
    pub lease_duration: Duration,
    /// `renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `acquireTime`.
    pub acquire_time: Option<Timestamp>,
    /// `leaseTransitions`.
    pub transitions: i32,
}

impl Record {
    fn from_lease(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            lease_duration: Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            ),
            renew_time: spec.renew_time.map(|t| t.0),
            acquire_time: spec.acquire_time.map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// When this process last saw the lease record change, on its own clock.
#[derive(Clone, Debug)]
pub struct Observation {
    record: Record,
    since: Instant,
}

impl Observation {
    /// Remembers `record` as seen at `now`, and returns for how long it has
    /// been unchanged (zero when it just changed).
    pub fn observe(slot: &mut Option<Observation>, record: Record, now: Instant) -> Duration {
        match slot {
            Some(seen) if seen.record == record => now.saturating_duration_since(seen.since),
            _ => {
                *slot = Some(Observation { record, since: now });
                Duration::ZERO
            }
        }
    }
}

/// What a candidate does after reading the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// This process holds it: renew.
    Renew,
    /// Released, or expired: take it over.
    Acquire,
    /// Another holder renewed it recently: wait.
    Follow {
        /// The current holder.
        holder: String,
        /// How long until it may be taken if nothing changes.
        expires_in: Duration,
    },
}

/// The decision for `identity`, given the current record (if any) and how
/// long it has been unchanged as this process observed it.
pub fn decide(identity: &str, current: Option<&Record>, unchanged_for: Duration) -> Decision {
    let Some(record) = current else {
        return Decision::Create;
    };
    match record.holder.as_deref() {
        Some(holder) if holder == identity => Decision::Renew,
        None => Decision::Acquire,
        Some(holder) => {
            if unchanged_for >= record.lease_duration {
                Decision::Acquire
            } else {
                Decision::Follow {
                    holder: holder.to_owned(),
                    expires_in: record.lease_duration - unchanged_for,
                }
            }
        }
    }
}

/// The outcome of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This process holds the lease now.
    Leading,
    /// Someone else holds it (or won the race to it).
    Following(Option<String>),
}

/// One candidate: reads and writes the Lease.
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observation>,
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn conflict_or_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// A candidate for the lease described by `config`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn lease_error(&self, source: kube::Error) -> Error {
        Error::Lease {
            lease: format!("{}/{}", self.config.namespace, self.config.name),
            source,
        }
    }

    /// One attempt to acquire or renew the lease.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, Error> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.lease_error(e))?;
        let record = current.as_ref().map(Record::from_lease);
        let unchanged_for = match &record {
            Some(r) => Observation::observe(&mut self.observed, r.clone(), Instant::now()),
            None => Duration::ZERO,
        };
        let decision = decide(&self.config.identity, record.as_ref(), unchanged_for);
        let now = now_micro();
        let spec = match (&decision, &record) {
            (Decision::Follow { holder, .. }, _) => {
                return Ok(Attempt::Following(Some(holder.clone())));
            }
            (Decision::Create, _) | (_, None) => LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            },
            (Decision::Renew, Some(r)) => LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_seconds()),
                acquire_time: r.acquire_time.map(MicroTime).or(Some(now.clone())),
                renew_time: Some(now),
                lease_transitions: Some(r.transitions),
                ..LeaseSpec::default()
            },
            (Decision::Acquire, Some(r)) => LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(r.transitions.saturating_add(1)),
                ..LeaseSpec::default()
            },
        };
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // Keeps metadata.resourceVersion: a concurrent write makes this a 409.
                lease.spec = Some(spec);
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                Observation::observe(
                    &mut self.observed,
                    Record::from_lease(&lease),
                    Instant::now(),
                );
                Ok(Attempt::Leading)
            }
            // Another candidate wrote first: it holds the lease now.
            Err(e) if conflict_or_exists(&e) => Ok(Attempt::Following(None)),
            Err(e) => Err(self.lease_error(e)),
        }
    }

    /// Gives the lease up, if this process still holds it: clears the
    /// holder so that a standby takes over at its next attempt.
    pub async fn release(&mut self) -> Result<bool, Error> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.lease_error(e))?
        else {
            return Ok(false);
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if conflict_or_exists(&e) => Ok(false),
            Err(e) => Err(self.lease_error(e)),
        }
    }

    /// The pause between two attempts of a candidate: the retry period
    /// plus up to 20 % jitter, so that candidates do not move in lockstep.
    fn candidate_pause(&self) -> Duration {
        let jitter = (RandomState::new().hash_one(0u8) % 1000) as f64 / 1000.0 * 0.2;
        self.config.retry_period.mul_f64(1.0 + jitter)
    }

    /// Campaigns and leads until `shutdown` completes, publishing whether
    /// this process leads on `leading`. Then releases the lease if held.
    ///
    /// `shutdown` must complete only after the last status write, so that
    /// the release never lets another leader write while this one does.
    pub async fn run(
        mut self,
        leading: watch::Sender<bool>,
        shutdown: impl Future<Output = ()>,
        on_transition: impl Fn(bool),
    ) {
        let campaign = async {
            loop {
                // Candidate: until an attempt succeeds.
                loop {
                    match tokio::time::timeout(
                        self.config.renew_deadline,
                        self.try_acquire_or_renew(),
                    )
                    .await
                    {
                        Ok(Ok(Attempt::Leading)) => break,
                        Ok(Ok(Attempt::Following(holder))) => {
                            tracing::debug!(holder = ?holder, "the lease is held by another candidate")
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "leader election attempt failed"),
                        Err(_) => tracing::warn!("leader election attempt timed out"),
                    }
                    tokio::time::sleep(self.candidate_pause()).await;
                }
                tracing::info!(
                    identity = self.config.identity,
                    lease = format!("{}/{}", self.config.namespace, self.config.name),
                    "became the leader"
                );
                leading.send_replace(true);
                on_transition(true);

                // Leader: renew every retry period; step down when the
                // deadline passes without a successful renewal.
                let mut renewed = Instant::now();
                loop {
                    tokio::time::sleep(self.config.retry_period).await;
                    let deadline = renewed + self.config.renew_deadline;
                    let outcome =
                        tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
                    match outcome {
                        Ok(Ok(Attempt::Leading)) => {
                            renewed = Instant::now();
                            continue;
                        }
                        Ok(Ok(Attempt::Following(holder))) => {
                            tracing::warn!(holder = ?holder, "lost the lease to another candidate; no more status writes");
                            break;
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "renewing the lease failed"),
                        Err(_) => tracing::warn!("renewing the lease timed out"),
                    }
                    if Instant::now() >= deadline {
                        tracing::warn!(
                            deadline = ?self.config.renew_deadline,
                            "no renewal within the renew deadline; stepping down, no more status writes"
                        );
                        break;
                    }
                }
                leading.send_replace(false);
                on_transition(false);
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = campaign => {}
        }
        let was_leading = leading.send_replace(false);
        if was_leading {
            on_transition(false);
        }
        match tokio::time::timeout(self.config.renew_deadline, self.release()).await {
            Ok(Ok(true)) => tracing::info!("released the lease"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
            Err(_) => tracing::warn!("releasing the lease timed out"),
        }
    }
}

/// Parses a duration flag: `15s`, `500ms`, `1m`, `1.5s`, or a plain number
/// of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 15s, 500ms or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use ms, s or m (e.g. 15s)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, seconds: u64) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            lease_duration: Duration::from_secs(seconds),
            renew_time: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            acquire_time: None,
            transitions: 3,
        }
    }

    fn config() -> LeaseConfig {
        LeaseConfig {
            namespace: "ns".into(),
            name: "trunkline-operator".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide("a", None, Duration::ZERO), Decision::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_when_old() {
        let r = record(Some("a"), 15);
        assert_eq!(
            decide("a", Some(&r), Duration::from_secs(100)),
            Decision::Renew
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let r = record(None, 1);
        assert_eq!(decide("b", Some(&r), Duration::ZERO), Decision::Acquire);
    }

    #[test]
    fn a_fresh_lease_of_another_is_followed_until_it_expires() {
        let r = record(Some("a"), 15);
        assert_eq!(
            decide("b", Some(&r), Duration::from_secs(5)),
            Decision::Follow {
                holder: "a".into(),
                expires_in: Duration::from_secs(10)
            }
        );
        assert_eq!(
            decide("b", Some(&r), Duration::from_secs(15)),
            Decision::Acquire
        );
    }

    #[test]
    fn expiry_counts_from_the_last_change_seen_on_our_own_clock() {
        let start = Instant::now();
        let mut seen = None;
        let r = record(Some("a"), 15);
        assert_eq!(
            Observation::observe(&mut seen, r.clone(), start),
            Duration::ZERO
        );
        let later = start + Duration::from_secs(9);
        assert_eq!(
            Observation::observe(&mut seen, r.clone(), later),
            Duration::from_secs(9)
        );
        // A renewal (a new renewTime) restarts the count, whatever its value.
        let mut renewed = r.clone();
        renewed.renew_time = Some(Timestamp::from_second(1_600_000_000).unwrap());
        assert_eq!(
            Observation::observe(&mut seen, renewed.clone(), later),
            Duration::ZERO
        );
        assert_eq!(
            Observation::observe(&mut seen, renewed, later + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_leader_steps_down_before_anyone_may_take_over() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.renew_deadline = c.lease_duration;
        assert!(c.validate().is_err());
        let mut c = config();
        c.retry_period = c.renew_deadline;
        assert!(c.validate().is_err());
        let mut c = config();
        c.lease_duration = Duration::from_millis(900);
        c.renew_deadline = Duration::from_millis(500);
        c.retry_period = Duration::from_millis(100);
        assert!(c.validate().is_err(), "the Lease stores whole seconds");
        let mut c = config();
        c.identity.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn records_are_read_from_leases() {
        let lease = Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(15),
                lease_transitions: Some(2),
                ..LeaseSpec::default()
            }),
        };
        let r = Record::from_lease(&lease);
        assert_eq!(r.holder, None, "an empty holder is a released lease");
        assert_eq!(r.lease_duration, Duration::from_secs(15));
        assert_eq!(r.transitions, 2);
    }

    #[test]
    fn identities_differ_between_processes_on_one_host() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        assert!(a.contains('_'));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("7h").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
