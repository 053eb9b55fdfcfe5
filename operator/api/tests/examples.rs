//! `deploy/examples` must stay valid against the API: every manifest parses,
//! every trunkline object deserializes into its Rust type and passes every
//! CEL rule of its CRD, and each kustomization lists every manifest of its
//! directory. (`tests/e2e` also applies them to a real API server.)

use std::path::{Path, PathBuf};

use kube_cel::Validator;
use serde_json::Value;
use trunkline_api::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples")
}

fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("deploy/examples exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml")
        })
        .collect();
    files.sort();
    files
}

fn check_object(path: &Path, object: &Value) {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    if api_version != format!("{GROUP}/{VERSION}") {
        assert_eq!(
            (api_version, kind),
            ("v1", "Namespace"),
            "{}: unexpected object",
            path.display()
        );
        return;
    }
    let typed = match kind {
        "PhysicalRouter" => serde_json::from_value::<PhysicalRouter>(object.clone()).err(),
        "LogicalInterface" => serde_json::from_value::<LogicalInterface>(object.clone()).err(),
        "VirtualMachineInterface" => {
            serde_json::from_value::<VirtualMachineInterface>(object.clone()).err()
        }
        "VirtualNetwork" => serde_json::from_value::<VirtualNetwork>(object.clone()).err(),
        "GatewayHAGroup" => serde_json::from_value::<GatewayHAGroup>(object.clone()).err(),
        "VirtualGateway" => serde_json::from_value::<VirtualGateway>(object.clone()).err(),
        "ExternalVTEP" => serde_json::from_value::<ExternalVTEP>(object.clone()).err(),
        "DCGateway" => serde_json::from_value::<DCGateway>(object.clone()).err(),
        "BGPPeer" => serde_json::from_value::<trunkline_api::BGPPeer>(object.clone()).err(),
        "SecurityGroup" => serde_json::from_value::<SecurityGroup>(object.clone()).err(),
        "VirtualNetworkPolicy" => {
            serde_json::from_value::<trunkline_api::VirtualNetworkPolicy>(object.clone()).err()
        }
        "ClusterVirtualNetworkPolicy" => {
            serde_json::from_value::<trunkline_api::ClusterVirtualNetworkPolicy>(object.clone())
                .err()
        }
        other => panic!("{}: unknown kind {other}", path.display()),
    };
    assert!(
        typed.is_none(),
        "{}: {kind} does not deserialize: {typed:?}",
        path.display()
    );
    let crd = crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("CRD of kind");
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref()),
    )
    .expect("schema serializes");
    if let Err(errors) = Validator::new().validate(&schema, object, None) {
        panic!("{}: {kind} breaks CEL rules: {errors:?}", path.display());
    }
}

#[test]
fn every_example_is_valid_against_the_crds() {
    let dirs = scenario_dirs();
    assert_eq!(dirs.len(), 10, "one directory per scenario: {dirs:?}");
    let mut objects = 0;
    for dir in &dirs {
        for path in manifests(dir) {
            let text = std::fs::read_to_string(&path).expect("readable");
            let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for object in docs.iter().filter(|d| !d.is_null()) {
                check_object(&path, object);
                objects += 1;
            }
        }
    }
    assert!(objects >= 20, "examples declare {objects} objects");
}

#[test]
fn every_kustomization_lists_every_manifest() {
    for dir in scenario_dirs() {
        let text =
            std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization.yaml");
        let kustomization: Value = serde_saphyr::from_str(&text).expect("parses");
        let mut listed: Vec<String> = kustomization["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r.as_str().expect("string").to_owned())
            .collect();
        listed.sort();
        let mut present: Vec<String> = manifests(&dir)
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        present.sort();
        assert_eq!(
            listed,
            present,
            "{}: kustomization resources",
            dir.display()
        );
    }
}
