//! What the agent's flow mirror pays to write a forwarding loop's new
//! flows into the XDP tier's flow map (`tier_flows`, an LRU hash), one
//! `BPF_MAP_UPDATE_ELEM` per entry (two per flow: forward and reverse)
//! against one `BPF_MAP_UPDATE_BATCH` for the loop, measured on the loaded
//! map (root: `cargo bench -p trunkline-xdp --bench flow_writes`).
//!
//! ```text
//!  Tier::load_with_flows(262144) ─ per round, both ways interleaved, for F in 1, 2, 8, 32 flows a loop:
//!    single: 2F × update(key, entry)     batch: update_batch(2F keys, 2F entries)
//!  keys never written before (first packets); median ns per flow over rounds
//! ```
//!
//! Flags (after `--`): `--rounds N` (default 200), `--loops L` per round
//! and way (default 50).

use std::time::Instant;

use trunkline_xdp::Tier;

const MAP: &str = "tier_flows";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = flag("--rounds", 200);
    let loops = flag("--loops", 50);
    let tier = match Tier::load_with_flows(false, 262_144) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flow_writes: cannot load the tier (root needed): {e}");
            std::process::exit(1);
        }
    };
    let maps = tier.maps();
    let (ks, vs) = maps.sizes(MAP).expect("tier_flows");
    let (ks, vs) = (ks as usize, vs as usize);
    let mut serial: u64 = 0;
    let mut key = |buf: &mut Vec<u8>| {
        serial += 1;
        let mut k = vec![0u8; ks];
        k[4] = 4;
        k[8..16].copy_from_slice(&serial.to_ne_bytes());
        buf.extend_from_slice(&k);
    };
    let entry = vec![0x5au8; vs];
    println!(
        "| flows a loop | one call per entry, ns/flow | one batch a loop, ns/flow | single / batch |"
    );
    println!("|---:|---:|---:|---:|");
    for flows in [1usize, 2, 8, 32] {
        let n = 2 * flows;
        let values: Vec<u8> = entry.repeat(n);
        let (mut single, mut batch) = (Vec::new(), Vec::new());
        let mut keys = Vec::with_capacity(n * ks);
        for round in 0..rounds {
            for way in [round % 2, 1 - round % 2] {
                let mut took = 0u128;
                for _ in 0..loops {
                    keys.clear();
                    for _ in 0..n {
                        key(&mut keys);
                    }
                    let start = Instant::now();
                    if way == 0 {
                        for i in 0..n {
                            maps.update(MAP, &keys[i * ks..(i + 1) * ks], &entry)
                                .expect("update");
                        }
                    } else {
                        let failed = maps.update_batch(MAP, &keys, &values).expect("batch");
                        assert!(failed.is_empty(), "{failed:?}");
                    }
                    took += start.elapsed().as_nanos();
                }
                let per_flow = took as f64 / (loops * flows) as f64;
                if way == 0 {
                    single.push(per_flow);
                } else {
                    batch.push(per_flow);
                }
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (s, b) = (median(&mut single), median(&mut batch));
        println!("| {flows} | {s:.0} | {b:.0} | {:.2} |", s / b);
    }
}
