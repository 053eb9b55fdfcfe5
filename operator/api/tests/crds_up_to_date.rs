//! The CRD YAML committed under `crds/` and in the chart must be exactly what
//! the Rust types generate: a type change without `make crds` fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where `make crds` writes the CRDs, relative to the repository root.
const CRD_DIRS: [&str; 2] = ["crds", "charts/trunkline/crds"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn committed_crds_match_the_rust_types() {
    let crds = trunkline_api::crds();
    for dir in CRD_DIRS {
        let dir_path = repo_root().join(dir);
        let mut expected_files = BTreeSet::new();
        for crd in &crds {
            let name = trunkline_api::crd_file_name(crd);
            let path = dir_path.join(&name);
            let generated = trunkline_api::crd_yaml(crd).expect("CRD renders");
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
            assert!(
                committed == generated,
                "{} is out of date with the Rust types in operator/api: run `make crds` and commit the result",
                path.display()
            );
            expected_files.insert(name);
        }
        let present: BTreeSet<String> = std::fs::read_dir(&dir_path)
            .unwrap_or_else(|e| panic!("{}: {e}", dir_path.display()))
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        let stale: Vec<_> = present.difference(&expected_files).collect();
        assert!(
            stale.is_empty(),
            "{dir}: files no kind generates (remove them): {stale:?}"
        );
    }
}

#[test]
fn every_kind_is_in_the_category_and_has_short_names_and_a_status_subresource() {
    for crd in trunkline_api::crds() {
        let names = &crd.spec.names;
        assert_eq!(
            names.categories.as_deref(),
            Some(&[trunkline_api::CATEGORY.to_owned()][..])
        );
        assert!(
            names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{}",
            names.kind
        );
        assert_eq!(crd.spec.group, trunkline_api::GROUP);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, trunkline_api::VERSION);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{}",
            names.kind
        );
        let columns = version
            .additional_printer_columns
            .as_deref()
            .unwrap_or_default();
        assert!(
            columns.iter().any(|c| c.name == "Ready"),
            "{} shows Ready",
            names.kind
        );
    }
}

/// `kubectl explain` shows descriptions: every property of every schema has one.
#[test]
fn every_field_is_documented() {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, prop) in props {
                let here = format!("{path}.{name}");
                let is_meta = here == ".metadata" || here == ".apiVersion" || here == ".kind";
                if !is_meta
                    && prop
                        .get("description")
                        .and_then(|d| d.as_str())
                        .is_none_or(str::is_empty)
                {
                    missing.push(here.clone());
                }
                walk(&here, prop, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    let mut missing = Vec::new();
    for crd in trunkline_api::crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema");
        let value = serde_json::to_value(schema).expect("serializes");
        walk(&crd.spec.names.kind, &value, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}
