//! libFuzzer target: arbitrary frames through the whole per-frame decision
//! of a gateway node with an overlay (see `trunkline_pipeline_fuzz::frame`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_pipeline_fuzz::frame(data));
