//! Loads an XDP program of `bpf/redirect.bpf.c` (built by build.rs) onto an
//! interface and registers AF_XDP sockets in its XSKMAP: every frame of a
//! trunk port goes to the socket; on the fabric port only tunnel packets
//! for the node's underlay address, the return of its SNAT flows and packets
//! to subnets with IP fabric forwarding do (see [`FabricSteering`]), the
//! rest stays with the host. The fabric's steering is updated in place.
//!
//! The attachment is a BPF link owned by this value: it goes away when the
//! value is dropped or the process dies, so a crashed dataplane never leaves
//! a program behind that would blackhole the port or block the next attach.

use std::net::IpAddr;
use std::os::fd::RawFd;

use aya::Ebpf;
use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
use aya::maps::{Array, XskMap};
use aya::programs::{Xdp, XdpMode};

use crate::Error;

/// The program object, compiled by build.rs.
static REDIRECT_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/redirect.bpf.o"));

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Generic XDP in the kernel stack: works on every interface (veth, tap).
    Generic,
    /// Native XDP in the driver.
    Native,
}

/// Which frames of a port go to its AF_XDP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// Every frame (a trunk toward remote instances).
    All,
    /// Only overlay tunnel packets (UDP 6635 and 4789) for this underlay
    /// address; the host keeps everything else (the fabric port).
    Tunnels(IpAddr),
}

/// What the fabric port's program steers to the fast path besides tunnel
/// packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FabricSteering {
    /// The SNAT port range on the underlay address (its flows' return),
    /// when a network uses SNAT.
    pub snat_ports: Option<(u16, u16)>,
    /// Subnets (address, prefix length) of networks with IP fabric
    /// forwarding.
    pub ip_fabric: Vec<(IpAddr, u8)>,
}

/// The size of the program's `struct underlay`.
const UNDERLAY_LEN: usize = 28;

/// The `struct underlay` of the program: family (native endian), IPv4
/// address, IPv6 address (network byte order), SNAT range (native endian;
/// 0-0 for none).
fn underlay_value(addr: IpAddr, snat: Option<(u16, u16)>) -> [u8; UNDERLAY_LEN] {
    let mut value = [0u8; UNDERLAY_LEN];
    match addr {
        IpAddr::V4(a) => {
            value[..4].copy_from_slice(&4u32.to_ne_bytes());
            value[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            value[..4].copy_from_slice(&6u32.to_ne_bytes());
            value[8..24].copy_from_slice(&a.octets());
        }
    }
    let (lo, hi) = snat.unwrap_or((0, 0));
    value[24..26].copy_from_slice(&lo.to_ne_bytes());
    value[26..28].copy_from_slice(&hi.to_ne_bytes());
    value
}

/// The XDP program attached to one interface.
pub struct RedirectProgram {
    ebpf: Ebpf,
    interface: String,
    /// The underlay address of a fabric port's program.
    underlay: Option<IpAddr>,
}

impl RedirectProgram {
    /// Loads the program steering every frame and attaches it to `interface`.
    pub fn attach(interface: &str, mode: AttachMode) -> Result<Self, Error> {
        Self::attach_steering(interface, mode, Steering::All)
    }

    /// Loads the program for `steering` and attaches it to `interface`.
    pub fn attach_steering(
        interface: &str,
        mode: AttachMode,
        steering: Steering,
    ) -> Result<Self, Error> {
        let bpf_err = |what: &'static str| {
            move |e: Box<dyn std::error::Error + Send + Sync>| Error::Bpf {
                what,
                interface: interface.to_owned(),
                message: e.to_string(),
            }
        };
        let mut ebpf = Ebpf::load(REDIRECT_OBJECT).map_err(|e| bpf_err("load object")(e.into()))?;
        let name = match steering {
            Steering::All => "trunkline_redirect",
            Steering::Tunnels(addr) => {
                let map = ebpf.map_mut("underlay").ok_or_else(|| {
                    bpf_err("find map")("underlay missing from the object".into())
                })?;
                let mut underlay: Array<_, [u8; UNDERLAY_LEN]> =
                    Array::try_from(map).map_err(|e| bpf_err("underlay map")(e.into()))?;
                underlay
                    .set(0, underlay_value(addr, None), 0)
                    .map_err(|e| bpf_err("set the underlay address")(e.into()))?;
                "trunkline_fabric"
            }
        };
        let program: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| {
                bpf_err("find program")(format!("{name} missing from the object").into())
            })?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| bpf_err("program type")(e.into()))?;
        program
            .load()
            .map_err(|e| bpf_err("load program")(e.into()))?;
        let xdp_mode = match mode {
            AttachMode::Generic => XdpMode::Skb,
            AttachMode::Native => XdpMode::Driver,
        };
        program
            .attach(interface, xdp_mode)
            .map_err(|e| bpf_err("attach")(e.into()))?;
        Ok(Self {
            ebpf,
            interface: interface.to_owned(),
            underlay: match steering {
                Steering::Tunnels(addr) => Some(addr),
                Steering::All => None,
            },
        })
    }

    /// Updates, in place, what the fabric program steers besides tunnel
    /// packets (a no-op for a trunk's program).
    pub fn set_fabric_steering(&mut self, steering: &FabricSteering) -> Result<(), Error> {
        let Some(addr) = self.underlay else {
            return Ok(());
        };
        let interface = self.interface.clone();
        let err = move |what: &'static str| {
            let interface = interface.clone();
            move |e: Box<dyn std::error::Error + Send + Sync>| Error::Bpf {
                what,
                interface,
                message: e.to_string(),
            }
        };
        {
            let map = self
                .ebpf
                .map_mut("underlay")
                .ok_or_else(|| err("find map")("underlay missing".into()))?;
            let mut underlay: Array<_, [u8; UNDERLAY_LEN]> =
                Array::try_from(map).map_err(|e| err("underlay map")(e.into()))?;
            underlay
                .set(0, underlay_value(addr, steering.snat_ports), 0)
                .map_err(|e| err("set the SNAT ports")(e.into()))?;
        }
        let v4: Vec<LpmKey<[u8; 4]>> = steering
            .ip_fabric
            .iter()
            .filter_map(|(a, len)| match a {
                IpAddr::V4(a) => Some(LpmKey::new(u32::from(*len), a.octets())),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6: Vec<LpmKey<[u8; 16]>> = steering
            .ip_fabric
            .iter()
            .filter_map(|(a, len)| match a {
                IpAddr::V6(a) => Some(LpmKey::new(u32::from(*len), a.octets())),
                IpAddr::V4(_) => None,
            })
            .collect();
        self.sync_trie("ip_fabric4", &v4)?;
        self.sync_trie("ip_fabric6", &v6)
    }

    /// Makes the LPM trie `name` hold exactly `wanted`.
    fn sync_trie<K: aya::Pod + PartialEq>(
        &mut self,
        name: &'static str,
        wanted: &[LpmKey<K>],
    ) -> Result<(), Error> {
        let interface = self.interface.clone();
        let err = |message: String| Error::Bpf {
            what: "update the IP fabric prefixes",
            interface: interface.clone(),
            message,
        };
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| err(format!("{name} missing from the object")))?;
        let mut trie: LpmTrie<_, K, u8> = LpmTrie::try_from(map).map_err(|e| err(e.to_string()))?;
        let present: Vec<LpmKey<K>> = trie.keys().filter_map(Result::ok).collect();
        let same =
            |a: &LpmKey<K>, b: &LpmKey<K>| a.prefix_len() == b.prefix_len() && a.data() == b.data();
        for key in &present {
            if !wanted.iter().any(|w| same(w, key)) {
                trie.remove(key).map_err(|e| err(e.to_string()))?;
            }
        }
        for key in wanted {
            if !present.iter().any(|p| same(p, key)) {
                trie.insert(key, 1u8, 0).map_err(|e| err(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Steers frames of receive queue `queue` to the socket `socket`.
    pub fn register(&mut self, queue: u32, socket: RawFd) -> Result<(), Error> {
        let interface = self.interface.clone();
        let err = move |message: String| Error::Bpf {
            what: "register socket",
            interface: interface.clone(),
            message,
        };
        let map = self
            .ebpf
            .map_mut("xsks")
            .ok_or_else(|| err("xsks map missing".to_owned()))?;
        let mut xsks: XskMap<_> = XskMap::try_from(map).map_err(|e| err(e.to_string()))?;
        xsks.set(queue, socket, 0).map_err(|e| err(e.to_string()))
    }
}
