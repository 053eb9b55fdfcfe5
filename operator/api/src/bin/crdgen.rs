//! Writes every CRD of the API as YAML into a directory (default `crds/`):
//! `cargo run -p trunkline-api --bin crdgen -- <dir>...`. `make crds` runs it;
//! a test fails when the committed files differ from what it would write.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let dirs = if dirs.is_empty() {
        vec![
            PathBuf::from("crds"),
            PathBuf::from("charts/trunkline/crds"),
        ]
    } else {
        dirs
    };
    for dir in &dirs {
        std::fs::create_dir_all(dir)?;
        for crd in trunkline_api::crds() {
            let path = dir.join(trunkline_api::crd_file_name(&crd));
            std::fs::write(&path, trunkline_api::crd_yaml(&crd)?)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
