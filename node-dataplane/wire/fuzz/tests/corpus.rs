//! The `wire_views` fuzz target as an ordinary test: its corpus, kept in
//! the repository, and mutations of it go through the same entry point on
//! every `cargo test`, without cargo-fuzz.

use std::path::Path;

use trunkline_wire_fuzz::{replay, views};

#[test]
fn the_corpus_and_its_mutations_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/wire_views");
    let seeds = replay::corpus(&dir);
    assert!(
        seeds.len() >= 10,
        "the seed corpus is in the repository: {}",
        seeds.len()
    );
    replay::run(&seeds, replay::mutations(50_000), views);
}
