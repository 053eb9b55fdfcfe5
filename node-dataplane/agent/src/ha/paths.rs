//! Which node serves each multi-homed VMI (the VMIs an HA group's members
//! share): the original's path preference, with its sequence numbers and
//! flap damping, kept per VMI by every node that sends to it. Pure: time
//! is an input, claims to send are returned.
//!
//! ```text
//!  the VMI's traffic arrives here (fast path's seen mark),
//!  or this node became the group's active member ──> claim: seq + 1, owner = me
//!                                                     (to every node of the group)
//!  a claim (label, seq, owner) arrives ──> newer than ours (higher seq; equal seq: the
//!                                          owner's name sorts first)? take it
//!                                          older? answer with ours (a correction)
//!  ownership moved 5 times within 60 s ──> this node's own claims wait 4 s, doubling
//!                                          to 32 s while it keeps flapping
//! ```
//!
//! A VMI is named by its routed MPLS label: cluster-wide unique, allocated
//! by the operator, the same on every node. Only nodes that hold the VMI
//! (by placement) may own it; claims naming another owner are ignored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Moves of ownership within [`FLAP_WINDOW`] that start damping.
const FLAPS: usize = 5;
/// The window flaps are counted in, and the quiet time that resets the
/// back-off.
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// The first hold of a damped VMI's claims.
const FIRST_BACKOFF: Duration = Duration::from_secs(4);
/// The longest hold.
const MAX_BACKOFF: Duration = Duration::from_secs(32);

/// A multi-homed VMI as the node sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VmiSpec {
    /// Its routed label.
    pub label: u32,
    /// Its key (`namespace/name`), as the tables name it.
    pub key: String,
    /// The group serving it.
    pub group: String,
    /// The nodes that hold it (may own it).
    pub holders: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    spec: VmiSpec,
    seq: u64,
    owner: Option<String>,
    moves: VecDeque<Instant>,
    hold_until: Option<Instant>,
    backoff: Duration,
    /// Seen here while held: claim when the hold ends.
    pending: bool,
    /// A hold just ended: the next claim goes out whatever the flaps.
    released: bool,
}

/// What a received claim changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Labels whose owner changed.
    pub changed: Vec<u32>,
    /// Ours is newer: (label, seq, owner) to answer the sender with.
    pub corrections: Vec<(u32, u64, String)>,
}

/// The path state of every multi-homed VMI this node knows.
#[derive(Clone, Debug)]
pub struct Paths {
    me: String,
    entries: BTreeMap<u32, Entry>,
    /// The highest sequence heard per group (in heartbeats): a claim made
    /// here exceeds it.
    floors: BTreeMap<String, u64>,
}

/// Whether (seq a, owner a) is newer than (seq b, owner b).
fn newer(a: (u64, &str), b: (u64, Option<&str>)) -> bool {
    match b {
        (_, None) => true,
        (seq, Some(owner)) => a.0 > seq || (a.0 == seq && a.1 < owner),
    }
}

impl Paths {
    /// No VMI yet, for node `me`.
    pub fn new(me: &str) -> Self {
        Paths {
            me: me.to_owned(),
            entries: BTreeMap::new(),
            floors: BTreeMap::new(),
        }
    }

    /// The node this is.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The VMIs now known: state is kept for those that stay.
    pub fn configure(&mut self, specs: &[VmiSpec]) {
        let mut entries = BTreeMap::new();
        for spec in specs {
            let entry = match self.entries.remove(&spec.label) {
                Some(mut e) if e.spec.key == spec.key => {
                    e.spec = spec.clone();
                    e
                }
                _ => Entry {
                    spec: spec.clone(),
                    seq: 0,
                    owner: None,
                    moves: VecDeque::new(),
                    hold_until: None,
                    backoff: FIRST_BACKOFF,
                    pending: false,
                    released: false,
                },
            };
            entries.insert(spec.label, entry);
        }
        self.entries = entries;
    }

    /// The label of the VMI `key`.
    pub fn label_of(&self, key: &str) -> Option<u32> {
        self.entries
            .values()
            .find(|e| e.spec.key == key)
            .map(|e| e.spec.label)
    }

    /// The VMIs of `group`, by label.
    pub fn labels_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = u32> + 'a {
        self.entries
            .values()
            .filter(move |e| e.spec.group == group)
            .map(|e| e.spec.label)
    }

    /// The highest sequence known for `group`'s VMIs.
    pub fn max_seq(&self, group: &str) -> u64 {
        self.entries
            .values()
            .filter(|e| e.spec.group == group)
            .map(|e| e.seq)
            .chain(self.floors.get(group).copied())
            .max()
            .unwrap_or(0)
    }

    /// A heartbeat said `seq` is in use in `group`.
    pub fn note_seq(&mut self, group: &str, seq: u64) {
        let floor = self.floors.entry(group.to_owned()).or_default();
        *floor = (*floor).max(seq);
    }

    fn set_owner(entry: &mut Entry, seq: u64, owner: &str, now: Instant) -> bool {
        let moved = entry.owner.as_deref() != Some(owner);
        entry.seq = seq;
        entry.owner = Some(owner.to_owned());
        if moved {
            entry.moves.push_back(now);
            while entry
                .moves
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > FLAP_WINDOW)
            {
                entry.moves.pop_front();
            }
        }
        moved
    }

    /// This node saw the VMI's traffic (or must serve it): claim it unless
    /// it owns it already or its claims are held (flapping). Returns the
    /// claim to send.
    pub fn seen(&mut self, label: u32, now: Instant) -> Option<(u32, u64)> {
        let floor = self
            .entries
            .get(&label)
            .map(|e| self.max_seq(&e.spec.group))?;
        let me = self.me.clone();
        let entry = self.entries.get_mut(&label)?;
        if entry.owner.as_deref() == Some(me.as_str()) || !entry.spec.holders.contains(&me) {
            entry.pending = false;
            return None;
        }
        if entry.hold_until.is_some_and(|t| now < t) {
            entry.pending = true;
            return None;
        }
        let quiet = entry
            .moves
            .back()
            .is_none_or(|m| now.saturating_duration_since(*m) > FLAP_WINDOW);
        if quiet {
            entry.backoff = FIRST_BACKOFF;
        }
        let recent = entry
            .moves
            .iter()
            .filter(|t| now.saturating_duration_since(**t) <= FLAP_WINDOW)
            .count();
        if recent >= FLAPS && !std::mem::take(&mut entry.released) {
            entry.hold_until = Some(now + entry.backoff);
            entry.backoff = (entry.backoff * 2).min(MAX_BACKOFF);
            entry.pending = true;
            return None;
        }
        entry.hold_until = None;
        entry.pending = false;
        let seq = floor.max(entry.seq) + 1;
        Self::set_owner(entry, seq, &me, now);
        Some((label, seq))
    }

    /// This node takes over `labels` (its group elected it): one claim for
    /// all, above every sequence known for the group, whatever the damping.
    pub fn take_over(&mut self, group: &str, now: Instant) -> Vec<(u32, u64)> {
        let seq = self.max_seq(group) + 1;
        let me = self.me.clone();
        let mut claims = Vec::new();
        for entry in self
            .entries
            .values_mut()
            .filter(|e| e.spec.group == group && e.spec.holders.contains(&me))
        {
            Self::set_owner(entry, seq, &me, now);
            entry.pending = false;
            claims.push((entry.spec.label, seq));
        }
        claims
    }

    /// Mode STP: claims for this node of the VMIs of `group` that another
    /// node has owned, unchallenged, for at least `settled` (damped like
    /// [`Paths::seen`]). The switches' spanning tree, not an election,
    /// decides who forwards, and a member whose port it blocks no longer
    /// sees the instances' traffic: a silent instance would stay routed
    /// toward it (for example after a fabric cut healed, both members
    /// having forwarded meanwhile). The member the tree lets forward takes
    /// such VMIs back once ownership has settled elsewhere, which a member
    /// that has just been blocked no longer claims (it hears no BPDUs).
    pub fn reclaim(&mut self, group: &str, settled: Duration, now: Instant) -> Vec<(u32, u64)> {
        let me = self.me.clone();
        let labels: Vec<u32> = self
            .entries
            .values()
            .filter(|e| {
                e.spec.group == group
                    && e.spec.holders.contains(&me)
                    && e.owner.as_deref() != Some(me.as_str())
                    && e.moves
                        .back()
                        .is_none_or(|t| now.saturating_duration_since(*t) >= settled)
            })
            .map(|e| e.spec.label)
            .collect();
        labels
            .into_iter()
            .filter_map(|l| self.seen(l, now))
            .collect()
    }

    /// Claims held by damping whose hold ended: send them now.
    pub fn tick(&mut self, now: Instant) -> Vec<(u32, u64)> {
        let due: Vec<u32> = self
            .entries
            .values_mut()
            .filter_map(|e| {
                if let Some(t) = e.hold_until
                    && now >= t
                {
                    e.hold_until = None;
                    e.released = true;
                    if e.pending {
                        return Some(e.spec.label);
                    }
                }
                None
            })
            .collect();
        due.into_iter().filter_map(|l| self.seen(l, now)).collect()
    }

    /// A claim that `owner` serves `entries` arrived.
    pub fn receive(&mut self, owner: &str, entries: &[(u32, u64)], now: Instant) -> Received {
        let mut out = Received::default();
        for &(label, seq) in entries {
            let Some(entry) = self.entries.get_mut(&label) else {
                continue;
            };
            if !entry.spec.holders.contains(owner) {
                continue;
            }
            let current = (entry.seq, entry.owner.as_deref());
            if newer((seq, owner), current) {
                if Self::set_owner(entry, seq, owner, now) {
                    out.changed.push(label);
                }
            } else if let (current_seq, Some(current_owner)) = current
                && (current_seq, current_owner) != (seq, owner)
            {
                out.corrections
                    .push((label, current_seq, current_owner.to_owned()));
            }
        }
        out
    }

    /// The VMIs this node owns in `group`, for the periodic refresh.
    pub fn owned(&self, group: &str) -> Vec<(u32, u64)> {
        self.entries
            .values()
            .filter(|e| e.spec.group == group && e.owner.as_deref() == Some(self.me.as_str()))
            .map(|e| (e.spec.label, e.seq))
            .collect()
    }

    /// Who serves `label` now, when known.
    pub fn owner(&self, label: u32) -> Option<&str> {
        self.entries.get(&label).and_then(|e| e.owner.as_deref())
    }

    /// Every VMI: (key, owner when known).
    pub fn all(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries
            .values()
            .map(|e| (e.spec.key.as_str(), e.owner.as_deref()))
    }

    /// The group of `label`.
    pub fn group_of(&self, label: u32) -> Option<&str> {
        self.entries.get(&label).map(|e| e.spec.group.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(label: u32, holders: &[&str]) -> VmiSpec {
        VmiSpec {
            label,
            key: format!("t/v{label}"),
            group: "g".into(),
            holders: holders.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn node(me: &str) -> Paths {
        let mut p = Paths::new(me);
        p.configure(&[spec(20, &["gw1", "gw2"]), spec(21, &["gw1", "gw2"])]);
        p
    }

    #[test]
    fn the_node_that_sees_the_traffic_claims_and_the_newest_claim_wins() {
        let t = Instant::now();
        let (mut gw1, mut gw2, mut gw3) = (node("gw1"), node("gw2"), node("gw3"));
        let claim = gw1.seen(20, t).expect("a claim");
        assert_eq!(claim, (20, 1));
        assert_eq!(gw1.seen(20, t), None, "owned already");
        for other in [&mut gw2, &mut gw3] {
            assert_eq!(other.receive("gw1", &[claim], t).changed, [20]);
            assert_eq!(other.owner(20), Some("gw1"));
        }
        // gw2 sees it now (STP reconverged): seq 2, everyone follows.
        let claim = gw2.seen(20, t).unwrap();
        assert_eq!(claim, (20, 2));
        for other in [&mut gw1, &mut gw3] {
            assert_eq!(other.receive("gw2", &[claim], t).changed, [20]);
        }
        assert_eq!(gw1.owned("g"), []);
        assert_eq!(gw2.owned("g"), [(20, 2)]);
        // A late copy of gw1's old claim changes nothing, and gets the
        // newer state back.
        let r = gw3.receive("gw1", &[(20, 1)], t);
        assert!(r.changed.is_empty());
        assert_eq!(r.corrections, [(20, 2, "gw2".to_owned())]);
        // Equal sequences: the owner's name that sorts first wins, on
        // every node alike.
        assert_eq!(gw3.receive("gw1", &[(20, 2)], t).changed, [20]);
        // A claim for a node that does not hold the VMI is ignored.
        assert!(gw3.receive("gw9", &[(20, 99)], t).changed.is_empty());
        assert!(gw3.receive("gw1", &[(77, 1)], t).changed.is_empty());
    }

    #[test]
    fn a_takeover_claims_every_vmi_of_the_group_above_everything_known() {
        let t = Instant::now();
        let mut gw2 = node("gw2");
        gw2.receive("gw1", &[(20, 5)], t);
        gw2.note_seq("g", 9);
        let claims = gw2.take_over("g", t);
        assert_eq!(claims, [(20, 10), (21, 10)]);
        assert_eq!(gw2.owner(21), Some("gw2"));
        assert_eq!(gw2.max_seq("g"), 10);
        assert_eq!(gw2.label_of("t/v21"), Some(21));
        assert_eq!(gw2.labels_of("g").collect::<Vec<_>>(), [20, 21]);
    }

    #[test]
    fn flapping_holds_this_nodes_claims_4_s_then_longer() {
        let t0 = Instant::now();
        let (mut gw1, mut gw2) = (node("gw1"), node("gw2"));
        let mut t = t0;
        // Five moves within a minute.
        for _ in 0..2 {
            let c = gw1.seen(20, t).unwrap();
            gw2.receive("gw1", &[c], t);
            t += Duration::from_secs(1);
            let c = gw2.seen(20, t).unwrap();
            gw1.receive("gw2", &[c], t);
            t += Duration::from_secs(1);
        }
        let c = gw1.seen(20, t).unwrap();
        gw2.receive("gw1", &[c], t);
        t += Duration::from_secs(1);
        // gw2 sees it again: held.
        assert_eq!(gw2.seen(20, t), None, "damped");
        assert_eq!(gw2.owner(20), Some("gw1"));
        assert!(gw2.tick(t + Duration::from_secs(3)).is_empty());
        let due = gw2.tick(t + Duration::from_secs(4));
        assert_eq!(due.len(), 1, "claimed when the hold ends");
        assert_eq!(gw2.owner(20), Some("gw2"));
        // Still flapping: the next hold is 8 s.
        let t = t + Duration::from_secs(5);
        let c = gw1.seen(20, t).unwrap_or((20, 99));
        gw2.receive("gw1", &[c], t);
        assert_eq!(gw2.seen(20, t), None);
        assert!(gw2.tick(t + Duration::from_secs(7)).is_empty());
        assert_eq!(gw2.tick(t + Duration::from_secs(8)).len(), 1);
        // Quiet for a minute: back to 4 s.
        let later = t + Duration::from_secs(200);
        assert!(gw2.receive("gw1", &[(20, 1000)], later).changed == [20]);
        assert!(
            gw2.seen(20, later).is_some(),
            "not damped after a quiet minute"
        );
    }

    #[test]
    fn in_mode_stp_the_forwarding_member_takes_back_what_settled_elsewhere() {
        let t = Instant::now();
        let settled = Duration::from_secs(12);
        let (mut gw1, mut gw2) = (node("gw1"), node("gw2"));
        // gw1 took both over; then gw2 claimed them (it forwarded while the
        // fabric was cut) and gw1 learnt it when the cut healed.
        for c in gw1.take_over("g", t) {
            gw2.receive("gw1", &[c], t);
        }
        let healed = t + Duration::from_secs(30);
        let claims = gw2.take_over("g", healed);
        assert!(gw1.receive("gw2", &claims, healed).changed.len() == 2);
        // Not before ownership has settled for `settled`.
        assert!(gw1.reclaim("g", settled, healed).is_empty());
        assert!(
            gw1.reclaim("g", settled, healed + Duration::from_secs(11))
                .is_empty()
        );
        let back = gw1.reclaim("g", settled, healed + settled);
        assert_eq!(back.len(), 2, "{back:?}");
        assert!(back.iter().all(|(_, seq)| *seq > claims[0].1));
        assert_eq!(gw1.owner(20), Some("gw1"));
        assert_eq!(gw2.receive("gw1", &back, healed + settled).changed.len(), 2);
        // Nothing left to take back; a node that does not hold a VMI never
        // claims it.
        assert!(gw1.reclaim("g", settled, healed + settled).is_empty());
        let mut gw3 = node("gw3");
        gw3.receive("gw1", &back, healed + settled);
        assert!(
            gw3.reclaim("g", Duration::ZERO, healed + 2 * settled)
                .is_empty()
        );
    }

    #[test]
    fn configuration_keeps_what_stays() {
        let t = Instant::now();
        let mut gw1 = node("gw1");
        gw1.seen(20, t);
        gw1.configure(&[spec(20, &["gw1", "gw2"])]);
        assert_eq!(gw1.owner(20), Some("gw1"));
        assert_eq!(gw1.owner(21), None);
        // A node that does not hold the VMI never claims it.
        let mut gw3 = node("gw3");
        assert_eq!(gw3.seen(20, t), None);
        assert_eq!(gw3.group_of(20), Some("g"));
        assert_eq!(gw3.all().count(), 2);
    }
}
