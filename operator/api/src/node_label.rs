//! The node labels: the operator labels every object with the gateway
//! nodes that must hold it (`node.trunkline.io/<node>: ""`), and each node
//! dataplane watches only the objects labelled with its node, so that what
//! it receives scales with its node, not with the cluster.
//!
//! A label's name part is at most 63 characters of `[A-Za-z0-9-_.]`,
//! starting and ending alphanumeric. A node whose name fits is labelled by
//! its name; any other (a longer name) by `h-` and a 64-bit FNV-1a hash of
//! its name in hex, which both sides compute alike.
//!
//! A label's value carries the operator's acceptance: `g<generation>` when
//! the operator accepted that generation of the object (see
//! [`value_of`]), so that a node can program an object from its labels
//! alone, before (or without) the status write that says the same. An
//! empty value (older operators) carries nothing, and the status decides.

/// The prefix of every node label.
pub const PREFIX: &str = "node.trunkline.io/";

/// The name part of node `node`'s label.
pub fn name_of(node: &str) -> String {
    if valid_name(node) {
        node.to_owned()
    } else {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in node.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("h-{hash:016x}")
    }
}

/// The label key of node `node`: `node.trunkline.io/<name>`.
pub fn key_of(node: &str) -> String {
    format!("{PREFIX}{}", name_of(node))
}

/// The name part of a node label key, if `key` is one.
pub fn name_in(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX).filter(|n| valid_name(n))
}

/// The value of a node label on an object whose generation `generation`
/// the operator accepted: `g<generation>`.
pub fn value_of(generation: i64) -> String {
    format!("g{generation}")
}

/// The generation a node label's value says the operator accepted, if it
/// says one (see [`value_of`]).
pub fn accepted_generation(value: &str) -> Option<i64> {
    value.strip_prefix('g')?.parse().ok()
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_become_label_names() {
        assert_eq!(key_of("gw-1"), "node.trunkline.io/gw-1");
        assert_eq!(
            name_of("ip-10-0-0-1.eu-west-1.compute.internal"),
            "ip-10-0-0-1.eu-west-1.compute.internal"
        );
        let long = "a".repeat(64);
        let hashed = name_of(&long);
        assert!(hashed.starts_with("h-") && hashed.len() == 18, "{hashed}");
        assert_eq!(hashed, name_of(&long), "stable");
        assert_ne!(hashed, name_of(&"b".repeat(64)));
        assert_eq!(name_in("node.trunkline.io/gw-1"), Some("gw-1"));
        assert_eq!(name_in("trunkline.io/bench"), None);
        assert_eq!(name_in("node.trunkline.io/-x"), None);
    }

    #[test]
    fn values_carry_the_accepted_generation() {
        assert_eq!(value_of(7), "g7");
        assert_eq!(accepted_generation(&value_of(7)), Some(7));
        assert_eq!(accepted_generation(""), None, "older operators' labels");
        assert_eq!(accepted_generation("7"), None);
        assert_eq!(accepted_generation("gx"), None);
    }
}
