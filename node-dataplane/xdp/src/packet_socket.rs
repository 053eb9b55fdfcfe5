//! AF_PACKET fallback: a raw socket bound to the interface, used where
//! AF_XDP is unavailable (an old kernel, a missing capability) or when asked
//! for. Slower (a copy each way, a syscall per frame) but everywhere.
//!
//! The kernel strips the 802.1Q tag of received frames into metadata; it
//! comes back through `PACKET_AUXDATA` and is put back in the frame, in the
//! headroom, so the pipeline sees the wire format either way.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::{Action, Error, Fill, FrameHandler, Losses, Sender, TxError, TxOutcome};

const PACKET_AUXDATA: libc::c_int = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const PACKET_OUTGOING: u8 = 4;
/// Room in front of a received frame (a VLAN tag, more for the pipeline).
const HEADROOM: usize = 128;
const BUF_SIZE: usize = 2048 + HEADROOM;
/// The largest frame received whole (the buffer less the headroom).
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM;

/// `struct tpacket_auxdata` of `linux/if_packet.h`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// A raw packet socket on one interface.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    buf: Box<[u8; BUF_SIZE]>,
    /// Where extra frames (flood copies, frames from other ports) are built.
    scratch: Box<[u8; BUF_SIZE]>,
    /// Frames larger than the buffer, not yet reported.
    too_large: u64,
}

/// Sends frames from the scratch buffer, while the receive buffer is lent to
/// a frame handler.
struct ScratchSender<'s> {
    fd: RawFd,
    ifindex: i32,
    scratch: &'s mut [u8; BUF_SIZE],
}

impl Sender for ScratchSender<'_> {
    fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        match fill(&mut self.scratch[..]) {
            None => Ok(false),
            Some((offset, len)) => {
                let frame = offset
                    .checked_add(len)
                    .and_then(|end| self.scratch.get(offset..end))
                    .ok_or(TxError::TooLarge)?;
                send_frame(self.fd, self.ifindex, frame).map(|()| true)
            }
        }
    }
}

impl PacketSocket {
    /// Opens a non-blocking raw socket bound to `ifindex`.
    pub fn bind(ifindex: u32) -> Result<Self, Error> {
        let step = |what: &'static str| move |source: io::Error| Error::Socket { what, source };
        let protocol = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // SAFETY: creates a socket; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw < 0 {
            return Err(step("socket(AF_PACKET)")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: a pointer to a live c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_AUXDATA,
                (&one as *const libc::c_int).cast(),
                4,
            )
        };
        if rc != 0 {
            return Err(step("PACKET_AUXDATA")(io::Error::last_os_error()));
        }
        // SAFETY: zeroed is a valid sockaddr_ll; the fields that matter are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(step("bind")(io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            ifindex: ifindex as i32,
            buf: Box::new([0; BUF_SIZE]),
            scratch: Box::new([0; BUF_SIZE]),
            too_large: 0,
        })
    }

    /// Receives one frame into the buffer: (offset, len), or None when
    /// nothing is waiting. Frames we sent ourselves are skipped.
    fn recv_one(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            let mut iov = libc::iovec {
                iov_base: self.buf[HEADROOM..].as_mut_ptr().cast(),
                iov_len: BUF_SIZE - HEADROOM,
            };
            let mut control = [0u64; 16];
            // SAFETY: zeroed is a valid sockaddr_ll / msghdr.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            // SAFETY: msg points at live buffers of the lengths it states.
            let n = unsafe {
                libc::recvmsg(
                    self.fd.as_raw_fd(),
                    &mut msg,
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
            let len = n as usize;
            if from.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            if len > MAX_FRAME {
                // MSG_TRUNC reports the real length: count it, never forward
                // a truncated frame.
                self.too_large += 1;
                continue;
            }
            let mut aux = None;
            // SAFETY: walks the control messages the kernel wrote into
            // `control`, within msg_controllen, with the libc CMSG macros.
            unsafe {
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == PACKET_AUXDATA
                    {
                        aux = Some(std::ptr::read_unaligned(
                            libc::CMSG_DATA(cmsg).cast::<TpacketAuxdata>(),
                        ));
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
            }
            let mut offset = HEADROOM;
            let mut len = len;
            if let Some(aux) = aux.filter(|a| a.tp_status & TP_STATUS_VLAN_VALID != 0) {
                let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    aux.tp_vlan_tpid
                } else {
                    0x8100
                };
                // Put the tag back: move the two MAC addresses 4 bytes into
                // the headroom and write TPID + TCI after them.
                self.buf.copy_within(HEADROOM..HEADROOM + 12, HEADROOM - 4);
                offset -= 4;
                self.buf[offset + 12..offset + 14].copy_from_slice(&tpid.to_be_bytes());
                self.buf[offset + 14..offset + 16].copy_from_slice(&aux.tp_vlan_tci.to_be_bytes());
                len += 4;
            }
            return Ok(Some((offset, len)));
        }
    }

    /// Receives up to `max` frames; see [`crate::Port::receive`].
    pub fn receive(
        &mut self,
        max: u32,
        handle: &mut FrameHandler<'_>,
        outcome: &mut TxOutcome<'_>,
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < max as usize {
            let Some((offset, len)) = self.recv_one()? else {
                break;
            };
            n += 1;
            let mut sender = ScratchSender {
                fd: self.fd.as_raw_fd(),
                ifindex: self.ifindex,
                scratch: &mut self.scratch,
            };
            if let Action::Transmit { offset, len, tag } =
                handle(&mut self.buf[..], offset, len, &mut sender)
            {
                let sent = match offset.checked_add(len) {
                    Some(end) if end <= BUF_SIZE => {
                        send_frame(self.fd.as_raw_fd(), self.ifindex, &self.buf[offset..end])
                    }
                    _ => Err(TxError::TooLarge),
                };
                outcome(tag, len, sent);
            }
        }
        Ok(n)
    }

    /// Hands `fill` the scratch buffer and sends what it writes.
    pub fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        ScratchSender {
            fd: self.fd.as_raw_fd(),
            ifindex: self.ifindex,
            scratch: &mut self.scratch,
        }
        .send_with(fill)
    }

    /// Frames too large for the buffer since the last call.
    pub fn take_losses(&mut self) -> Losses {
        Losses {
            too_large: std::mem::take(&mut self.too_large),
            ..Losses::default()
        }
    }

    /// The socket's descriptor, for `poll`.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sends one frame from a packet socket to the interface `ifindex`.
fn send_frame(fd: RawFd, ifindex: i32, frame: &[u8]) -> Result<(), TxError> {
    // SAFETY: zeroed is a valid sockaddr_ll; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex;
    addr.sll_halen = 6;
    // SAFETY: sends `frame.len()` bytes from a live slice to a valid address.
    let rc = unsafe {
        libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc >= 0 {
        return Ok(());
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::ENOBUFS) => Err(TxError::RingFull),
        Some(libc::EMSGSIZE) => Err(TxError::TooLarge),
        _ => Err(TxError::Refused),
    }
}
