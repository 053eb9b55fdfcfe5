//! How many receive queues an interface has, as its driver tells
//! `ethtool -l` (the `ETHTOOL_GCHANNELS` ioctl): a port opens one AF_XDP
//! socket per receive queue, because the XDP programs hand a frame to the
//! socket of the queue it arrived on, and a queue without a socket would
//! leave its frames to the kernel.
//!
//! Asked in the calling thread's network namespace (the ioctl goes through
//! a socket of that namespace; `/sys/class/net` would show the namespace
//! sysfs was mounted in). A driver without channel information (`-EOPNOTSUPP`)
//! has one queue.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `ETHTOOL_GCHANNELS` from `linux/ethtool.h`.
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` from `linux/ethtool.h`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `struct ifreq` with the `ifr_data` member of the union.
#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    /// The rest of the union (`struct ifmap` is the largest member).
    _pad: [u8; 16],
}

/// The receive queues the driver of `name` runs now: its receive-only and
/// combined channels. One when the driver does not say.
pub fn rx_queues(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let bytes = c_name.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: creates a socket; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor we own.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = IfReqData {
        name: [0; libc::IFNAMSIZ],
        data: (&mut channels as *mut EthtoolChannels).cast(),
        _pad: [0; 16],
    };
    for (dst, &src) in req.name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCETHTOOL with an ifreq whose data points at a live
    // ethtool_channels; the kernel writes only that struct.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Ok(1),
            _ => Err(e),
        };
    }
    Ok(queue_count(&channels))
}

fn queue_count(channels: &EthtoolChannels) -> u32 {
    (channels.rx_count + channels.combined_count).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_queues_are_rx_only_plus_combined_channels_and_at_least_one() {
        let veth = EthtoolChannels {
            rx_count: 4,
            tx_count: 4,
            ..Default::default()
        };
        assert_eq!(queue_count(&veth), 4);
        let nic = EthtoolChannels {
            combined_count: 8,
            ..Default::default()
        };
        assert_eq!(queue_count(&nic), 8);
        assert_eq!(queue_count(&EthtoolChannels::default()), 1);
    }

    #[test]
    fn the_loopback_has_one_queue_and_a_missing_interface_is_an_error() {
        // `lo` has no channel information: one queue.
        assert_eq!(rx_queues("lo").expect("lo exists"), 1);
        assert!(rx_queues("tlx-no-such-if").is_err());
    }
}
