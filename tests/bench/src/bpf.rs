//! The generator and the sink, both XDP programs (see `bpf/`), loaded with
//! aya.
//!
//! ```text
//!  generator thread (in the generator namespace, pinned)
//!    loop: BPF_PROG_RUN(generate, live frames, ingress = g<mode>, repeat = N)
//!          -> XDP_TX = redirect out of g<mode> -> veth -> DUT port `in`
//!          (UDP ports varied per frame for the SNAT modes: [`Flows`])
//!
//!  DUT port `out` (SNAT: `eth0`) -> veth -> s<mode> in the sink namespace
//!    sink (native XDP): count per ingress interface {valid, TTL done, other}, drop
//!    (loaded twice: forwarded frames, and translated ones: [`Expected`])
//! ```
//!
//! The generator is a kernel loop: no syscall per frame, no skb on the
//! sending side; it reaches several Mpps from one core, well above what any
//! device under test here forwards, and the report shows what it offered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use aya::maps::PerCpuArray;
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use crate::Error;
use crate::frame::{
    FABRIC_HOST_IP, FABRIC_HOST_MAC, Flows, GATEWAY_MAC, GENERATOR_HEAD, OUT_VLAN, TTL, VMI1_IP,
    VMI2_IP, VMI2_MAC,
};
use crate::netns::{FABRIC_MAC_A, UNDERLAY_A};

static GENERATOR_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/generator.bpf.o"));
static SINK_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sink.bpf.o"));

/// Target length of one BPF_PROG_RUN call. Each call sets up and tears
/// down a page pool, which costs milliseconds (the generator idled half the
/// time with calls of 20,000 frames); a quarter second amortises that and
/// still sees a stop request soon.
const CALL_SECONDS: f64 = 0.25;
/// Frames of the first call, and bounds of later ones.
const REPEAT_FIRST: u32 = 50_000;
const REPEAT_MIN: u32 = 10_000;
const REPEAT_MAX: u32 = 5_000_000;
/// Failed BPF_PROG_RUN calls in a row the generator retries.
const CALL_RETRIES: u32 = 3;
/// Frames the kernel builds and sends per batch (its maximum is 256).
const BATCH: u32 = 64;
/// Sink counter slots per interface (see `bpf/sink.bpf.c`).
const SLOTS: u32 = 4;
/// Interfaces the sink can tell apart (ifindex modulo this).
const MAX_IFINDEX: u32 = 256;

fn bpf_err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Bpf {
        what,
        message: e.to_string(),
    }
}

fn load_xdp<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, Error> {
    let program: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| Error::Bpf {
            what: "find program",
            message: format!("{name} missing from the object"),
        })?
        .try_into()
        .map_err(bpf_err("program type"))?;
    program.load().map_err(bpf_err("load program"))?;
    Ok(program)
}

/// Traffic from the generator, running in a thread of its own until stopped.
pub struct Traffic {
    started: Instant,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Traffic {
    /// Starts sending `frame` out of `interface` of the network namespace
    /// `netns`, its UDP ports varied as `flows` says, from a thread pinned
    /// to `core` (when given). Returns once the first frames went out, or
    /// with the reason they could not.
    pub fn start(
        netns: &Path,
        interface: &str,
        frame: Vec<u8>,
        flows: Flows,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();
        let (netns, interface) = (netns.to_path_buf(), interface.to_owned());
        let (thread_stop, thread_sent) = (stop.clone(), sent.clone());
        let thread = std::thread::Builder::new()
            .name("generator".to_owned())
            .spawn(move || {
                let setup = || -> Result<(Ebpf, Vec<u8>), Error> {
                    if let Some(core) = core {
                        crate::cpu::pin_current_thread(core)?;
                    }
                    trunkline_xdp::enter_network_namespace(&netns)
                        .map_err(Error::io(format!("entering {}", netns.display())))?;
                    let ifindex =
                        trunkline_xdp::interface_index(&interface).map_err(|e| Error::Bpf {
                            what: "generator interface",
                            message: e.to_string(),
                        })?;
                    let mut head = [0u64; GENERATOR_HEAD / 8];
                    for (word, bytes) in head.iter_mut().zip(frame.chunks_exact(8)) {
                        *word = u64::from_ne_bytes(bytes.try_into().expect("8 bytes"));
                    }
                    let mut ebpf = EbpfLoader::new()
                        .override_global("template_head", &head, true)
                        .override_global("flows", &flows.generator_setting(), true)
                        .load(GENERATOR_OBJECT)
                        .map_err(bpf_err("load generator object"))?;
                    load_xdp(&mut ebpf, "generate")?;
                    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
                    // rx_queue_index, egress_ifindex.
                    let mut ctx = Vec::with_capacity(24);
                    for field in [0, frame.len() as u32, 0, ifindex, 0, 0] {
                        ctx.extend_from_slice(&field.to_ne_bytes());
                    }
                    Ok((ebpf, ctx))
                };
                let (ebpf, ctx) = match setup() {
                    Ok(ok) => ok,
                    Err(e) => {
                        let message = e.to_string();
                        let _ = ready_tx.send(Err(e));
                        return Err(Error::Bpf {
                            what: "generator",
                            message,
                        });
                    }
                };
                let program: &Xdp = ebpf
                    .program("generate")
                    .expect("loaded above")
                    .try_into()
                    .expect("an XDP program");
                let mut first = true;
                let mut repeat = REPEAT_FIRST;
                let mut failed = 0;
                while !thread_stop.load(Ordering::Relaxed) {
                    let call = Instant::now();
                    let options = TestRunOptions {
                        data_in: Some(&frame),
                        ctx_in: Some(&ctx),
                        repeat,
                        attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
                        ..TestRunOptions::new()
                    };
                    let result = program.test_run(options);
                    // A call the kernel cut short (a signal to this thread:
                    // EINTR) sent some frames, uncounted: try again, a few
                    // times in a row at most.
                    if let Err(e) = &result
                        && failed < CALL_RETRIES
                    {
                        failed += 1;
                        eprintln!("[bench] generator: BPF_PROG_RUN failed ({e:?}), again");
                        continue;
                    }
                    failed = 0;
                    let describe = |e: &aya::programs::ProgramError| Error::Bpf {
                        what: "BPF_PROG_RUN (live frames)",
                        message: format!("{e}: {e:?}"),
                    };
                    if first {
                        first = false;
                        let _ = ready_tx.send(result.as_ref().map(|_| ()).map_err(describe));
                    }
                    result.map_err(|e| describe(&e))?;
                    thread_sent.fetch_add(u64::from(repeat), Ordering::Relaxed);
                    let took = call.elapsed().as_secs_f64().max(1e-3);
                    repeat = ((f64::from(repeat) * CALL_SECONDS / took) as u32)
                        .clamp(REPEAT_MIN, REPEAT_MAX);
                }
                Ok(())
            })
            .map_err(Error::io("starting the generator thread"))?;
        let traffic = Self {
            started: Instant::now(),
            stop,
            sent,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(traffic),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Bpf {
                what: "generator",
                message: "the generator thread ended before sending".to_owned(),
            }),
        }
    }

    /// Frames handed to the kernel so far (by completed calls).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops the generator and waits for its thread; returns the frames
    /// it sent and for how long, in seconds. (Frames are counted per
    /// BPF_PROG_RUN call, a quarter second each: the rate over the whole
    /// run is exact, a rate over a shorter window would not be.)
    pub fn stop(mut self) -> Result<(u64, f64), Error> {
        self.stop.store(true, Ordering::Relaxed);
        let joined = self.thread.take().map(JoinHandle::join);
        let (sent, seconds) = (self.sent(), self.started.elapsed().as_secs_f64());
        match joined {
            Some(Ok(result)) => result.map(|()| (sent, seconds)),
            Some(Err(_)) => Err(Error::Bpf {
                what: "generator",
                message: "the generator thread panicked".to_owned(),
            }),
            None => Ok((sent, seconds)),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the sink counted on one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Frames forwarded as asked (VLAN 200, MACs rewritten, from VMI 1 to
    /// VMI 2, IPv4 header checksum correct, length, UDP header and the first
    /// payload bytes as sent).
    pub valid: u64,
    /// Of those, the ones with the TTL decremented.
    pub ttl_done: u64,
    /// Anything else.
    pub other: u64,
}

impl SinkCounts {
    /// `self - earlier`, counter by counter.
    pub fn since(&self, earlier: &SinkCounts) -> SinkCounts {
        SinkCounts {
            valid: self.valid.saturating_sub(earlier.valid),
            ttl_done: self.ttl_done.saturating_sub(earlier.ttl_done),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

/// What the sink counts as valid: the frame a device must deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// The 802.1Q tag's VLAN; none: untagged.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src_ip: std::net::Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: std::net::Ipv4Addr,
    /// Whether the UDP ports must be the generator's template's (1024 -> 9).
    pub check_ports: bool,
}

impl Expected {
    /// Forwarded from VMI 1 to VMI 2 ([`crate::frame::egress_frame`]).
    pub fn forwarded() -> Expected {
        Expected {
            src_mac: GATEWAY_MAC,
            dst_mac: VMI2_MAC,
            vlan: Some(OUT_VLAN),
            src_ip: VMI1_IP,
            dst_ip: VMI2_IP,
            check_ports: true,
        }
    }

    /// Translated to node A's underlay address, toward the fabric host
    /// ([`crate::frame::snat_egress_frame`]), any ports.
    pub fn translated() -> Expected {
        Expected {
            src_mac: FABRIC_MAC_A,
            dst_mac: FABRIC_HOST_MAC,
            vlan: None,
            src_ip: UNDERLAY_A,
            dst_ip: FABRIC_HOST_IP,
            check_ports: false,
        }
    }
}

/// The sink program, attached to interfaces of the sink namespace; detached
/// when dropped (BPF links).
pub struct Sink {
    ebpf: Ebpf,
    ifindex: Vec<(String, u32)>,
}

impl Sink {
    /// Loads the sink with the expected frame's values, attached nowhere.
    fn load(expected: &Expected) -> Result<Self, Error> {
        let mut ebpf = EbpfLoader::new()
            .override_global("gateway_mac", &expected.src_mac, true)
            .override_global("vmi_mac", &expected.dst_mac, true)
            .override_global("vlan_id", &expected.vlan.unwrap_or(0), true)
            .override_global("tagged", &u8::from(expected.vlan.is_some()), true)
            .override_global(
                "vmi_ip",
                &u32::from_ne_bytes(expected.dst_ip.octets()),
                true,
            )
            .override_global(
                "src_ip",
                &u32::from_ne_bytes(expected.src_ip.octets()),
                true,
            )
            .override_global("ttl_after", &(TTL - 1), true)
            .override_global("check_ports", &u8::from(expected.check_ports), true)
            .load(SINK_OBJECT)
            .map_err(bpf_err("load sink object"))?;
        load_xdp(&mut ebpf, "sink")?;
        Ok(Sink {
            ebpf,
            ifindex: Vec::new(),
        })
    }

    /// Loads the sink expecting `expected` and attaches it (native XDP) to
    /// `interfaces` of the network namespace `netns`.
    pub fn attach(netns: &Path, interfaces: &[String], expected: Expected) -> Result<Self, Error> {
        let netns: PathBuf = netns.to_path_buf();
        let interfaces = interfaces.to_vec();
        // Interface names and the XDP attachment resolve in the calling
        // thread's namespace: do it in a thread that entered the sink's.
        std::thread::spawn(move || -> Result<Sink, Error> {
            trunkline_xdp::enter_network_namespace(&netns)
                .map_err(Error::io(format!("entering {}", netns.display())))?;
            let Sink { mut ebpf, .. } = Sink::load(&expected)?;
            let program: &mut Xdp = ebpf
                .program_mut("sink")
                .ok_or_else(|| Error::Bpf {
                    what: "find program",
                    message: "sink missing from the object".to_owned(),
                })?
                .try_into()
                .map_err(bpf_err("program type"))?;
            let mut ifindex = Vec::new();
            for name in &interfaces {
                program
                    .attach(name, XdpMode::Driver)
                    .map_err(bpf_err("attach sink"))?;
                let index = trunkline_xdp::interface_index(name).map_err(bpf_err("sink port"))?;
                ifindex.push((name.clone(), index));
            }
            Ok(Sink { ebpf, ifindex })
        })
        .join()
        .map_err(|_| Error::Bpf {
            what: "sink",
            message: "the attaching thread panicked".to_owned(),
        })?
    }

    /// The counts of `interface` so far.
    pub fn counts(&self, interface: &str) -> Result<SinkCounts, Error> {
        let ifindex = self
            .ifindex
            .iter()
            .find(|(name, _)| name == interface)
            .map(|(_, i)| *i)
            .ok_or_else(|| Error::Bpf {
                what: "sink",
                message: format!("not attached to {interface}"),
            })?;
        let map = self.ebpf.map("counts").ok_or_else(|| Error::Bpf {
            what: "sink",
            message: "no counts map".to_owned(),
        })?;
        let counts: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(bpf_err("sink counts map"))?;
        let read = |slot: u32| -> Result<u64, Error> {
            let key = (ifindex % MAX_IFINDEX) * SLOTS + slot;
            let values = counts.get(&key, 0).map_err(bpf_err("read sink counts"))?;
            Ok(values.iter().sum())
        };
        Ok(SinkCounts {
            valid: read(0)?,
            ttl_done: read(1)?,
            other: read(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{HEADERS, egress_frame, snat_egress_frame};

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

    /// What the sink makes of `frame`, run once by BPF_PROG_RUN (the
    /// kernel's test run receives on `lo`).
    fn verdict(sink: &mut Sink, frame: &[u8]) -> SinkCounts {
        let before = sink.counts("lo").expect("counts");
        let program: &Xdp = sink
            .ebpf
            .program("sink")
            .expect("loaded")
            .try_into()
            .expect("XDP");
        program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_RUN");
        sink.counts("lo").expect("counts").since(&before)
    }

    #[test]
    fn the_sink_counts_only_frames_delivered_exactly_as_asked() {
        if !root() {
            eprintln!("skipped: loading BPF programs needs root");
            return;
        }
        let mut sink = Sink::load(&Expected::forwarded()).expect("the sink loads");
        let lo = trunkline_xdp::interface_index("lo").expect("lo");
        sink.ifindex.push(("lo".to_owned(), lo));
        let (valid, ttl_done, other) = (
            SinkCounts {
                valid: 1,
                ttl_done: 1,
                other: 0,
            },
            SinkCounts {
                valid: 1,
                ttl_done: 0,
                other: 0,
            },
            SinkCounts {
                valid: 0,
                ttl_done: 0,
                other: 1,
            },
        );
        for len in [64, 512] {
            let good = egress_frame(len);
            assert_eq!(verdict(&mut sink, &good), valid, "{len} B as forwarded");
            let mut ttl_kept = good.clone();
            ttl_kept[18 + 8] += 1;
            ttl_kept[18 + 10] = ttl_kept[18 + 10].wrapping_sub(1);
            assert_eq!(
                verdict(&mut sink, &ttl_kept),
                ttl_done,
                "{len} B, TTL not decremented (checksum kept right)"
            );
            let mut bad_payload = good.clone();
            bad_payload[HEADERS + 3] ^= 0xff;
            assert_eq!(verdict(&mut sink, &bad_payload), other, "payload changed");
            let mut longer = good.clone();
            longer.extend_from_slice(&[0; 4]);
            assert_eq!(verdict(&mut sink, &longer), other, "trailing bytes");
            let mut wrong_vlan = good.clone();
            wrong_vlan[15] ^= 1;
            assert_eq!(verdict(&mut sink, &wrong_vlan), other, "another VLAN");
            let mut wrong_source = good.clone();
            wrong_source[18 + 15] ^= 1;
            assert_eq!(
                verdict(&mut sink, &wrong_source),
                other,
                "another source address"
            );
            // Still inside a tunnel: outer Ethernet, IPv4, UDP and VXLAN
            // in front of the expected frame.
            let mut tunnelled = vec![0u8; 50];
            tunnelled.extend_from_slice(&good);
            assert_eq!(verdict(&mut sink, &tunnelled), other, "encapsulated");
        }
    }

    #[test]
    fn the_snat_sink_counts_translated_frames_with_any_ports() {
        if !root() {
            eprintln!("skipped: loading BPF programs needs root");
            return;
        }
        let mut sink = Sink::load(&Expected::translated()).expect("the sink loads");
        let lo = trunkline_xdp::interface_index("lo").expect("lo");
        sink.ifindex.push(("lo".to_owned(), lo));
        let ttl_done = SinkCounts {
            valid: 1,
            ttl_done: 1,
            other: 0,
        };
        let other = SinkCounts {
            valid: 0,
            ttl_done: 0,
            other: 1,
        };
        for len in [64, 512] {
            let good = snat_egress_frame(len);
            assert_eq!(verdict(&mut sink, &good), ttl_done, "{len} B as translated");
            let mut other_ports = good.clone();
            other_ports[34..38].copy_from_slice(&[0xee, 0x48, 0x12, 0x34]);
            assert_eq!(verdict(&mut sink, &other_ports), ttl_done, "any ports");
            let mut untranslated = good.clone();
            untranslated[26..30].copy_from_slice(&VMI1_IP.octets());
            assert_eq!(verdict(&mut sink, &untranslated), other, "not translated");
            assert_eq!(
                verdict(&mut sink, &egress_frame(len)),
                other,
                "a forwarded (tagged) frame"
            );
            let mut bad_payload = good.clone();
            bad_payload[42 + 5] ^= 0xff;
            assert_eq!(verdict(&mut sink, &bad_payload), other, "payload changed");
        }
    }
}
