//! Resource versions as numbers: comparable within one resource since
//! Kubernetes 1.35 (KEP-5504, client-go's `CompareResourceVersion`): a
//! positive integer in decimal without leading zeros, compared by length,
//! then lexically (so any length works, however large).
//!
//! The node dataplanes report, per kind, the highest resource version
//! their tables were built from; the operator compares it with the
//! resource version at which an object last changed in a way a node reads.

use std::cmp::Ordering;
use std::fmt;

/// A `metadata.resourceVersion` in its comparable form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceVersion(String);

impl ResourceVersion {
    /// The resource version `text`, when it is in the comparable form
    /// (decimal digits, no leading zero, not empty).
    pub fn parse(text: &str) -> Option<Self> {
        let comparable =
            !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
        comparable.then(|| Self(text.to_owned()))
    }

    /// The text, as the API server wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for ResourceVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for ResourceVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ResourceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_compare_as_numbers() {
        let rv = |s| ResourceVersion::parse(s).unwrap();
        assert!(rv("9") < rv("10"));
        assert!(rv("123") < rv("124"));
        assert!(rv("99999999999999999999") < rv("100000000000000000000"));
        assert_eq!(rv("42"), rv("42"));
        for bad in ["", "0", "012", "12a", "-1", " 1"] {
            assert_eq!(ResourceVersion::parse(bad), None, "{bad:?}");
        }
        assert_eq!(rv("7").to_string(), "7");
    }
}
