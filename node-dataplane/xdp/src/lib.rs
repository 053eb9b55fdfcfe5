//! Frame I/O of a gateway node, kept apart from packet processing: the
//! pipeline is a pure function over a byte buffer, and this crate moves
//! frames between the wire and such buffers, in batches.
//!
//! ```text
//!  gateway port (e.g. eth1)
//!     | XDP program (bpf/redirect.bpf.c): XSKMAP[rx queue] -> AF_XDP socket, else pass
//!     v
//!  AF_XDP socket + UMEM (xsk.rs)  --or, as a fallback--  AF_PACKET socket (packet_socket.rs)
//!     |  receive(batch, handler): handler(frame buffer, offset, len) -> Action
//!     v
//!  Action::Transmit -> sent from the same buffer (AF_XDP: same UMEM frame, no copy);
//!                      the outcome callback learns whether it went out
//!  Action::Drop     -> buffer recycled
//!  Sender::send_with   -> extra frames out of the same port (flood copies)
//!  Port::send_with     -> a frame for another port, written once into its buffer
//! ```
//!
//! The backend is chosen per port: the XDP tier (`tier.rs`: the kernel
//! decides the common case, the rest reaches the port's AF_XDP socket),
//! AF_XDP alone, or AF_PACKET; the choice and the reason are logged.

mod channels;
mod packet_socket;
mod program;
mod queues;
mod tap;
pub mod tier;
mod xsk;

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

pub use channels::rx_queues;
pub use packet_socket::PacketSocket;
pub use program::{AttachMode, FabricSteering, RedirectProgram, Steering};
pub use tap::TapDevice;
pub use tier::{Tier, TierError, TierMaps, TierPort, TierPortKind, TimedRun};
pub use xsk::{CopyMode, XskConfig, XskSocket};

use queues::Queues;

/// The largest frame every backend receives whole (an AF_XDP UMEM frame of
/// 2048 bytes less our 64 and the kernel's 256 bytes of headroom): the
/// agent refuses, in the node's status, a declared MTU that needs more, and
/// never sends tunnel packets larger than this.
pub const FAST_PATH_MAX_FRAME: usize = 1728;

/// What to do with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Recycle the buffer.
    Drop,
    /// Send `buf[offset..offset + len]` out of the port it came in on. The
    /// port reports whether it went out through the receive call's outcome
    /// callback, with `tag` (for example the VMI the frame is for), so the
    /// caller counts only what was really sent.
    Transmit {
        /// Start of the frame in the buffer (may be before the received
        /// offset when a header was pushed into the headroom).
        offset: usize,
        /// Length of the frame.
        len: usize,
        /// The caller's tag, handed back with the outcome.
        tag: u32,
    },
}

/// Why a frame was not sent. Each is a counted drop reason of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TxError {
    /// The transmit ring (or the socket's send buffer) is full.
    #[error("the transmit ring is full")]
    RingFull,
    /// No free buffer to copy the frame into.
    #[error("no free frame buffer")]
    NoBuffer,
    /// The frame does not fit a buffer of the port.
    #[error("the frame is larger than the port's buffers")]
    TooLarge,
    /// The kernel refused the frame.
    #[error("the kernel refused the frame")]
    Refused,
}

/// Sends extra frames out of the port a frame arrived on, from inside a
/// frame handler (the copies of a flooded frame, say).
pub trait Sender {
    /// Hands `fill` a free transmit buffer of the port; `fill` writes a frame
    /// into it and returns where it lies (`Some((offset, len))`), or `None` to
    /// send nothing. Returns whether a frame was sent.
    fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError>;
}

/// Writes a frame into a transmit buffer: see [`Sender::send_with`].
pub type Fill<'a> = dyn FnMut(&mut [u8]) -> Option<(usize, usize)> + 'a;

/// Called once per received frame: `(buffer, offset, len, sender)`, where
/// `buffer[offset..offset + len]` is the frame, `buffer[..offset]` is
/// headroom (at least 64 bytes), and `sender` sends extra frames out of the
/// same port.
pub type FrameHandler<'a> = dyn FnMut(&mut [u8], usize, usize, &mut dyn Sender) -> Action + 'a;

/// Called once per [`Action::Transmit`] with its tag, its length and
/// whether it went out.
pub type TxOutcome<'a> = dyn FnMut(u32, usize, Result<(), TxError>) + 'a;

/// Frames a port lost before any handler saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    /// Larger than the port's receive buffers (AF_PACKET, tap: our count).
    pub too_large: u64,
    /// Dropped by the kernel before the ring: larger than a UMEM frame, or no
    /// free frame in the fill ring (AF_XDP; the kernel does not tell which).
    pub kernel_dropped: u64,
    /// The receive ring was full: the forwarding thread fell behind (AF_XDP).
    pub ring_full: u64,
}

/// Errors opening a port.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The interface does not exist (in this network namespace).
    #[error("no interface named {name:?} in this network namespace")]
    NoSuchInterface {
        /// The interface name.
        name: String,
    },
    /// A socket call failed.
    #[error("{what}: {source}")]
    Socket {
        /// Which step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Loading or attaching the XDP program failed.
    #[error("XDP program on {interface}: {what}: {message}")]
    Bpf {
        /// Which step.
        what: &'static str,
        /// The interface.
        interface: String,
        /// What the loader said.
        message: String,
    },
}

/// The I/O backend of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The XDP tier decides the common case in the kernel; the rest goes to
    /// an AF_XDP socket.
    XdpTier,
    /// AF_XDP socket fed by the XDP redirect program.
    AfXdp,
    /// AF_PACKET raw socket.
    AfPacket,
    /// A tap device of this process (a virtual gateway).
    Tap,
}

impl Backend {
    /// The name reported in status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::XdpTier => "XDP",
            Backend::AfXdp => "AF_XDP",
            Backend::AfPacket => "AF_PACKET",
            Backend::Tap => "TAP",
        }
    }
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// The XDP tier with AF_XDP where the kernel allows it; else AF_XDP,
    /// else AF_PACKET (each fallback logged with its reason).
    #[default]
    Auto,
    /// The XDP tier with AF_XDP only; fail if it cannot be set up.
    XdpTier,
    /// AF_XDP only; fail if it cannot be set up.
    AfXdp,
    /// AF_PACKET only.
    AfPacket,
}

enum Io {
    Tier {
        // Dropped before the port's tier entries: fields drop in order.
        sockets: Queues,
        port: TierPort,
    },
    Xdp {
        // Dropped after the sockets: fields drop in declaration order.
        sockets: Queues,
        program: RedirectProgram,
    },
    Packet(PacketSocket),
    Tap(TapDevice),
}

/// One port of the node, open for frame I/O.
pub struct Port {
    name: String,
    io: Io,
    /// UDP sockets holding the tunnel ports on an AF_PACKET fabric port, so
    /// that the kernel, which also receives the tunnel packets there, does
    /// not answer them with ICMP port-unreachable errors.
    _tunnel_ports: Vec<std::net::UdpSocket>,
}

/// The index of an interface by name.
pub fn interface_index(name: &str) -> Result<u32, Error> {
    let no_such = || Error::NoSuchInterface {
        name: name.to_owned(),
    };
    let c_name = CString::new(name).map_err(|_| no_such())?;
    // SAFETY: a NUL-terminated string that outlives the call.
    #[allow(unsafe_code)]
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        Err(no_such())
    } else {
        Ok(index)
    }
}

/// The receive queues of interface `name` to bind a socket to: all its
/// driver runs, up to the XSKMAP slots a port has.
fn port_queues(name: &str) -> Result<u32, Error> {
    let queues = rx_queues(name).map_err(|source| Error::Socket {
        what: "ETHTOOL_GCHANNELS",
        source,
    })?;
    if queues > tier::QUEUES_PER_PORT {
        tracing::warn!(
            port = name,
            queues,
            served = tier::QUEUES_PER_PORT,
            "more receive queues than a port serves: frames on the others go to the kernel"
        );
    }
    Ok(queues.min(tier::QUEUES_PER_PORT))
}

impl Port {
    /// Opens trunk port `name` with the chosen backend (a socket per
    /// receive queue; generic XDP, copy mode): every frame goes to the fast
    /// path.
    pub fn open(name: &str, choice: BackendChoice) -> Result<Self, Error> {
        Self::open_steering(name, choice, Steering::All)
    }

    /// Opens the fabric port `name`: only tunnel packets for `underlay` go
    /// to the fast path (AF_XDP), or, with AF_PACKET, the fast path sees
    /// copies of everything and the tunnel ports are held so that the
    /// kernel drops its own copies of tunnel packets quietly.
    pub fn open_fabric(name: &str, choice: BackendChoice, underlay: IpAddr) -> Result<Self, Error> {
        Self::open_steering(name, choice, Steering::Tunnels(underlay))
    }

    fn open_steering(name: &str, choice: BackendChoice, steering: Steering) -> Result<Self, Error> {
        let ifindex = interface_index(name)?;
        let open_xdp = || -> Result<Io, Error> {
            let queues = port_queues(name)?;
            let mut program =
                RedirectProgram::attach_steering(name, AttachMode::Generic, steering)?;
            let sockets = Queues::bind(ifindex, queues, CopyMode::Copy, |queue, fd| {
                program.register(queue, fd)
            })?;
            Ok(Io::Xdp { sockets, program })
        };
        let io = match choice {
            BackendChoice::AfXdp | BackendChoice::XdpTier => open_xdp()?,
            BackendChoice::AfPacket => {
                tracing::info!(port = name, "AF_PACKET backend, as configured");
                Io::Packet(PacketSocket::bind(ifindex)?)
            }
            BackendChoice::Auto => match open_xdp() {
                Ok(io) => io,
                Err(e) => {
                    tracing::warn!(port = name, error = %e, "AF_XDP unavailable, falling back to AF_PACKET");
                    Io::Packet(PacketSocket::bind(ifindex)?)
                }
            },
        };
        let tunnel_ports = match (&io, steering) {
            (Io::Packet(_), Steering::Tunnels(addr)) => hold_tunnel_ports(addr),
            _ => Vec::new(),
        };
        let port = Self {
            name: name.to_owned(),
            io,
            _tunnel_ports: tunnel_ports,
        };
        tracing::info!(
            port = name,
            backend = port.backend().as_str(),
            steering = ?steering,
            queues = port.queues(),
            "port open"
        );
        Ok(port)
    }

    /// Opens port `name` on the XDP tier `tier` (attached in `mode`, native
    /// falling back to generic when the driver refuses): the program decides
    /// what it can, the rest reaches this port's AF_XDP sockets (one per
    /// receive queue; zero-copy where the driver supports it and the
    /// program runs in driver mode, else copy mode).
    pub fn open_tier(
        name: &str,
        tier: &std::sync::Arc<Tier>,
        kind: TierPortKind,
        mode: AttachMode,
    ) -> Result<Self, Error> {
        let ifindex = interface_index(name)?;
        let tier_err = |e: TierError| Error::Bpf {
            what: "XDP tier",
            interface: name.to_owned(),
            message: e.to_string(),
        };
        let queues = port_queues(name)?;
        let port = tier.attach(name, ifindex, mode, kind).map_err(tier_err)?;
        let copy = match port.mode() {
            AttachMode::Native => CopyMode::PreferZeroCopy,
            AttachMode::Generic => CopyMode::Copy,
        };
        let sockets = Queues::bind(ifindex, queues, copy, |queue, fd| {
            port.register(queue, fd).map_err(tier_err)
        })?;
        tracing::info!(
            port = name,
            mode = ?port.mode(),
            kind = ?kind,
            queues = sockets.len(),
            af_xdp = match sockets.zero_copy() {
                Some(true) => "zero-copy",
                Some(false) => "copy mode",
                None => "unknown copy mode",
            },
            "port open on the XDP tier (the rest through AF_XDP, a socket per receive queue)"
        );
        Ok(Self {
            name: name.to_owned(),
            io: Io::Tier { sockets, port },
            _tunnel_ports: Vec::new(),
        })
    }

    /// The interface's index, for a port on the XDP tier.
    pub fn tier_ifindex(&self) -> Option<u32> {
        match &self.io {
            Io::Tier { port, .. } => Some(port.ifindex()),
            _ => None,
        }
    }

    /// Where the XDP tier's program runs on this port, if it is on the tier.
    pub fn tier_mode(&self) -> Option<AttachMode> {
        match &self.io {
            Io::Tier { port, .. } => Some(port.mode()),
            _ => None,
        }
    }

    /// Updates what the fabric port steers to the fast path besides tunnel
    /// packets (SNAT returns, IP fabric subnets), in place; a no-op for
    /// other ports, and for AF_PACKET, which sees every frame anyway.
    pub fn set_fabric_steering(&mut self, steering: &FabricSteering) -> Result<(), Error> {
        match &mut self.io {
            Io::Xdp { program, .. } => program.set_fabric_steering(steering),
            _ => Ok(()),
        }
    }

    /// Creates (or, after a restart, attaches to) the persistent tap `name`.
    pub fn open_tap(name: &str) -> Result<Self, Error> {
        let tap = TapDevice::open(name)?;
        tracing::info!(port = name, "tap open");
        Ok(Self {
            name: name.to_owned(),
            io: Io::Tap(tap),
            _tunnel_ports: Vec::new(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.io {
            Io::Tier { .. } => Backend::XdpTier,
            Io::Xdp { .. } => Backend::AfXdp,
            Io::Packet(_) => Backend::AfPacket,
            Io::Tap(_) => Backend::Tap,
        }
    }

    /// Receives up to `max` frames, calling `handle` for each and applying
    /// its action; `outcome` learns whether each transmission went out.
    /// Returns how many frames were received.
    pub fn receive(
        &mut self,
        max: u32,
        handle: &mut FrameHandler<'_>,
        outcome: &mut TxOutcome<'_>,
    ) -> io::Result<usize> {
        match &mut self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => {
                Ok(sockets.receive(max, handle, outcome))
            }
            Io::Packet(socket) => socket.receive(max, handle, outcome),
            Io::Tap(tap) => tap.receive(max, handle, outcome),
        }
    }

    /// Sends a copy of `frame` (a frame forwarded from another port): one
    /// copy, into a transmit buffer of this port.
    pub fn send_copy(&mut self, frame: &[u8]) -> Result<(), TxError> {
        let sent = self.send_with(&mut |buf: &mut [u8]| {
            let dst = buf.get_mut(..frame.len())?;
            dst.copy_from_slice(frame);
            Some((0, frame.len()))
        })?;
        if sent { Ok(()) } else { Err(TxError::TooLarge) }
    }

    /// Hands `fill` a transmit buffer of this port to write a frame into
    /// (see [`Sender::send_with`]); the frame is queued at once.
    pub fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        match &mut self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => sockets.send_with(fill),
            Io::Packet(socket) => socket.send_with(fill),
            Io::Tap(tap) => tap.send_with(fill),
        }
    }

    /// Frames lost before any handler saw them, since the last call (the
    /// kernel's counts for AF_XDP sockets, our own for the others).
    pub fn take_losses(&mut self) -> Losses {
        match &mut self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => sockets.take_losses(),
            Io::Packet(socket) => socket.take_losses(),
            Io::Tap(tap) => tap.take_losses(),
        }
    }

    /// The largest frame this port receives whole.
    pub fn max_frame(&self) -> usize {
        match &self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => sockets.max_frame(),
            Io::Packet(_) => packet_socket::MAX_FRAME,
            Io::Tap(_) => tap::MAX_FRAME,
        }
    }

    /// Pushes out pending transmissions and recycles sent buffers.
    pub fn flush(&mut self) {
        if let Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } = &mut self.io {
            sockets.flush();
        }
    }

    /// How many receive queues the port serves (an AF_XDP socket each;
    /// one for the other backends).
    pub fn queues(&self) -> usize {
        match &self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => sockets.len(),
            Io::Packet(_) | Io::Tap(_) => 1,
        }
    }

    /// Whether the port's AF_XDP sockets run in zero-copy mode: `None` for
    /// other backends, and when the kernel does not say.
    pub fn zero_copy(&self) -> Option<bool> {
        match &self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => sockets.zero_copy(),
            Io::Packet(_) | Io::Tap(_) => None,
        }
    }

    /// The descriptors to `poll` for readability (one per AF_XDP socket).
    pub fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        let (sockets, single) = match &self.io {
            Io::Xdp { sockets, .. } | Io::Tier { sockets, .. } => (Some(sockets.raw_fds()), None),
            Io::Packet(socket) => (None, Some(socket.raw_fd())),
            Io::Tap(tap) => (None, Some(tap.raw_fd())),
        };
        sockets.into_iter().flatten().chain(single)
    }
}

/// Binds the tunnel ports on `addr` (see [`Port::open_fabric`]); a port
/// already held by someone else is logged and left alone.
fn hold_tunnel_ports(addr: IpAddr) -> Vec<std::net::UdpSocket> {
    [6635u16, 4789]
        .into_iter()
        .filter_map(|port| match std::net::UdpSocket::bind((addr, port)) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!(%addr, port, error = %e, "cannot hold the tunnel port: the kernel may answer tunnel packets with port-unreachable errors");
                None
            }
        })
        .collect()
}

/// Waits until one of `ports` has frames or `timeout_ms` passes.
pub fn wait_readable(ports: &[Port], timeout_ms: i32) -> io::Result<()> {
    let fds: Vec<RawFd> = ports.iter().flat_map(Port::raw_fds).collect();
    wait_fds(&fds, timeout_ms)
}

/// Waits until one of the descriptors `fds` (ports' [`Port::raw_fds`]) is
/// readable or `timeout_ms` passes.
pub fn wait_fds(fds: &[RawFd], timeout_ms: i32) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a live array of `fds.len()` pollfd structs.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Moves the calling thread into the network namespace at `path` (e.g.
/// `/run/netns/<name>`): sockets and XDP attachments it makes afterwards
/// belong to that namespace. For tests and labs; a deployed dataplane runs
/// in the node's namespace already.
pub fn enter_network_namespace(path: &std::path::Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // SAFETY: setns on a namespace file we hold open; it changes only the
    // calling thread's network namespace.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_advertised_largest_frame_is_what_every_backend_takes() {
        let xsk = crate::XskConfig::default();
        assert_eq!(
            super::FAST_PATH_MAX_FRAME,
            (xsk.frame_size - xsk.headroom) as usize - 256
        );
        const {
            assert!(super::FAST_PATH_MAX_FRAME <= crate::packet_socket::MAX_FRAME);
            assert!(super::FAST_PATH_MAX_FRAME <= crate::tap::MAX_FRAME);
        }
    }

    #[test]
    fn the_xdp_tier_hands_off_what_an_af_xdp_buffer_does_not_take() {
        let header = include_str!("../bpf/tier.h");
        let defined = header
            .lines()
            .find_map(|l| l.strip_prefix("#define TIER_MAX_FRAME "))
            .expect("TIER_MAX_FRAME in tier.h");
        assert_eq!(
            defined.trim().parse::<usize>(),
            Ok(super::FAST_PATH_MAX_FRAME)
        );
    }
}
