//! Tap devices: host interfaces whose other end is this process. A virtual
//! gateway is one: frames the host routes into it are read here, frames
//! written here are received by the host stack.
//!
//! Taps are made persistent, so that the interface, its addresses and routes
//! outlive a restart of the agent; the restarted agent attaches to the same
//! device by name.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::{Action, Error, Fill, FrameHandler, Losses, Sender, TxError, TxOutcome};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const HEADROOM: usize = 128;
const BUF_SIZE: usize = 2048 + HEADROOM;
/// The largest frame received whole: the buffer less the headroom, less the
/// one byte that tells a frame that filled the buffer (a tap truncates
/// silently) from one that fit.
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM - 1;

/// `struct ifreq` with the flags member, as TUNSETIFF reads it.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A persistent tap device and our end of it.
pub struct TapDevice {
    fd: OwnedFd,
    buf: Box<[u8; BUF_SIZE]>,
    /// Where extra frames are built while `buf` is lent to a handler.
    scratch: Box<[u8; BUF_SIZE]>,
    /// Frames larger than the buffer, not yet reported.
    too_large: u64,
}

/// Writes frames from the scratch buffer, while the receive buffer is lent
/// to a frame handler.
struct ScratchSender<'s> {
    fd: RawFd,
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
                write_frame(self.fd, frame).map(|()| true)
            }
        }
    }
}

impl TapDevice {
    /// Creates the tap `name`, or attaches to it when it exists (after a
    /// restart), and makes it persistent.
    pub fn open(name: &str) -> Result<Self, Error> {
        let step = |what: &'static str| move |source: io::Error| Error::Socket { what, source };
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(Error::NoSuchInterface {
                name: name.to_owned(),
            });
        }
        // SAFETY: opens a device node with a NUL-terminated path; checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(step("open /dev/net/tun")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        for (dst, src) in req.name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        // SAFETY: TUNSETIFF reads an ifreq we own, alive during the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) } < 0 {
            return Err(step("TUNSETIFF")(io::Error::last_os_error()));
        }
        // SAFETY: TUNSETPERSIST takes an integer argument.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETPERSIST, 1 as libc::c_ulong) } < 0 {
            return Err(step("TUNSETPERSIST")(io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            buf: Box::new([0; BUF_SIZE]),
            scratch: Box::new([0; BUF_SIZE]),
            too_large: 0,
        })
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
            // SAFETY: reads at most the buffer's length past the headroom.
            let got = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf[HEADROOM..].as_mut_ptr().cast(),
                    BUF_SIZE - HEADROOM,
                )
            };
            if got < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(n)
                } else {
                    Err(e)
                };
            }
            n += 1;
            let got = got as usize;
            if got > MAX_FRAME {
                self.too_large += 1;
                continue;
            }
            let mut sender = ScratchSender {
                fd: self.fd.as_raw_fd(),
                scratch: &mut self.scratch,
            };
            if let Action::Transmit { offset, len, tag } =
                handle(&mut self.buf[..], HEADROOM, got, &mut sender)
            {
                let sent = match offset.checked_add(len) {
                    Some(end) if end <= BUF_SIZE => {
                        write_frame(self.fd.as_raw_fd(), &self.buf[offset..end])
                    }
                    _ => Err(TxError::TooLarge),
                };
                outcome(tag, len, sent);
            }
        }
        Ok(n)
    }

    /// Hands `fill` the scratch buffer and writes what it builds to the host.
    pub fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        ScratchSender {
            fd: self.fd.as_raw_fd(),
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

    /// The descriptor, for `poll`.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn write_frame(fd: RawFd, frame: &[u8]) -> Result<(), TxError> {
    // SAFETY: writes `frame.len()` bytes from a live slice.
    let rc = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    if rc == frame.len() as isize {
        return Ok(());
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::ENOBUFS) if rc < 0 => Err(TxError::RingFull),
        Some(libc::EINVAL | libc::EMSGSIZE) if rc < 0 => Err(TxError::TooLarge),
        _ => Err(TxError::Refused),
    }
}
