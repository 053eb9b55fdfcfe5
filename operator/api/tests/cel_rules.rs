//! Evaluates every CEL rule of the generated CRDs locally (kube-cel, the
//! Kubernetes CEL libraries in Rust) on the shared validation samples:
//! valid samples pass, each invalid `cel` sample is refused with its
//! message, and every rule of every kind is broken by at least one sample.
//! The same samples go to a real API server in `tests/e2e`.

use std::collections::{BTreeMap, BTreeSet};

use kube_cel::Validator;
use serde_json::Value;
use trunkline_api::samples::{self, KindCases, RefusedBy};

fn schema_of(kind: &str) -> Value {
    let crd = trunkline_api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"));
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("CRD has a schema");
    serde_json::to_value(schema).expect("schema serializes")
}

/// Every (rule, message) pair anywhere in a schema.
fn rules_in(schema: &Value, out: &mut BTreeMap<String, String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for rule in rules {
                    let text = rule["rule"].as_str().unwrap_or_default().to_owned();
                    let message = rule["message"].as_str().unwrap_or_default().to_owned();
                    out.insert(text, message);
                }
            }
            for value in map.values() {
                rules_in(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| rules_in(v, out)),
        _ => {}
    }
}

fn validate(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<(String, String)> {
    match Validator::new().validate(schema, object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| (e.rule.clone(), e.to_string()))
            .collect(),
    }
}

fn check_kind(cases: &KindCases) -> Vec<String> {
    let schema = schema_of(&cases.kind);
    let mut failures = Vec::new();
    let mut fired = BTreeSet::new();

    let compiled = kube_cel::compile_schema(&schema);
    for error in compiled.compilation_errors() {
        failures.push(format!(
            "{}: a rule does not compile: {error:?}",
            cases.kind
        ));
    }

    let base_errors = validate(&schema, &cases.base, None);
    if !base_errors.is_empty() {
        failures.push(format!("{}: base refused: {base_errors:?}", cases.kind));
    }

    for case in &cases.valid {
        let object = case.object(&cases.base);
        let errors = validate(&schema, &object, None);
        if !errors.is_empty() {
            failures.push(format!(
                "{}/{}: valid sample refused: {errors:?}",
                cases.kind, case.name
            ));
        }
        if let Some(updated) = case.updated(&cases.base) {
            let errors = validate(&schema, &updated, Some(&object));
            if !errors.is_empty() {
                failures.push(format!(
                    "{}/{}: valid update refused: {errors:?}",
                    cases.kind, case.name
                ));
            }
        }
    }

    for case in cases
        .invalid
        .iter()
        .filter(|c| c.by == Some(RefusedBy::Cel))
    {
        let object = case.object(&cases.base);
        let errors = match case.updated(&cases.base) {
            Some(updated) => {
                let on_create = validate(&schema, &object, None);
                if !on_create.is_empty() {
                    failures.push(format!(
                        "{}/{}: the object before the update is already refused: {on_create:?}",
                        cases.kind, case.name
                    ));
                }
                validate(&schema, &updated, Some(&object))
            }
            None => validate(&schema, &object, None),
        };
        if errors.is_empty() {
            failures.push(format!(
                "{}/{}: invalid sample accepted",
                cases.kind, case.name
            ));
            continue;
        }
        for expected in &case.expect {
            if !errors
                .iter()
                .any(|(_, message)| message.contains(expected.as_str()))
            {
                failures.push(format!(
                    "{}/{}: no message contains {expected:?}; got {errors:?}",
                    cases.kind, case.name
                ));
            }
        }
        fired.extend(errors.into_iter().map(|(rule, _)| rule));
    }

    let mut rules = BTreeMap::new();
    rules_in(&schema, &mut rules);
    for (rule, message) in rules {
        if !fired.contains(&rule) {
            failures.push(format!(
                "{}: no invalid sample breaks the rule `{rule}` ({message})",
                cases.kind
            ));
        }
    }
    failures
}

#[test]
fn every_cel_rule_accepts_valid_samples_and_refuses_invalid_ones() {
    let all = samples::all();
    assert_eq!(
        all.len(),
        trunkline_api::crds().len(),
        "one sample file per kind"
    );
    let failures: Vec<String> = all.iter().flat_map(check_kind).collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_samples_deserialize_into_the_rust_types() {
    use trunkline_api::*;
    fn check<T: serde::de::DeserializeOwned>(cases: &KindCases) {
        let objects = std::iter::once(cases.base.clone()).chain(
            cases
                .valid
                .iter()
                .flat_map(|c| [Some(c.object(&cases.base)), c.updated(&cases.base)])
                .flatten(),
        );
        for object in objects {
            if let Err(e) = serde_json::from_value::<T>(object.clone()) {
                panic!("{}: {object} does not deserialize: {e}", cases.kind);
            }
        }
    }
    for cases in samples::all() {
        match cases.kind.as_str() {
            "PhysicalRouter" => check::<PhysicalRouter>(&cases),
            "LogicalInterface" => check::<LogicalInterface>(&cases),
            "VirtualMachineInterface" => check::<VirtualMachineInterface>(&cases),
            "VirtualNetwork" => check::<VirtualNetwork>(&cases),
            "GatewayHAGroup" => check::<GatewayHAGroup>(&cases),
            "VirtualGateway" => check::<VirtualGateway>(&cases),
            "ExternalVTEP" => check::<ExternalVTEP>(&cases),
            "DCGateway" => check::<DCGateway>(&cases),
            "BGPPeer" => check::<trunkline_api::BGPPeer>(&cases),
            "PacketTrace" => check::<PacketTrace>(&cases),
            "SecurityGroup" => check::<SecurityGroup>(&cases),
            "VirtualNetworkPolicy" => check::<trunkline_api::VirtualNetworkPolicy>(&cases),
            "ClusterVirtualNetworkPolicy" => {
                check::<trunkline_api::ClusterVirtualNetworkPolicy>(&cases)
            }
            other => panic!("unknown kind {other}"),
        }
    }
}
