//! Which watch events can change what a build makes, so that the compile
//! loop builds only for those.
//!
//! Most events of a node's watches change nothing a build reads: the
//! operator writing a `Programmed` or `Ready` condition (the stores drop
//! them, [`crate::trim`]), this agent's own report in its PhysicalRouter's
//! status. A build costs O(objects of the node); such an event only moves
//! a watermark, which the installed tables already satisfy.
//!
//! Each store ([`crate::store`]) keeps a fingerprint of every object: a hash
//! of what a build reads of it, its domain object (`trunkline_model::from_api`,
//! the one conversion the builds use, made once as the event arrives)
//! without its resource version; of a
//! PhysicalRouter, without the reports in its status, which no build
//! reads. An event is then:
//! - [`Relevance::Unchanged`]: the same fingerprint as before (a status
//!   write of conditions the domain object does not keep, an annotation, a
//!   report, the operator's `Accepted` condition for a generation its node
//!   labels had already accepted); the loop reports the new watermark
//!   without a build, [`WATERMARK_DELAY`] later unless a build reports it
//!   first;
//! - [`Relevance::Waiting`]: changed, but its current generation waits for
//!   the operator's verdict (neither accepted nor refused): a build would
//!   enforce its last accepted version and report it as an exception, and
//!   its acceptance or refusal comes next; the loop waits for that (at most
//!   [`WAITING_LIMIT`]) and meanwhile reports no watermark past it;
//! - [`Relevance::Changed`]: anything else, deletions and relists that
//!   differ included: the loop builds.
//!
//! Every event is counted in [`Changes`] before its watermark is raised, so
//! the loop, reading the watermarks first and the counts second, knows that
//! every event below those watermarks is counted.

use std::hash::{DefaultHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use trunkline_api::PhysicalRouter;
use trunkline_model::{self as model, HasMeta, Meta, from_api};

use crate::trim::Trim;

/// How long an edit waiting for the operator's verdict may keep the
/// loop's report where it is before a build reports it as an exception.
pub const WAITING_LIMIT: Duration = Duration::from_secs(1);

/// How long watermarks moved only by events no build reads wait before
/// they are reported on their own: each report is a write of the router's
/// status and a pass of the operator, and a build meanwhile reports them
/// with its tables (after a change, the operator's own status writes are
/// such events, and the next change's build reports them).
pub const WATERMARK_DELAY: Duration = Duration::from_secs(1);

/// What an event means to a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relevance {
    /// Nothing a build reads changed.
    Unchanged,
    /// A spec edit or a new object the operator has not decided on yet.
    Waiting,
    /// A build must see it.
    Changed,
}

/// What an object means to a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weight {
    /// A hash of what a build reads of it.
    pub fingerprint: u64,
    /// Whether its current generation waits for the operator's verdict.
    pub waiting: bool,
}

impl Weight {
    /// What an event carrying an object of weight `self` means, the
    /// object's fingerprint having been `previous`.
    pub fn relevance(self, previous: Option<u64>) -> Relevance {
        if previous == Some(self.fingerprint) {
            Relevance::Unchanged
        } else if self.waiting {
            Relevance::Waiting
        } else {
            Relevance::Changed
        }
    }

    /// The weight of a domain object whose meta (its resource version
    /// cleared) is `meta`.
    fn of(object: &impl std::fmt::Debug, meta: &Meta) -> Self {
        Self {
            fingerprint: hash_debug(object),
            waiting: !meta.accepted && !meta.refused,
        }
    }
}

/// An object of a watch, seen as the compile loop sees it: converted once,
/// as its event arrives, to the domain object every build reads
/// ([`crate::store`]), and weighed.
pub trait Relevant: Trim {
    /// The domain type it converts to (`trunkline_model::from_api`).
    type Domain: HasMeta + std::fmt::Debug + Send + Sync + 'static;

    /// The one conversion.
    fn convert(&self) -> Self::Domain;

    /// What `object`, converted from an object of this kind, means to a
    /// build (`object` is left as it was).
    fn weight(object: &mut Self::Domain) -> Weight;

    /// What it means to a build.
    fn weigh(&self) -> Weight {
        Self::weight(&mut self.convert())
    }
}

/// A hash of `value`'s `Debug` form, streamed into the hasher. The domain
/// types print every field in a fixed order (they hold no hash maps), so
/// equal objects hash equal.
fn hash_debug(value: &impl std::fmt::Debug) -> u64 {
    struct Into<'a>(&'a mut DefaultHasher);
    impl std::fmt::Write for Into<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut hasher = DefaultHasher::new();
    // Writing into a hasher never fails.
    let _ = std::fmt::write(&mut Into(&mut hasher), format_args!("{value:?}"));
    hasher.finish()
}

macro_rules! converted_by {
    ($($kind:ty => $convert:path => $domain:ty),* $(,)?) => {$(
        impl Relevant for $kind {
            type Domain = $domain;

            fn convert(&self) -> Self::Domain {
                $convert(self)
            }

            /// Hashed without its resource version, which every write
            /// moves.
            fn weight(object: &mut Self::Domain) -> Weight {
                let changed_at = object.meta.changed_at.take();
                let weight = Weight::of(&*object, &object.meta);
                object.meta.changed_at = changed_at;
                weight
            }
        }
    )*};
}

converted_by!(
    trunkline_api::LogicalInterface => from_api::logical_interface => model::LogicalInterface,
    trunkline_api::VirtualMachineInterface => from_api::virtual_machine_interface => model::VirtualMachineInterface,
    trunkline_api::VirtualNetwork => from_api::virtual_network => model::VirtualNetwork,
    trunkline_api::VirtualGateway => from_api::virtual_gateway => model::VirtualGateway,
    trunkline_api::ExternalVTEP => from_api::external_vtep => model::ExternalVtep,
    trunkline_api::GatewayHAGroup => from_api::gateway_ha_group => model::GatewayHaGroup,
    trunkline_api::DCGateway => from_api::dc_gateway => model::DcGateway,
    trunkline_api::SecurityGroup => from_api::security_group => model::SecurityGroup,
    trunkline_api::VirtualNetworkPolicy => from_api::virtual_network_policy => model::VirtualNetworkPolicy,
    trunkline_api::ClusterVirtualNetworkPolicy => from_api::cluster_virtual_network_policy => model::VirtualNetworkPolicy,
);

impl Relevant for PhysicalRouter {
    type Domain = model::PhysicalRouter;

    fn convert(&self) -> Self::Domain {
        from_api::physical_router(self)
    }

    /// Its status holds the nodes' reports (this agent's own among them),
    /// which builds never read; a router is never accepted or refused (a
    /// node enforces its router as it is): it never waits.
    fn weight(router: &mut Self::Domain) -> Weight {
        let mut router = router.clone();
        router.meta.changed_at = None;
        router.report = Default::default();
        router.ha_reports.clear();
        Weight {
            fingerprint: hash_debug(&router),
            waiting: false,
        }
    }
}

/// The events of all watches that a build must see, counted.
#[derive(Debug, Default)]
pub struct Changes {
    changed: AtomicU64,
    waiting: AtomicU64,
    wake: Notify,
}

/// The counts of [`Changes`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// [`Relevance::Changed`] events so far.
    pub changed: u64,
    /// [`Relevance::Waiting`] events so far.
    pub waiting: u64,
}

impl Changes {
    /// Counts an event: before its watermark is raised.
    pub fn note(&self, relevance: Relevance) {
        match relevance {
            Relevance::Changed => self.changed.fetch_add(1, Ordering::SeqCst),
            Relevance::Waiting => self.waiting.fetch_add(1, Ordering::SeqCst),
            Relevance::Unchanged => 0,
        };
    }

    /// Wakes the compile loop: after the watermark is raised.
    pub fn wake(&self) {
        self.wake.notify_one()
    }

    /// Waits for a wake-up.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// The counts now.
    pub fn seen(&self) -> Seen {
        Seen {
            changed: self.changed.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trunkline_api::VirtualMachineInterface;

    fn vmi(generation: i64, ip: &str, conditions: serde_json::Value) -> VirtualMachineInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "a", "namespace": "t", "generation": generation,
                         "resourceVersion": "100", "uid": "u1",
                         "labels": {"node.trunkline.io/gw1": "g1"}},
            "spec": {"virtualNetwork": "net1", "macAddress": "02:00:00:00:00:01",
                     "ips": [{"address": ip}]},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    fn accepted(status: &str, generation: i64) -> serde_json::Value {
        json!([{"type": "Accepted", "status": status, "reason": "", "message": "",
                "observedGeneration": generation,
                "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    }

    #[test]
    fn a_new_resource_version_alone_changes_nothing() {
        let a = vmi(1, "192.168.1.10", accepted("True", 1));
        let mut b = a.clone();
        b.metadata.resource_version = Some("101".into());
        b.metadata.annotations = Some([("example.com/x".into(), "y".into())].into());
        assert_eq!(
            b.weigh().relevance(Some(a.weigh().fingerprint)),
            Relevance::Unchanged
        );
        // What a build reads does.
        let c = vmi(1, "192.168.1.11", accepted("True", 1));
        assert_eq!(
            c.weigh().relevance(Some(a.weigh().fingerprint)),
            Relevance::Changed
        );
    }

    #[test]
    fn the_operators_conditions_change_nothing_once_the_labels_accepted() {
        // Labelled g1: accepted by its node label before its status says so.
        let labelled = vmi(1, "192.168.1.10", json!([]));
        assert!(!labelled.weigh().waiting);
        let with_status = vmi(1, "192.168.1.10", accepted("True", 1));
        assert_eq!(
            with_status
                .weigh()
                .relevance(Some(labelled.weigh().fingerprint)),
            Relevance::Unchanged
        );
    }

    #[test]
    fn an_edit_waits_until_the_operator_accepts_or_refuses_it() {
        let before = vmi(1, "192.168.1.10", accepted("True", 1));
        // The spec edit: generation 2, labels and status still about 1.
        let edit = vmi(2, "192.168.1.11", accepted("True", 1));
        assert_eq!(
            edit.weigh().relevance(Some(before.weigh().fingerprint)),
            Relevance::Waiting
        );
        for verdict in ["True", "False"] {
            let decided = vmi(2, "192.168.1.11", accepted(verdict, 2));
            assert_eq!(
                decided.weigh().relevance(Some(edit.weigh().fingerprint)),
                Relevance::Changed,
                "{verdict}"
            );
        }
        // The operator's node label for generation 2 accepts it too.
        let mut labelled = edit.clone();
        labelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("node.trunkline.io/gw1".into(), "g2".into());
        assert!(!labelled.weigh().waiting);
        // A new object without a status or labels waits.
        let mut new = vmi(1, "192.168.1.12", json!([]));
        new.status = None;
        new.metadata.labels = None;
        assert_eq!(new.weigh().relevance(None), Relevance::Waiting);
    }

    #[test]
    fn a_routers_report_is_not_read_by_builds() {
        let mut router: PhysicalRouter = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": "gw1", "generation": 1, "resourceVersion": "7"},
            "spec": {"physicalInterfaces": [{"name": "eth1"}]}
        }))
        .unwrap();
        let before = router.weigh();
        assert!(!before.waiting, "routers are never accepted");
        let mut status = trunkline_api::PhysicalRouterStatus {
            programmed_generation: Some(3),
            ..Default::default()
        };
        status
            .programmed_through
            .insert("VirtualMachineInterface".into(), "1234".into());
        router.status = Some(status);
        router.metadata.resource_version = Some("8".into());
        assert_eq!(router.weigh(), before);
        router.spec.physical_interfaces.clear();
        router.metadata.generation = Some(2);
        assert_ne!(router.weigh().fingerprint, before.fingerprint);
    }

    #[test]
    fn changes_are_counted_by_what_they_mean() {
        let changes = Changes::default();
        changes.note(Relevance::Unchanged);
        assert_eq!(changes.seen(), Seen::default());
        changes.note(Relevance::Waiting);
        changes.note(Relevance::Changed);
        changes.note(Relevance::Changed);
        assert_eq!(
            changes.seen(),
            Seen {
                changed: 2,
                waiting: 1
            }
        );
    }
}
