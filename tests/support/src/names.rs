//! Unique, DNS-1123 compliant names, so that tests sharing one control plane
//! never collide on cluster-scoped objects or namespaces.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest name a namespace (a DNS-1123 label) may have.
const MAX_LABEL: usize = 63;

/// `prefix-<suffix>`: a name no other call in this process returns, with a
/// random part so names from different runs differ too.
///
/// The prefix is lower-cased, characters other than `a-z`, `0-9` and `-` become
/// `-`, and it is shortened so that the result is a valid DNS-1123 label (at
/// most 63 characters), which is also a valid name for every object kind.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded randomly per instance: random bits without a dependency.
    let random = RandomState::new().hash_one(n);
    let suffix = format!("{}{}", base36(random % 36u64.pow(5), 5), base36(n, 1));

    let mut head: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    head.truncate(MAX_LABEL - 1 - suffix.len());
    let head = head.trim_matches('-');
    if head.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{head}-{suffix}")
    }
}

/// `n` in base 36 (digits and lower-case letters), left-padded with `0` to `width`.
fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.is_empty() {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base-36 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_dns1123_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= MAX_LABEL
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn names_are_unique_and_valid() {
        let mut seen = HashSet::new();
        for prefix in ["gc", "Status_Sub", "", "-", &"x".repeat(100), "a.b/c"] {
            for _ in 0..200 {
                let name = unique_name(prefix);
                assert!(is_dns1123_label(&name), "{name:?} is not a DNS-1123 label");
                assert!(seen.insert(name.clone()), "{name} returned twice");
            }
        }
    }

    #[test]
    fn prefix_is_kept() {
        assert!(unique_name("rbac").starts_with("rbac-"));
        assert!(unique_name("Status_Sub").starts_with("status-sub-"));
    }

    #[test]
    fn base36_pads_and_encodes() {
        assert_eq!(base36(0, 3), "000");
        assert_eq!(base36(35, 1), "z");
        assert_eq!(base36(36, 1), "10");
    }
}
