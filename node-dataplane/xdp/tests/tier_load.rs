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

/// The flow map (an LRU hash) takes batched writes and removals: in
/// order (a key written twice keeps the later value), every element of the
/// batch, and a removal of keys some of which are absent removes the
/// others.
#[test]
fn the_flow_map_takes_batched_writes_and_removals_in_order() {
    let tier = trunkline_xdp::Tier::load_with_flows(false, 1024).unwrap_or_else(|e| panic!("{e}"));
    let maps = tier.maps();
    let (ks, vs) = maps.sizes("tier_flows").unwrap();
    let (ks, vs) = (ks as usize, vs as usize);
    let key = |i: u8| {
        let mut k = vec![0u8; ks];
        k[0] = i;
        k[4] = 4;
        k
    };
    let value = |v: u8| vec![v; vs];
    // Keys 1..=40, then key 7 again with another value.
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for i in 1..=40u8 {
        keys.extend(key(i));
        values.extend(value(i));
    }
    keys.extend(key(7));
    values.extend(value(99));
    let failed = maps.update_batch("tier_flows", &keys, &values).unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let mut got = vec![0u8; vs];
    for i in 1..=40u8 {
        assert!(
            maps.lookup("tier_flows", &key(i), &mut got).unwrap(),
            "key {i}"
        );
        let want = if i == 7 { 99 } else { i };
        assert_eq!(got, value(want), "key {i}");
    }
    // Wrong sizes are refused before any call.
    assert!(
        maps.update_batch("tier_flows", &keys, &values[1..])
            .is_err()
    );
    // Remove 1..=20 and 41..=45 (absent), interleaved.
    let mut gone = Vec::new();
    for i in 1..=20u8 {
        gone.extend(key(i));
        if i % 4 == 0 {
            gone.extend(key(40 + i / 4));
        }
    }
    let failed = maps.delete_batch("tier_flows", &gone).unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    for i in 1..=40u8 {
        let present = maps.lookup("tier_flows", &key(i), &mut got).unwrap();
        assert_eq!(present, i > 20, "key {i}");
    }
}
