//! Loads the XDP redirect program (built from `bpf/redirect.bpf.c` by
//! build.rs) onto an interface and registers AF_XDP sockets in its XSKMAP.
//!
//! The attachment is a BPF link owned by this value: it goes away when the
//! value is dropped or the process dies, so a crashed dataplane never leaves
//! a program behind that would blackhole the port or block the next attach.

use std::os::fd::RawFd;

use aya::Ebpf;
use aya::maps::XskMap;
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

/// The XDP program attached to one interface.
pub struct RedirectProgram {
    ebpf: Ebpf,
    interface: String,
}

impl RedirectProgram {
    /// Loads the program and attaches it to `interface`.
    pub fn attach(interface: &str, mode: AttachMode) -> Result<Self, Error> {
        let bpf_err = |what: &'static str| {
            move |e: Box<dyn std::error::Error + Send + Sync>| Error::Bpf {
                what,
                interface: interface.to_owned(),
                message: e.to_string(),
            }
        };
        let mut ebpf = Ebpf::load(REDIRECT_OBJECT).map_err(|e| bpf_err("load object")(e.into()))?;
        let program: &mut Xdp = ebpf
            .program_mut("trunkline_redirect")
            .ok_or_else(|| {
                bpf_err("find program")("trunkline_redirect missing from the object".into())
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
        })
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
