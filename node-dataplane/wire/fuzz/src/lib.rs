//! The fuzz entry point of `trunkline-wire`: every zero-copy view
//! (`new_checked`) and every `Repr::parse` on the same untrusted bytes, as
//! smoltcp's `packet_parser` target does. None may panic, read out of
//! bounds or loop, whatever the bytes.
//!
//! ```text
//!  bytes ──> ethernet, 802.1Q, ARP, IPv4, IPv6, ICMPv4, ICMPv6, UDP,
//!            MPLS label entry, VXLAN: new_checked, then Repr::parse
//! ```
//!
//! Driven by libFuzzer (`fuzz_targets/wire_views.rs`, `make fuzz`) and, on
//! the corpus kept in the repository plus mutations of it, by
//! `tests/corpus.rs` in every `cargo test`.

#![forbid(unsafe_code)]

use trunkline_wire::{
    arp, dhcpv4, dhcpv6, ethernet, icmpv4, icmpv6, ipv4, ipv6, mpls, udp, vlan, vxlan,
};

/// Runs every view of the wire crate over `data`.
pub fn views(data: &[u8]) {
    if let Ok(frame) = ethernet::Frame::new_checked(data) {
        let _ = ethernet::Repr::parse(&frame);
        let _ = frame.payload();
    }
    if let Ok(tag) = vlan::Packet::new_checked(data) {
        let _ = vlan::Repr::parse(&tag);
    }
    if let Ok(packet) = arp::Packet::new_checked(data) {
        let _ = arp::Repr::parse(&packet);
    }
    if let Ok(packet) = ipv4::Packet::new_checked(data) {
        let _ = ipv4::Repr::parse(&packet);
        let _ = packet.payload();
    }
    if let Ok(packet) = ipv6::Packet::new_checked(data) {
        let _ = ipv6::Repr::parse(&packet);
        let _ = packet.payload();
    }
    if let Ok(packet) = icmpv4::Packet::new_checked(data) {
        let _ = icmpv4::Repr::parse(&packet);
    }
    if let Ok(packet) = icmpv6::Packet::new_checked(data) {
        let addr = "fd00::1".parse().expect("an address");
        let _ = icmpv6::Repr::parse(&addr, &addr, &packet);
    }
    if let Ok(packet) = udp::Packet::new_checked(data) {
        let _ = udp::Repr::parse(&packet);
        let _ = packet.payload();
    }
    if let Ok(entry) = mpls::Packet::new_checked(data) {
        let _ = mpls::Repr::parse(&entry);
    }
    if let Ok(header) = vxlan::Packet::new_checked(data) {
        let _ = vxlan::Repr::parse(&header);
    }
    if let Ok(message) = dhcpv4::Packet::new_checked(data) {
        let _ = dhcpv4::Repr::parse(&message);
        for option in dhcpv4::Options::new(message.options()) {
            let _ = option;
        }
    }
    if let Ok(message) = dhcpv6::Packet::new_checked(data) {
        let _ = dhcpv6::Repr::parse(&message);
        for option in dhcpv6::Options::new(message.options()) {
            let _ = option;
        }
    }
    for option in icmpv6::NdiscOptions::new(data) {
        let _ = option.map(|o| o.link_layer_addr());
    }
}

/// Replays a corpus through an entry point without libFuzzer, as an
/// ordinary test does: every input of a corpus directory, then `mutations`
/// inputs derived from them (bytes flipped, cut, inserted; pure noise), from
/// a fixed seed so that a failure repeats.
pub mod replay {
    use std::path::Path;

    /// The inputs of `dir`, sorted by file name.
    pub fn corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("a corpus entry").path();
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("corpus input {}: {e}", path.display()));
                (name, bytes)
            })
            .collect();
        inputs.sort();
        inputs
    }

    /// How many mutations a test runs: `FUZZ_REPLAY_INPUTS`, else `default`.
    pub fn mutations(default: usize) -> usize {
        std::env::var("FUZZ_REPLAY_INPUTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// Runs `entry` on every seed, then on `count` mutations of them.
    pub fn run(seeds: &[(String, Vec<u8>)], count: usize, mut entry: impl FnMut(&[u8])) {
        for (_, seed) in seeds {
            entry(seed);
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut input = Vec::new();
        for _ in 0..count {
            input.clear();
            match seeds.get(rng.below(seeds.len() + 1)) {
                Some((_, seed)) => input.extend_from_slice(seed),
                None => {
                    // Noise: any length up to a jumbo-ish frame.
                    let len = rng.below(2200);
                    input.extend((0..len).map(|_| rng.step() as u8));
                }
            }
            for _ in 0..=rng.below(4) {
                mutate(&mut input, &mut rng);
            }
            entry(&input);
        }
    }

    fn mutate(input: &mut Vec<u8>, rng: &mut XorShift) {
        let len = input.len();
        match rng.below(5) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.step() as u8;
            }
            2 => input.truncate(rng.below(len + 1)),
            3 => {
                let i = rng.below(len + 1);
                let extra: Vec<u8> = (0..=rng.below(16)).map(|_| rng.step() as u8).collect();
                input.splice(i..i, extra);
            }
            _ if len > 1 => {
                // Interesting values where lengths and types live.
                let i = rng.below(len - 1);
                let value: u16 =
                    [0, 1, 0x7fff, 0x8000, 0xffff, 0x0800, 0x86dd, 0x8100, 0x88a8][rng.below(9)];
                input[i..i + 2].copy_from_slice(&value.to_be_bytes());
            }
            _ => input.push(rng.step() as u8),
        }
    }

    /// A xorshift64 generator: deterministic, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn step(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.step() % n as u64) as usize
            }
        }
    }
}
