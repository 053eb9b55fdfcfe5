//! The XDP tier loads (the verifier accepts it) with and without tracing.
//! Needs root (CI runs as root).

#[test]
fn the_tier_program_passes_the_verifier() {
    for trace in [false, true] {
        let tier = trunkline_xdp::Tier::load(trace).unwrap_or_else(|e| panic!("{e}"));
        let maps = tier.maps();
        assert_eq!(maps.sizes("tier_state").unwrap(), (4, 4));
        maps.synchronize().unwrap();
    }
}
