//! Validation samples of the API: for each kind, a valid base object and
//! cases that change it (see `testdata/validation/README.md`).
//!
//! They are data about the API, kept beside it so that two kinds of test
//! read the same cases: the unit tests of this crate evaluate the CEL rules
//! locally, and the end-to-end tests send the objects to a real API server.

use serde::Deserialize;
use serde_json::Value;

/// Who refuses an invalid case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefusedBy {
    /// A CEL rule (`x-kubernetes-validations`).
    Cel,
    /// The structural schema (type, range, length, enum, list keys).
    Schema,
}

/// One case: a change of the base object.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Short name, unique in its file.
    pub name: String,
    /// Merge patch applied to the base to make the object created.
    #[serde(default)]
    pub patch: Option<Value>,
    /// Merge patch applied to the created object as an update.
    #[serde(default)]
    pub update: Option<Value>,
    /// For invalid cases: who refuses it.
    #[serde(default)]
    pub by: Option<RefusedBy>,
    /// For invalid cases: substrings the refusal must contain.
    #[serde(default)]
    pub expect: Vec<String>,
}

/// The cases of one kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindCases {
    /// Kind name, e.g. `LogicalInterface`.
    pub kind: String,
    /// A valid object of the kind.
    pub base: Value,
    /// Cases that must be accepted.
    #[serde(default)]
    pub valid: Vec<Case>,
    /// Cases that must be refused.
    #[serde(default)]
    pub invalid: Vec<Case>,
}

impl Case {
    /// The object to create: the base with `patch` merged in.
    pub fn object(&self, base: &Value) -> Value {
        let mut object = base.clone();
        if let Some(patch) = &self.patch {
            merge_patch(&mut object, patch);
        }
        object
    }

    /// The object after the update, when the case is an update.
    pub fn updated(&self, base: &Value) -> Option<Value> {
        let update = self.update.as_ref()?;
        let mut object = self.object(base);
        merge_patch(&mut object, update);
        Some(object)
    }
}

const FILES: [&str; 13] = [
    include_str!("../testdata/validation/physicalrouter.yaml"),
    include_str!("../testdata/validation/logicalinterface.yaml"),
    include_str!("../testdata/validation/virtualmachineinterface.yaml"),
    include_str!("../testdata/validation/virtualnetwork.yaml"),
    include_str!("../testdata/validation/gatewayhagroup.yaml"),
    include_str!("../testdata/validation/virtualgateway.yaml"),
    include_str!("../testdata/validation/externalvtep.yaml"),
    include_str!("../testdata/validation/dcgateway.yaml"),
    include_str!("../testdata/validation/bgppeer.yaml"),
    include_str!("../testdata/validation/packettrace.yaml"),
    include_str!("../testdata/validation/securitygroup.yaml"),
    include_str!("../testdata/validation/virtualnetworkpolicy.yaml"),
    include_str!("../testdata/validation/clustervirtualnetworkpolicy.yaml"),
];

/// Every kind's cases. Panics on a malformed file: they are compiled in, so a
/// test run finds it at once.
pub fn all() -> Vec<KindCases> {
    FILES
        .iter()
        .map(|text| serde_saphyr::from_str(text).expect("testdata/validation is well-formed"))
        .collect()
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` removes a
/// member, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": 1}}),
        );
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}})
        );
    }

    #[test]
    fn every_file_parses_and_names_are_unique() {
        let all = all();
        assert_eq!(all.len(), FILES.len());
        for kind in &all {
            let mut names: Vec<&str> = kind
                .valid
                .iter()
                .chain(&kind.invalid)
                .map(|c| c.name.as_str())
                .collect();
            let count = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), count, "{}: duplicate case names", kind.kind);
            for case in &kind.invalid {
                assert!(
                    case.by.is_some(),
                    "{}/{}: says who refuses it",
                    kind.kind,
                    case.name
                );
                assert!(
                    !case.expect.is_empty(),
                    "{}/{}: expects a message",
                    kind.kind,
                    case.name
                );
            }
        }
    }
}
