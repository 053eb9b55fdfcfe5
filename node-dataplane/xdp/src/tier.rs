//! The XDP tier (`bpf/tier.bpf.c`, maps in `bpf/tier.h`): one program and
//! one set of maps per node, attached to every port of the fast path, that
//! decides the common case in the kernel and hands everything else to the
//! port's AF_XDP socket.
//!
//! ```text
//!  Tier::load ──> program + maps (one set per node)
//!     │
//!     ├─ Tier::attach(port) ──> TierPort: the program on the interface (native
//!     │                          XDP, else generic), its `tier_ifaces` entry, its
//!     │                          devmap entry, its AF_XDP sockets in `tier_xsks`
//!     │                          (all removed when the TierPort is dropped)
//!     └─ TierMaps (shared, Send + Sync): the tables' image, written by the
//!          agent's mirror by map name and raw bytes; the generation flip and
//!          its grace period (`synchronize`); per-CPU counters; an
//!          observation's filter and its ring of records (read by aya's
//!          RingBuf: `drain_observations`)
//! ```
//!
//! This module knows the maps by name and size only: what goes in them is
//! the pipeline's business (`trunkline_pipeline::kernel`), which builds the
//! bytes from the compiled tables. A key or value of the wrong size is
//! refused with [`TierError::Size`], so a layout drift between the C header
//! and the Rust side never writes garbage.
//!
//! The raw `bpf(2)` map calls are here (byte-level keys and values of any
//! size, per-CPU reads); everything else goes through aya.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use aya::maps::{Map, MapData, RingBuf};
use aya::programs::xdp::XdpLink;
use aya::programs::{TestRun, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use crate::program::AttachMode;

/// The program object, compiled by build.rs.
static TIER_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tier.bpf.o"));

/// The program's name in the object.
const PROGRAM: &str = "trunkline_tier";

/// XSKMAP slots per port (`TIER_QUEUES`): one per receive queue.
pub const QUEUES_PER_PORT: u32 = 64;
/// Ports one tier serves (`TIER_MAX_IFACES`).
pub const MAX_PORTS: u32 = 64;

/// `IFACE_TRUNK` and `IFACE_FABRIC` of `struct iface`.
const IFACE_TRUNK: u32 = 1;
const IFACE_FABRIC: u32 = 2;

/// Errors of the XDP tier.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// Loading the object or attaching the program failed.
    #[error("XDP tier: {what}: {message}")]
    Bpf {
        /// Which step.
        what: &'static str,
        /// What the kernel or the loader said.
        message: String,
    },
    /// The object has no map of that name.
    #[error("XDP tier: no map named {0:?} in the program object")]
    NoMap(String),
    /// A key or value does not have the size of the map's.
    #[error(
        "XDP tier: map {map}: {what} of {got} bytes, the map's is {want} (the layouts of bpf/tier.h and trunkline_pipeline::kernel differ)"
    )]
    Size {
        /// The map.
        map: String,
        /// `key` or `value`.
        what: &'static str,
        /// The size given.
        got: usize,
        /// The map's size.
        want: u32,
    },
    /// A map call failed.
    #[error("XDP tier: {call} on map {map}: {source}")]
    Map {
        /// The call.
        call: &'static str,
        /// The map.
        map: String,
        /// The OS error.
        source: io::Error,
    },
    /// Every port slot is taken.
    #[error("XDP tier: more than {MAX_PORTS} ports")]
    TooManyPorts,
}

fn bpf_err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> TierError {
    move |e| TierError::Bpf {
        what,
        message: e.to_string(),
    }
}

/// The `bpf(2)` map calls, on byte buffers.
mod sys {
    use std::io;
    use std::os::fd::RawFd;

    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
    const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
    const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
    const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

    /// The map-element part of `union bpf_attr`.
    #[repr(C)]
    #[derive(Default)]
    struct ElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }

    /// The batch part of `union bpf_attr` (`BPF_MAP_*_BATCH`).
    #[repr(C)]
    #[derive(Default)]
    struct BatchAttr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }

    /// A batch call: how many elements the kernel processed, and the
    /// error that stopped it, if any (the kernel writes `count` back
    /// either way).
    fn batch(cmd: libc::c_long, attr: &mut BatchAttr) -> (usize, io::Result<()>) {
        // SAFETY: `attr` is a valid bpf_attr prefix of the size given; the
        // kernel reads `count` keys (and values) through the pointers in it,
        // which the callers make point to arrays of `count` elements of the
        // map's key and value sizes (checked before every call), and writes
        // back `count` only, inside `attr`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        let done = attr.count as usize;
        if rc < 0 {
            (done, Err(io::Error::last_os_error()))
        } else {
            (done, Ok(()))
        }
    }

    /// Writes `count` elements: `keys` and `values` hold them back to back.
    pub(super) fn update_batch(
        fd: RawFd,
        keys: &[u8],
        values: &[u8],
        count: usize,
    ) -> (usize, io::Result<()>) {
        batch(
            BPF_MAP_UPDATE_BATCH,
            &mut BatchAttr {
                map_fd: fd as u32,
                keys: keys.as_ptr() as u64,
                values: values.as_ptr() as u64,
                count: count as u32,
                ..Default::default()
            },
        )
    }

    /// Removes `count` keys, back to back in `keys`.
    pub(super) fn delete_batch(fd: RawFd, keys: &[u8], count: usize) -> (usize, io::Result<()>) {
        batch(
            BPF_MAP_DELETE_BATCH,
            &mut BatchAttr {
                map_fd: fd as u32,
                keys: keys.as_ptr() as u64,
                count: count as u32,
                ..Default::default()
            },
        )
    }

    fn call(cmd: libc::c_long, attr: &ElemAttr) -> io::Result<()> {
        // SAFETY: `attr` is a valid bpf_attr prefix of the size given; the
        // kernel reads `key` and reads or writes `value` through the
        // pointers in it, which the callers make point to buffers of the
        // map's key and value sizes (checked before every call).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *const ElemAttr,
                std::mem::size_of::<ElemAttr>(),
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub(super) fn update(fd: RawFd, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        call(
            BPF_MAP_UPDATE_ELEM,
            &ElemAttr {
                map_fd: fd as u32,
                key: key.as_ptr() as u64,
                value: value.as_ptr() as u64,
                flags,
                ..Default::default()
            },
        )
    }

    pub(super) fn delete(fd: RawFd, key: &[u8]) -> io::Result<()> {
        call(
            BPF_MAP_DELETE_ELEM,
            &ElemAttr {
                map_fd: fd as u32,
                key: key.as_ptr() as u64,
                ..Default::default()
            },
        )
    }

    /// The key after `key` (`None`: the first) into `next`.
    pub(super) fn next_key(fd: RawFd, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<()> {
        call(
            BPF_MAP_GET_NEXT_KEY,
            &ElemAttr {
                map_fd: fd as u32,
                key: key.map_or(0, |k| k.as_ptr() as u64),
                value: next.as_mut_ptr() as u64,
                ..Default::default()
            },
        )
    }

    pub(super) fn lookup(fd: RawFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
        call(
            BPF_MAP_LOOKUP_ELEM,
            &ElemAttr {
                map_fd: fd as u32,
                key: key.as_ptr() as u64,
                value: value.as_mut_ptr() as u64,
                ..Default::default()
            },
        )
    }
}

/// Whether a batch call failed because the kernel has no batch
/// operation for the map (ENOTSUPP, 524, from kernels with the command;
/// EINVAL from older ones).
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(524 | libc::EOPNOTSUPP | libc::EINVAL)
    )
}

/// One map of the object: its descriptor and sizes.
#[derive(Debug)]
struct RawMap {
    name: String,
    fd: OwnedFd,
    key_size: u32,
    value_size: u32,
    per_cpu: bool,
}

impl RawMap {
    fn check(&self, what: &'static str, got: usize, want: u32) -> Result<(), TierError> {
        if got == want as usize {
            Ok(())
        } else {
            Err(TierError::Size {
                map: self.name.clone(),
                what,
                got,
                want,
            })
        }
    }

    fn fail(&self, call: &'static str) -> impl FnOnce(io::Error) -> TierError + '_ {
        move |source| TierError::Map {
            call,
            map: self.name.clone(),
            source,
        }
    }
}

/// The maps of a loaded tier, by name; shared by the threads that write
/// them (the I/O layer for ports, the agent's mirror for the tables) and
/// read them (metrics).
#[derive(Debug)]
pub struct TierMaps {
    maps: HashMap<String, RawMap>,
    cpus: usize,
    /// The inner map `tier_sync` is set to, to wait for a grace period.
    sync_inner: OwnedFd,
    /// `tier_obs_ring`: the records of an observation (one reader).
    obs_ring: ObsRing,
}

/// The observation ring, read by one thread at a time.
struct ObsRing(Mutex<RingBuf<MapData>>);

impl std::fmt::Debug for ObsRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObsRing")
    }
}

impl TierMaps {
    fn map(&self, name: &str) -> Result<&RawMap, TierError> {
        self.maps
            .get(name)
            .ok_or_else(|| TierError::NoMap(name.to_owned()))
    }

    /// The key and value sizes of map `name`.
    pub fn sizes(&self, name: &str) -> Result<(u32, u32), TierError> {
        let map = self.map(name)?;
        Ok((map.key_size, map.value_size))
    }

    /// Writes `value` under `key` in map `name`.
    pub fn update(&self, name: &str, key: &[u8], value: &[u8]) -> Result<(), TierError> {
        let map = self.map(name)?;
        map.check("key", key.len(), map.key_size)?;
        map.check("value", value.len(), map.value_size)?;
        sys::update(map.fd.as_raw_fd(), key, value, 0).map_err(map.fail("update"))
    }

    /// Removes `key` from map `name`; a key that is not there is fine.
    pub fn delete(&self, name: &str, key: &[u8]) -> Result<(), TierError> {
        let map = self.map(name)?;
        map.check("key", key.len(), map.key_size)?;
        match sys::delete(map.fd.as_raw_fd(), key) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(map.fail("delete")(e)),
        }
    }

    /// Writes `keys.len() / key size` entries into map `name` with one
    /// `BPF_MAP_UPDATE_BATCH`, in order (the kernel writes them one after
    /// the other, as that many updates would): `keys` and `values` hold
    /// the keys and values back to back. An element the kernel refuses
    /// does not stop the others: it is skipped and reported in the
    /// returned list of (element index, error), with one call more for
    /// the elements after it.
    pub fn update_batch(
        &self,
        name: &str,
        keys: &[u8],
        values: &[u8],
    ) -> Result<Vec<(usize, TierError)>, TierError> {
        let map = self.map(name)?;
        let (ks, vs) = (map.key_size as usize, map.value_size as usize);
        let count = keys.len() / ks.max(1);
        map.check("keys", keys.len(), (count * ks) as u32)?;
        map.check("values", values.len(), (count * vs) as u32)?;
        let fd = map.fd.as_raw_fd();
        let mut failed = Vec::new();
        let mut at = 0;
        while at < count {
            let (done, rc) =
                sys::update_batch(fd, &keys[at * ks..], &values[at * vs..], count - at);
            match rc {
                Ok(()) => break,
                Err(e) if unsupported(&e) && done == 0 && at == 0 => {
                    // A kernel without batch updates for this map type:
                    // one call per element.
                    for i in 0..count {
                        if let Err(e) = sys::update(
                            fd,
                            &keys[i * ks..(i + 1) * ks],
                            &values[i * vs..(i + 1) * vs],
                            0,
                        ) {
                            failed.push((i, map.fail("update")(e)));
                        }
                    }
                    break;
                }
                Err(e) => {
                    let bad = (at + done).min(count - 1);
                    failed.push((bad, map.fail("update batch")(e)));
                    at = bad + 1;
                }
            }
        }
        Ok(failed)
    }

    /// Removes `keys.len() / key size` keys (back to back in `keys`) from
    /// map `name` with `BPF_MAP_DELETE_BATCH`, in order; keys that are not
    /// there are fine (the kernel stops at one: the call goes on after
    /// it). Other errors are returned per element, as
    /// [`TierMaps::update_batch`] does.
    pub fn delete_batch(
        &self,
        name: &str,
        keys: &[u8],
    ) -> Result<Vec<(usize, TierError)>, TierError> {
        let map = self.map(name)?;
        let ks = map.key_size as usize;
        let count = keys.len() / ks.max(1);
        map.check("keys", keys.len(), (count * ks) as u32)?;
        let fd = map.fd.as_raw_fd();
        let mut failed = Vec::new();
        let mut at = 0;
        while at < count {
            let (done, rc) = sys::delete_batch(fd, &keys[at * ks..], count - at);
            match rc {
                Ok(()) => break,
                Err(e) if unsupported(&e) && done == 0 && at == 0 => {
                    for i in 0..count {
                        match sys::delete(fd, &keys[i * ks..(i + 1) * ks]) {
                            Ok(()) => {}
                            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                            Err(e) => failed.push((i, map.fail("delete")(e))),
                        }
                    }
                    break;
                }
                Err(e) => {
                    let bad = (at + done).min(count - 1);
                    if e.raw_os_error() != Some(libc::ENOENT) {
                        failed.push((bad, map.fail("delete batch")(e)));
                    }
                    at = bad + 1;
                }
            }
        }
        Ok(failed)
    }

    /// Removes every entry of hash map `name` (the flow map when its
    /// mirror starts over); returns how many it removed.
    pub fn clear(&self, name: &str) -> Result<usize, TierError> {
        let map = self.map(name)?;
        let fd = map.fd.as_raw_fd();
        let mut key = vec![0u8; map.key_size as usize];
        let mut removed = 0;
        loop {
            // Always from the first key: the one just deleted is gone.
            match sys::next_key(fd, None, &mut key) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(removed),
                Err(e) => return Err(map.fail("next key")(e)),
            }
            match sys::delete(fd, &key) {
                Ok(()) => removed += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(map.fail("delete")(e)),
            }
        }
    }

    /// Reads `key` of map `name` into `value`; `false` when absent.
    pub fn lookup(&self, name: &str, key: &[u8], value: &mut [u8]) -> Result<bool, TierError> {
        let map = self.map(name)?;
        map.check("key", key.len(), map.key_size)?;
        map.check("value", value.len(), map.value_size)?;
        match sys::lookup(map.fd.as_raw_fd(), key, value) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(map.fail("lookup")(e)),
        }
    }

    /// Reads `key` of the per-CPU map `name`: one value per possible CPU.
    pub fn lookup_per_cpu(&self, name: &str, key: &[u8]) -> Result<Vec<Vec<u8>>, TierError> {
        let map = self.map(name)?;
        map.check("key", key.len(), map.key_size)?;
        if !map.per_cpu {
            return Err(TierError::Map {
                call: "lookup_per_cpu",
                map: name.to_owned(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
        let stride = (map.value_size as usize).next_multiple_of(8);
        let mut all = vec![0u8; stride * self.cpus];
        match sys::lookup(map.fd.as_raw_fd(), key, &mut all) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(map.fail("lookup")(e)),
        }
        Ok(all
            .chunks_exact(stride)
            .map(|c| c[..map.value_size as usize].to_vec())
            .collect())
    }

    /// Writes `value` under `key` of the per-CPU map `name` on every CPU
    /// (zeroing a counter slot before it is reused, say).
    pub fn update_per_cpu(&self, name: &str, key: &[u8], value: &[u8]) -> Result<(), TierError> {
        let map = self.map(name)?;
        map.check("key", key.len(), map.key_size)?;
        map.check("value", value.len(), map.value_size)?;
        let stride = (map.value_size as usize).next_multiple_of(8);
        let mut all = vec![0u8; stride * self.cpus];
        for chunk in all.chunks_exact_mut(stride) {
            chunk[..value.len()].copy_from_slice(value);
        }
        sys::update(map.fd.as_raw_fd(), key, &all, 0).map_err(map.fail("update"))
    }

    /// Waits until every run of the program that started before this call
    /// has finished: updating an array of maps from userspace returns only
    /// after an RCU grace period, and XDP programs run inside RCU read-side
    /// sections. After a generation flip, this is the moment from which no
    /// frame uses the old generation.
    pub fn synchronize(&self) -> Result<(), TierError> {
        let map = self.map("tier_sync")?;
        let key = 0u32.to_ne_bytes();
        let value = (self.sync_inner.as_raw_fd() as u32).to_ne_bytes();
        sys::update(map.fd.as_raw_fd(), &key, &value, 0).map_err(map.fail("update"))
    }

    /// Takes the records waiting in the observation ring
    /// (`tier_obs_ring`), oldest first, handing each to `each`; how many.
    /// Never waits for more (the caller polls, off the forwarding path).
    pub fn drain_observations(&self, mut each: impl FnMut(&[u8])) -> usize {
        let mut ring = self.obs_ring.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        while let Some(record) = ring.next() {
            each(&record);
            n += 1;
        }
        n
    }

    /// How many CPUs per-CPU values are read for.
    pub fn cpus(&self) -> usize {
        self.cpus
    }
}

/// The clock of `bpf_ktime_get_ns` (CLOCK_MONOTONIC), in nanoseconds: what
/// the observation ring's records are stamped with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// What a port is to the tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierPortKind {
    /// A trunk toward remote instances: every frame is decided or handed off.
    Trunk,
    /// The fabric port with this underlay address: tunnel packets for it are
    /// decided or handed off, everything else passes to the host.
    Fabric(IpAddr),
}

/// `struct iface` of a port in `slot`.
fn iface_value(slot: u32, kind: TierPortKind) -> [u8; 28] {
    let mut value = [0u8; 28];
    value[..4].copy_from_slice(&(slot * QUEUES_PER_PORT).to_ne_bytes());
    match kind {
        TierPortKind::Trunk => value[4..8].copy_from_slice(&IFACE_TRUNK.to_ne_bytes()),
        TierPortKind::Fabric(addr) => {
            value[4..8].copy_from_slice(&IFACE_FABRIC.to_ne_bytes());
            match addr {
                IpAddr::V4(a) => {
                    value[8..12].copy_from_slice(&4u32.to_ne_bytes());
                    value[12..16].copy_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    value[8..12].copy_from_slice(&6u32.to_ne_bytes());
                    value[12..28].copy_from_slice(&a.octets());
                }
            }
        }
    }
    value
}

/// The loaded tier: the program and its maps.
pub struct Tier {
    ebpf: Mutex<Ebpf>,
    maps: Arc<TierMaps>,
    /// Port slots in use (each owns `QUEUES_PER_PORT` XSKMAP entries).
    slots: Mutex<Vec<bool>>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier").field("maps", &self.maps).finish()
    }
}

/// The flow stage's map (`tier.h`, `flows`).
pub const FLOWS_MAP: &str = "tier_flows";

/// Entries of `tier_flows` when the loader is not told (65536 flows).
pub const DEFAULT_FLOW_ENTRIES: u32 = 131_072;

impl Tier {
    /// Loads the program and creates its maps (`trace`: record every
    /// decision in `tier_trace`, for tests).
    pub fn load(trace: bool) -> Result<Tier, TierError> {
        Tier::load_with_flows(trace, DEFAULT_FLOW_ENTRIES)
    }

    /// Loads the program with room for `flow_entries` entries in its flow
    /// map `tier_flows` (two per flow: forward and reverse; the LRU evicts
    /// beyond, which makes those flows' frames userspace's).
    pub fn load_with_flows(trace: bool, flow_entries: u32) -> Result<Tier, TierError> {
        let enabled: u32 = u32::from(trace);
        let mut ebpf = EbpfLoader::new()
            .override_global("trace_enabled", &enabled, true)
            .map_max_entries(FLOWS_MAP, flow_entries.max(1))
            .load(TIER_OBJECT)
            .map_err(bpf_err("load object"))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| bpf_err("find program")(format!("{PROGRAM} missing from the object")))?
            .try_into()
            .map_err(bpf_err("program type"))?;
        program.load().map_err(bpf_err("load program"))?;
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| bpf_err(what)(e))?;
        let mut maps = HashMap::new();
        for (name, map) in ebpf.maps() {
            let data: &MapData = match map {
                Map::Array(d)
                | Map::HashMap(d)
                | Map::LruHashMap(d)
                | Map::LpmTrie(d)
                | Map::XskMap(d)
                | Map::DevMapHash(d)
                | Map::ArrayOfMaps(d) => d,
                Map::PerCpuArray(d) => d,
                // Global data (.rodata) and anything else: not written.
                _ => continue,
            };
            let info = data.info().map_err(bpf_err("map info"))?;
            let fd = data
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(bpf_err("duplicate map descriptor"))?;
            maps.insert(
                name.to_owned(),
                RawMap {
                    name: name.to_owned(),
                    fd,
                    key_size: info.key_size(),
                    value_size: info.value_size(),
                    per_cpu: matches!(map, Map::PerCpuArray(_)),
                },
            );
        }
        let sync_inner = maps
            .get("tier_sync_inner")
            .ok_or_else(|| TierError::NoMap("tier_sync_inner".to_owned()))?
            .fd
            .try_clone()
            .map_err(bpf_err("duplicate map descriptor"))?;
        let obs_ring = ebpf
            .take_map("tier_obs_ring")
            .ok_or_else(|| TierError::NoMap("tier_obs_ring".to_owned()))
            .and_then(|map| RingBuf::try_from(map).map_err(bpf_err("observation ring")))?;
        Ok(Tier {
            ebpf: Mutex::new(ebpf),
            maps: Arc::new(TierMaps {
                maps,
                cpus,
                sync_inner,
                obs_ring: ObsRing(Mutex::new(obs_ring)),
            }),
            slots: Mutex::new(vec![false; MAX_PORTS as usize]),
        })
    }

    /// The maps, for the threads that write or read them.
    pub fn maps(&self) -> Arc<TierMaps> {
        self.maps.clone()
    }

    /// Attaches the program to `interface` (`ifindex`), `Native` falling
    /// back to generic XDP when the driver refuses, and registers the port:
    /// its kind, and a slot for its AF_XDP sockets. Frames are handed off
    /// (or passed, on the fabric) until the tables reach the maps.
    pub fn attach(
        self: &Arc<Self>,
        interface: &str,
        ifindex: u32,
        mode: AttachMode,
        kind: TierPortKind,
    ) -> Result<TierPort, TierError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots
                .iter()
                .position(|used| !used)
                .ok_or(TierError::TooManyPorts)?;
            slots[slot] = true;
            slot as u32
        };
        let release = |tier: &Tier| {
            tier.slots.lock().unwrap_or_else(|p| p.into_inner())[slot as usize] = false;
        };
        let mut port = TierPort {
            tier: self.clone(),
            interface: interface.to_owned(),
            ifindex,
            slot,
            link: None,
            mode,
        };
        // The port's entries first: the program passes frames of an
        // interface it does not know.
        let value = iface_value(slot, kind);
        let key = ifindex.to_ne_bytes();
        // struct bpf_devmap_val: the ifindex, then (no) program.
        let devmap_value = |size: u32| {
            let mut v = vec![0u8; size as usize];
            v[..4].copy_from_slice(&key);
            v
        };
        if let Err(e) = self
            .maps
            .sizes("tier_devmap")
            .and_then(|(_, size)| self.maps.update("tier_devmap", &key, &devmap_value(size)))
            .and_then(|()| self.maps.update("tier_ifaces", &key, &value))
        {
            release(self);
            return Err(e);
        }
        let attached = {
            let mut ebpf = self.ebpf.lock().unwrap_or_else(|p| p.into_inner());
            let program: &mut Xdp = ebpf
                .program_mut(PROGRAM)
                .ok_or_else(|| bpf_err("find program")("missing"))?
                .try_into()
                .map_err(bpf_err("program type"))?;
            let try_mode = |program: &mut Xdp, mode: XdpMode| {
                program
                    .attach_to_if_index(ifindex, mode)
                    .and_then(|id| program.take_link(id))
            };
            match mode {
                AttachMode::Generic => try_mode(program, XdpMode::Skb).map(|l| (l, mode)),
                AttachMode::Native => match try_mode(program, XdpMode::Driver) {
                    Ok(link) => Ok((link, AttachMode::Native)),
                    Err(e) => {
                        tracing::warn!(port = interface, error = %e, "native XDP refused; the XDP tier runs in generic mode on this port");
                        try_mode(program, XdpMode::Skb).map(|l| (l, AttachMode::Generic))
                    }
                },
            }
        };
        match attached {
            Ok((link, mode)) => {
                port.link = Some(link);
                port.mode = mode;
                Ok(port)
            }
            Err(e) => Err(bpf_err("attach")(e)),
        }
    }

    /// Runs the program once on `frame` as if it arrived on `ifindex`,
    /// receive queue 0 (BPF_PROG_RUN; the interface must exist in the
    /// caller's network namespace): the return code and the frame as the
    /// program left it.
    pub fn test_run(&self, ifindex: u32, frame: &[u8]) -> Result<(u32, Vec<u8>), TierError> {
        self.test_run_repeat(ifindex, frame, 1)
            .map(|run| (run.return_value, run.frame))
    }

    /// Runs the program `repeat` times (at least once) on `frame` as
    /// [`test_run`](Self::test_run) does, and returns what the kernel
    /// measured: the mean time of one run, read by the kernel's own clock
    /// around its loop of runs (`bpf_prog_test_run` duration). Each run
    /// after the first sees the frame as the one before left it (the
    /// kernel does not restore it), so a repeat greater than one measures
    /// the frame's path only when the program leaves the frame unchanged
    /// (a bridged frame whose egress VLAN equals its ingress VLAN); with
    /// `repeat` 1 the duration includes one read of the kernel's clock.
    pub fn test_run_repeat(
        &self,
        ifindex: u32,
        frame: &[u8],
        repeat: u32,
    ) -> Result<TimedRun, TierError> {
        let ebpf = self.ebpf.lock().unwrap_or_else(|p| p.into_inner());
        let program: &Xdp = ebpf
            .program(PROGRAM)
            .ok_or_else(|| bpf_err("find program")("missing"))?
            .try_into()
            .map_err(bpf_err("program type"))?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = Vec::with_capacity(24);
        for field in [0, frame.len() as u32, 0, ifindex, 0, 0] {
            ctx.extend_from_slice(&field.to_ne_bytes());
        }
        let mut out = vec![0u8; frame.len() + 512];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                repeat: repeat.max(1),
                ..TestRunOptions::new()
            })
            .map_err(bpf_err("BPF_PROG_RUN"))?;
        out.truncate(result.data_size_out as usize);
        Ok(TimedRun {
            return_value: result.return_value,
            frame: out,
            ns_per_run: result.duration.as_nanos() as u64,
        })
    }
}

/// What [`Tier::test_run_repeat`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedRun {
    /// The program's return code (of the last run).
    pub return_value: u32,
    /// The frame as the last run left it.
    pub frame: Vec<u8>,
    /// The kernel's measure of one run, in nanoseconds (the mean over the
    /// repeats).
    pub ns_per_run: u64,
}

/// The tier attached to one port; dropping it detaches the program and
/// removes the port's entries.
pub struct TierPort {
    tier: Arc<Tier>,
    interface: String,
    ifindex: u32,
    slot: u32,
    link: Option<XdpLink>,
    mode: AttachMode,
}

impl std::fmt::Debug for TierPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierPort")
            .field("interface", &self.interface)
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .finish()
    }
}

impl TierPort {
    /// Steers the frames of receive queue `queue` that the program hands
    /// off to the AF_XDP socket `socket`.
    pub fn register(&self, queue: u32, socket: RawFd) -> Result<(), TierError> {
        if queue >= QUEUES_PER_PORT {
            return Err(TierError::Bpf {
                what: "register socket",
                message: format!("queue {queue} beyond the {QUEUES_PER_PORT} of a port"),
            });
        }
        let key = (self.slot * QUEUES_PER_PORT + queue).to_ne_bytes();
        self.tier
            .maps
            .update("tier_xsks", &key, &(socket as u32).to_ne_bytes())
    }

    /// Tells the program what the port is now (a fabric port whose
    /// underlay address changed, say).
    pub fn set_kind(&self, kind: TierPortKind) -> Result<(), TierError> {
        self.tier.maps.update(
            "tier_ifaces",
            &self.ifindex.to_ne_bytes(),
            &iface_value(self.slot, kind),
        )
    }

    /// Where the program runs on this port.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

impl Drop for TierPort {
    fn drop(&mut self) {
        let key = self.ifindex.to_ne_bytes();
        let maps = &self.tier.maps;
        // Unknown to the program first: its frames pass to the kernel.
        let _ = maps.delete("tier_ifaces", &key);
        for queue in 0..QUEUES_PER_PORT {
            let _ = maps.delete(
                "tier_xsks",
                &(self.slot * QUEUES_PER_PORT + queue).to_ne_bytes(),
            );
        }
        let _ = maps.delete("tier_devmap", &key);
        drop(self.link.take());
        self.tier.slots.lock().unwrap_or_else(|p| p.into_inner())[self.slot as usize] = false;
    }
}
