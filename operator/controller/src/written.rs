//! The statuses the operator wrote, each remembered until its store shows
//! the write: a pass that runs before the watch event arrives then neither
//! writes the same status again nor re-stamps its conditions.
//!
//! An entry is read only while the stored object is still the version the
//! write was based on; once the store holds a newer version (the write, or
//! a later one) the entry is never read again and is dropped at its next
//! look-up. Kept, every written object's status would stay in memory twice
//! (once in the store, once here, as JSON): at 16K objects per node that
//! was the operator's largest holder after its stores.

use std::collections::HashMap;

use trunkline_operator_core::ObjectKey;

/// One written status.
#[derive(Debug)]
struct Entry {
    uid: Option<String>,
    /// The resourceVersion the write was based on.
    based_on: Option<String>,
    status: serde_json::Value,
}

/// The written statuses the stores do not show yet.
#[derive(Debug, Default)]
pub struct Written {
    entries: HashMap<ObjectKey, Entry>,
}

impl Written {
    /// Remembers `status`, written for `key` (object `uid`) at version
    /// `based_on`.
    pub fn insert(
        &mut self,
        key: ObjectKey,
        uid: Option<String>,
        based_on: Option<String>,
        status: serde_json::Value,
    ) {
        self.entries.insert(
            key,
            Entry {
                uid,
                based_on,
                status,
            },
        );
    }

    /// The status written for `key` if the store still holds the version
    /// the write was based on (`uid` and `version` are the stored
    /// object's); otherwise forgets it.
    pub fn take_current(
        &mut self,
        key: &ObjectKey,
        uid: Option<&str>,
        version: Option<&str>,
    ) -> Option<&serde_json::Value> {
        let current = self
            .entries
            .get(key)
            .is_some_and(|e| e.uid.as_deref() == uid && e.based_on.as_deref() == version);
        if !current {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| &e.status)
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &ObjectKey) {
        self.entries.remove(key);
    }

    /// Forgets everything (another leader may have written meanwhile).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many statuses are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trunkline_operator_core::Kind;

    fn key() -> ObjectKey {
        ObjectKey::namespaced(Kind::VirtualMachineInterface, "t", "a")
    }

    #[test]
    fn a_write_is_read_until_the_store_shows_it_then_forgotten() {
        let mut written = Written::default();
        written.insert(
            key(),
            Some("u1".into()),
            Some("10".into()),
            json!({"mplsLabel": 16}),
        );
        assert_eq!(
            written.take_current(&key(), Some("u1"), Some("10")),
            Some(&json!({"mplsLabel": 16})),
            "the store still holds the version the write was based on"
        );
        assert_eq!(written.len(), 1, "read, still remembered");
        assert_eq!(
            written.take_current(&key(), Some("u1"), Some("11")),
            None,
            "the store shows the write"
        );
        assert!(written.is_empty(), "forgotten once the store shows it");
        assert_eq!(written.take_current(&key(), Some("u1"), Some("10")), None);
    }

    #[test]
    fn a_recreated_object_does_not_read_the_old_ones_write() {
        let mut written = Written::default();
        written.insert(key(), Some("u1".into()), Some("10".into()), json!({}));
        assert_eq!(written.take_current(&key(), Some("u2"), Some("10")), None);
        assert!(written.is_empty());
    }
}
