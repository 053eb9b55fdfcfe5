//! Mode STP: a member's state, as far as it can see it. The switches'
//! spanning tree decides; the member only watches what its switch sends on
//! VLAN 0 of its member port (the BPDU attachment's received frames):
//!
//! ```text
//!  trunk link down ─────────────────────────────> Down (TrunkDown)
//!  BPDUs arrived within the window ─────────────> Active (BpdusHeard): the switch's port
//!                                                 toward it is designated (listening,
//!                                                 learning or forwarding)
//!  none ────────────────────────────────────────> Standby (NoBpdus): its port is blocked
//!                                                 (alternate or backup ports send none)
//! ```
//! The window is three times the 802.1D default hello time (2 s); a switch
//! with a longer hello time makes a member flap between the two.

use std::time::{Duration, Instant};

use super::election::{Reason, Role, Transition};

/// How long after the last BPDU a member still counts as Active.
pub const WINDOW: Duration = Duration::from_secs(6);

/// A member's view of its port's spanning-tree state.
#[derive(Clone, Debug)]
pub struct StpObserver {
    last_count: Option<u64>,
    last_bpdu: Option<Instant>,
    role: Role,
    reason: Reason,
    since: Instant,
}

impl StpObserver {
    /// Nothing seen yet, at `now`.
    pub fn new(now: Instant) -> Self {
        StpObserver {
            last_count: None,
            last_bpdu: None,
            role: Role::Standby,
            reason: Reason::NoBpdus,
            since: now,
        }
    }

    /// What the member sees at `now`: how many frames its BPDU attachment
    /// has received so far (`None` when it has none), and its trunk link.
    pub fn observe(
        &mut self,
        received: Option<u64>,
        trunk_up: bool,
        now: Instant,
    ) -> Option<Transition> {
        if let Some(count) = received {
            if self.last_count.is_some_and(|c| count > c) {
                self.last_bpdu = Some(now);
            }
            self.last_count = Some(count);
        }
        let (role, reason) = if !trunk_up {
            (Role::Down, Reason::TrunkDown)
        } else if self
            .last_bpdu
            .is_some_and(|t| now.saturating_duration_since(t) < WINDOW)
        {
            (Role::Active, Reason::BpdusHeard)
        } else {
            (Role::Standby, Reason::NoBpdus)
        };
        self.reason = reason;
        if role == self.role {
            return None;
        }
        let from = self.role;
        self.role = role;
        self.since = now;
        Some(Transition {
            from,
            to: role,
            reason,
        })
    }

    /// Its role now.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Since when.
    pub fn since(&self) -> Instant {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpdus_make_a_member_active_and_their_absence_standby() {
        let t = Instant::now();
        let mut stp = StpObserver::new(t);
        assert_eq!(stp.observe(Some(0), true, t), None);
        let up = stp
            .observe(Some(3), true, t + Duration::from_secs(1))
            .unwrap();
        assert_eq!((up.to, up.reason), (Role::Active, Reason::BpdusHeard));
        assert_eq!(stp.observe(Some(3), true, t + Duration::from_secs(6)), None);
        let blocked = stp
            .observe(Some(3), true, t + Duration::from_secs(7))
            .unwrap();
        assert_eq!(
            (blocked.to, blocked.reason),
            (Role::Standby, Reason::NoBpdus)
        );
        let down = stp
            .observe(Some(9), false, t + Duration::from_secs(8))
            .unwrap();
        assert_eq!((down.to, down.reason), (Role::Down, Reason::TrunkDown));
        assert_eq!(stp.since(), t + Duration::from_secs(8));
    }
}
