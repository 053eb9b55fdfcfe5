//! A port's AF_XDP sockets: one per receive queue of its interface, each
//! with its own UMEM and rings (the default's memory split over the
//! queues, [`XskConfig::for_queues`]), all served by the port's forwarding
//! thread.
//!
//! ```text
//!  NIC / veth queue 0 --XSKMAP[slot + 0]--> socket 0 --+
//!  NIC / veth queue 1 --XSKMAP[slot + 1]--> socket 1 --+--> receive: each socket in turn, from the
//!  ...                                                 |    one after the last served, up to `max`
//!                                                      +--> a frame leaving by the port it came in
//!                                                           on: sent by the socket it came from
//!  frames from other ports, flood copies to other ports: sent by socket 0
//! ```
//!
//! The XDP programs hand a frame to the socket of the queue it arrived on
//! (a frame of a queue without a socket would go to the kernel instead):
//! so a port binds every queue its driver runs when it opens
//! ([`crate::channels::rx_queues`]).

use std::os::fd::RawFd;

use crate::xsk::{CopyMode, XskConfig, XskSocket};
use crate::{Error, Fill, FrameHandler, Losses, TxError, TxOutcome};

/// The sockets of one port, queue `i` at index `i`.
pub(crate) struct Queues {
    sockets: Vec<XskSocket>,
    /// The socket `receive` serves first next time (fairness between
    /// queues when a batch is full).
    next: usize,
}

impl Queues {
    /// Binds one socket to each of the `queues` receive queues of
    /// `ifindex` and hands each to `register` (the XSKMAP entry of its
    /// queue). At least one queue.
    pub(crate) fn bind(
        ifindex: u32,
        queues: u32,
        mode: CopyMode,
        mut register: impl FnMut(u32, RawFd) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        let config = XskConfig::for_queues(queues);
        let sockets = (0..queues.max(1))
            .map(|queue| {
                let socket = XskSocket::bind_mode(ifindex, queue, config, mode)?;
                register(queue, socket.raw_fd())?;
                Ok(socket)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self { sockets, next: 0 })
    }

    /// How many queues (sockets) the port serves.
    pub(crate) fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether the sockets run in zero-copy mode (all of them: a driver
    /// decides for the whole device); `None` when the kernel does not say.
    pub(crate) fn zero_copy(&self) -> Option<bool> {
        self.sockets
            .iter()
            .map(|s| s.zero_copy().ok())
            .try_fold(true, |all, zc| Some(all && zc?))
    }

    /// Receives up to `max` frames from the sockets in turn.
    pub(crate) fn receive(
        &mut self,
        max: u32,
        handle: &mut FrameHandler<'_>,
        outcome: &mut TxOutcome<'_>,
    ) -> usize {
        let n = self.sockets.len();
        let mut got = 0;
        for i in 0..n {
            let left = max as usize - got;
            if left == 0 {
                // The batch is full: this socket goes first next time.
                self.next = (self.next + i) % n;
                return got;
            }
            let socket = &mut self.sockets[(self.next + i) % n];
            got += socket.receive(left as u32, handle, outcome);
        }
        self.next = (self.next + 1) % n;
        got
    }

    /// Sends a frame written by `fill` from the first queue's socket.
    pub(crate) fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        self.sockets[0].send_with(fill)
    }

    /// The largest frame received whole (the same for every socket).
    pub(crate) fn max_frame(&self) -> usize {
        self.sockets[0].max_frame()
    }

    /// What the kernel dropped on any of the sockets since the last call.
    pub(crate) fn take_losses(&mut self) -> Losses {
        self.sockets
            .iter_mut()
            .map(XskSocket::take_losses)
            .fold(Losses::default(), |a, b| Losses {
                too_large: a.too_large + b.too_large,
                kernel_dropped: a.kernel_dropped + b.kernel_dropped,
                ring_full: a.ring_full + b.ring_full,
            })
    }

    /// Kicks pending transmissions and reclaims completed ones, on every
    /// socket.
    pub(crate) fn flush(&mut self) {
        self.sockets.iter_mut().for_each(XskSocket::flush);
    }

    /// The sockets' descriptors, to `poll`.
    pub(crate) fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.sockets.iter().map(XskSocket::raw_fd)
    }
}
