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

use crate::{Action, Error, FrameHandler};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const HEADROOM: usize = 64;
const BUF_SIZE: usize = 2048 + HEADROOM;

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
        })
    }

    /// Receives up to `max` frames; see [`crate::Port::receive`].
    pub fn receive(&mut self, max: u32, handle: &mut FrameHandler<'_>) -> io::Result<usize> {
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
            if let Action::Transmit { offset, len } =
                handle(&mut self.buf[..], HEADROOM, got as usize)
                && offset + len <= BUF_SIZE
            {
                write_frame(self.fd.as_raw_fd(), &self.buf[offset..offset + len]);
            }
        }
        Ok(n)
    }

    /// Hands `frame` to the host stack; false when it was not taken.
    pub fn send_copy(&mut self, frame: &[u8]) -> bool {
        write_frame(self.fd.as_raw_fd(), frame)
    }

    /// The descriptor, for `poll`.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn write_frame(fd: RawFd, frame: &[u8]) -> bool {
    // SAFETY: writes `frame.len()` bytes from a live slice.
    let rc = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    rc == frame.len() as isize
}
