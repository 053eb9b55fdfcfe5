//! The agent's watch stores: each object converted once, as its event
//! arrives, to the shared domain object every build reads.
//!
//! ```text
//!  watch event (API object, trimmed) --Relevant::convert--> Arc<domain object> + fingerprint
//!     --> Store (key -> (Arc, fingerprint)) --list()--> a build's Snapshot (pointers)
//! ```
//!
//! The API objects are not kept: a build takes pointers to the domain
//! objects (no conversion and no copy per build), and the last-accepted
//! cache keeps pointers to the same objects. A relist fills a second map
//! that replaces the first when it is complete, so a build never sees half
//! a list; its fingerprints say whether it changed anything
//! ([`crate::relevance`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

/// An object's name within its kind: its namespace (namespaced kinds
/// only) and its name, as its API metadata gives them.
pub type Key = (Option<String>, String);

/// The key of an API object.
pub fn key_of(object: &impl kube::Resource) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Objects held, each with its fingerprint.
type Entries<T> = HashMap<Key, (Arc<T>, u64)>;

#[derive(Debug)]
struct Held<T> {
    by_key: Entries<T>,
    /// A relist in progress: what it listed so far.
    listing: Option<Entries<T>>,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            listing: None,
        }
    }
}

/// One watch's objects, read by the compile loop; filled by its
/// [`Writer`].
#[derive(Debug)]
pub struct Store<T> {
    held: Arc<RwLock<Held<T>>>,
    ready: watch::Receiver<bool>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Self {
            held: self.held.clone(),
            ready: self.ready.clone(),
        }
    }
}

/// Fills a [`Store`] from its watch's events.
#[derive(Debug)]
pub struct Writer<T> {
    held: Arc<RwLock<Held<T>>>,
    ready: watch::Sender<bool>,
}

/// An empty store and its writer.
pub fn store<T>() -> (Store<T>, Writer<T>) {
    let held = Arc::new(RwLock::new(Held::default()));
    let (ready, ready_rx) = watch::channel(false);
    (
        Store {
            held: held.clone(),
            ready: ready_rx,
        },
        Writer { held, ready },
    )
}

impl<T> Store<T> {
    /// Every object held (pointers: no copy of any object).
    pub fn list(&self) -> Vec<Arc<T>> {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        held.by_key.values().map(|(o, _)| o.clone()).collect()
    }

    /// The object named `key`, if held.
    pub fn get(&self, key: &Key) -> Option<Arc<T>> {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        held.by_key.get(key).map(|(o, _)| o.clone())
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        held.by_key.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the first list is complete; false when the writer is
    /// gone before that.
    pub async fn wait_until_ready(&self) -> bool {
        let mut ready = self.ready.clone();
        ready.wait_for(|r| *r).await.is_ok()
    }
}

impl<T> Writer<T> {
    fn held(&self) -> std::sync::RwLockWriteGuard<'_, Held<T>> {
        self.held.write().unwrap_or_else(|p| p.into_inner())
    }

    /// An object applied, with its fingerprint `print`: the fingerprint it
    /// replaced.
    pub fn applied(&self, key: Key, object: T, print: u64) -> Option<u64> {
        self.held()
            .by_key
            .insert(key, (Arc::new(object), print))
            .map(|(_, before)| before)
    }

    /// An object deleted.
    pub fn deleted(&self, key: &Key) {
        self.held().by_key.remove(key);
    }

    /// A relist begins: the objects held stay readable until it is done.
    pub fn relist_started(&self) {
        let mut held = self.held();
        let capacity = held.by_key.len();
        held.listing = Some(HashMap::with_capacity(capacity));
    }

    /// An object of the relist.
    pub fn listed(&self, key: Key, object: T, print: u64) {
        self.held()
            .listing
            .get_or_insert_default()
            .insert(key, (Arc::new(object), print));
    }

    /// The relist is complete and replaces what was held: whether it
    /// differs (an object added, changed or gone). The store is ready from
    /// then on.
    pub fn relist_done(&self) -> bool {
        let changed = {
            let mut held = self.held();
            let listed = held.listing.take().unwrap_or_default();
            let changed = listed.len() != held.by_key.len()
                || listed.iter().any(|(key, (_, print))| {
                    held.by_key
                        .get(key)
                        .is_none_or(|(_, before)| before != print)
                });
            held.by_key = listed;
            changed
        };
        self.ready.send_replace(true);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        (Some("t".into()), name.into())
    }

    fn names(reader: &Store<&'static str>) -> Vec<&'static str> {
        let mut names: Vec<_> = reader.list().iter().map(|o| **o).collect();
        names.sort();
        names
    }

    #[test]
    fn a_relist_is_a_change_only_when_it_differs() {
        let (reader, writer) = store();
        assert_eq!(writer.applied(key("a"), "a1", 10), None);
        assert_eq!(writer.applied(key("b"), "b1", 20), None);
        assert_eq!(writer.applied(key("b"), "b2", 21), Some(20));
        assert_eq!(names(&reader), ["a1", "b2"]);
        let relist = |objects: &[(&str, &'static str, u64)]| {
            writer.relist_started();
            for &(k, o, p) in objects {
                writer.listed(key(k), o, p);
            }
            writer.relist_done()
        };
        assert!(!relist(&[("b", "b2", 21), ("a", "a1", 10)]), "the same");
        assert!(relist(&[("a", "a1", 10)]), "one gone");
        assert_eq!(names(&reader), ["a1"]);
        assert!(relist(&[("a", "a1", 10), ("c", "c1", 30)]), "one new");
        assert!(relist(&[("a", "a2", 11), ("c", "c1", 30)]), "one changed");
        assert_eq!(names(&reader), ["a2", "c1"]);
        assert!(relist(&[]), "all gone");
        assert!(reader.is_empty());
        writer.deleted(&key("a"));
    }

    #[test]
    fn a_relist_in_progress_is_not_seen() {
        let (reader, writer) = store();
        writer.applied(key("a"), "a1", 10);
        writer.relist_started();
        writer.listed(key("b"), "b1", 20);
        assert_eq!(
            names(&reader),
            ["a1"],
            "the old list until the new one is whole"
        );
        assert_eq!(reader.get(&key("a")).as_deref(), Some(&"a1"));
        assert!(writer.relist_done());
        assert_eq!(names(&reader), ["b1"]);
        assert_eq!(reader.get(&key("a")), None);
    }

    #[tokio::test]
    async fn ready_once_the_first_list_is_complete() {
        let (reader, writer) = store::<&'static str>();
        assert!(!*reader.ready.borrow());
        writer.relist_started();
        writer.listed(key("a"), "a1", 1);
        assert!(!*reader.ready.borrow());
        writer.relist_done();
        assert!(reader.wait_until_ready().await);
        // A writer gone before the list: never ready.
        let (reader, writer) = store::<&'static str>();
        drop(writer);
        assert!(!reader.wait_until_ready().await);
    }
}
