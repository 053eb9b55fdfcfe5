//! (i) The bare XDP_REDIRECT forwarder (`bpf/redirect.bpf.c`): the
//! kernel's ceiling for the XDP tier, as (b) is the ceiling of the AF_XDP
//! path. Native XDP on port `in` of mode (i)'s namespace rewrites the
//! fields (b) rewrites with constants and redirects every frame through a
//! devmap to `out`; it runs in `in`'s receive NAPI (threaded, pinned to the
//! device's core by the topology). No process: the program stays attached
//! while the device lives (a BPF link, dropped with it).

use std::path::PathBuf;

use aya::maps::DevMap;
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use crate::Error;
use crate::frame::{GATEWAY_MAC, OUT_VLAN, VMI2_MAC};
use crate::netns::Topology;

use super::Mode;

static REDIRECT_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/redirect.bpf.o"));

/// What the report says about this mode.
pub fn notes() -> Vec<String> {
    vec![
        "(i) rewrites the same header fields as (b) (MACs, VLAN ID, TTL with an incremental checksum update) with constants, in native XDP on `in`, and redirects every frame through a devmap to `out`: no parsing, no table lookup, no source check, no counter. It is the ceiling of (h), which does all of those in the same place; its receive NAPI (threaded) is pinned to the device's core.".to_owned(),
    ]
}

fn bpf_err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Bpf {
        what,
        message: e.to_string(),
    }
}

/// The loaded and attached forwarder.
pub struct RedirectDevice {
    _ebpf: Ebpf,
}

impl RedirectDevice {
    /// Loads the forwarder, points its devmap at `out` and attaches it to
    /// `in` (native XDP) in mode (i)'s namespace.
    pub fn start(topology: &Topology) -> Result<Self, Error> {
        let netns: PathBuf = topology.path(Mode::Redirect.id());
        // Interface names and the attachment resolve in the calling
        // thread's namespace: do it in a thread that entered the device's.
        std::thread::spawn(move || -> Result<RedirectDevice, Error> {
            trunkline_xdp::enter_network_namespace(&netns)
                .map_err(Error::io(format!("entering {}", netns.display())))?;
            let mut ebpf = EbpfLoader::new()
                .override_global("dst_mac", &VMI2_MAC, true)
                .override_global("src_mac", &GATEWAY_MAC, true)
                .override_global("vlan_id", &OUT_VLAN, true)
                .load(REDIRECT_OBJECT)
                .map_err(bpf_err("load redirect object"))?;
            let out = trunkline_xdp::interface_index("out").map_err(bpf_err("port out"))?;
            let mut ports: DevMap<_> = ebpf
                .map_mut("out_port")
                .ok_or_else(|| Error::Bpf {
                    what: "redirect",
                    message: "no out_port map".to_owned(),
                })?
                .try_into()
                .map_err(bpf_err("out_port map"))?;
            ports
                .set(0, out, None, 0)
                .map_err(bpf_err("set out_port"))?;
            let program: &mut Xdp = ebpf
                .program_mut("redirect")
                .ok_or_else(|| Error::Bpf {
                    what: "redirect",
                    message: "program missing from the object".to_owned(),
                })?
                .try_into()
                .map_err(bpf_err("program type"))?;
            program.load().map_err(bpf_err("load redirect program"))?;
            program
                .attach("in", XdpMode::Driver)
                .map_err(bpf_err("attach redirect to in"))?;
            Ok(RedirectDevice { _ebpf: ebpf })
        })
        .join()
        .map_err(|_| Error::Bpf {
            what: "redirect",
            message: "the attaching thread panicked".to_owned(),
        })?
    }
}

#[cfg(test)]
mod tests {
    use aya::programs::{TestRun, TestRunOptions};

    use super::*;
    use crate::frame::{egress_frame, ingress_frame};

    fn root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .map(|uids| uids.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
    }

    #[test]
    fn the_constant_rewrite_in_the_kernel_gives_exactly_the_forwarded_frame() {
        if !root() {
            eprintln!("skipped: loading BPF programs needs root");
            return;
        }
        let mut ebpf = EbpfLoader::new()
            .override_global("dst_mac", &VMI2_MAC, true)
            .override_global("src_mac", &GATEWAY_MAC, true)
            .override_global("vlan_id", &OUT_VLAN, true)
            .load(REDIRECT_OBJECT)
            .expect("the object loads");
        let program: &mut Xdp = ebpf
            .program_mut("redirect")
            .expect("the program")
            .try_into()
            .expect("XDP");
        program.load().expect("the verifier takes it");
        for len in [64, 512] {
            let mut out = vec![0u8; len];
            let result = program
                .test_run(TestRunOptions {
                    data_in: Some(&ingress_frame(len)),
                    data_out: Some(&mut out),
                    ..TestRunOptions::new()
                })
                .expect("BPF_PROG_RUN");
            out.truncate(result.data_size_out as usize);
            assert_eq!(out, egress_frame(len), "{len} B");
        }
    }
}
