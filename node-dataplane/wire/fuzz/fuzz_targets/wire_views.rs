//! libFuzzer target: every view of `trunkline-wire` on arbitrary bytes
//! (see `trunkline_wire_fuzz::views`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_wire_fuzz::views(data));
