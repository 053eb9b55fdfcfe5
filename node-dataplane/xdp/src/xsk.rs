//! AF_XDP socket: a UMEM (one mmap'd area cut into fixed frames), its fill
//! and completion rings, and the socket's RX and TX rings.
//!
//! ```text
//!            free list (frames we own)
//!          +----------------------------+
//!          v                            |
//!   fill ring --> kernel writes frame --> rx ring --> pipeline
//!                                                       |  Drop: back to the free list
//!                                                       v  Transmit: same frame, in place
//!                                        tx ring --> kernel sends --> completion ring --+
//!                                                                                        |
//!          free list <-------------------------------------------------------------------+
//! ```
//!
//! A frame received is processed where it lies and, when it leaves by the
//! same port, sent from the same UMEM frame: no copy in userspace. The UMEM
//! headroom leaves room in front of every received frame, so pushing a VLAN
//! tag moves 12 bytes, not the payload.
//!
//! All the `unsafe` of the fast path is here: the shared rings are plain
//! memory written by the kernel and by us, ordered by acquire/release on
//! their producer and consumer indices, as `linux/if_xdp.h` specifies.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Action, Error, Fill, FrameHandler, Losses, Sender, TxError, TxOutcome};

/// Sizes of an AF_XDP socket.
#[derive(Clone, Copy, Debug)]
pub struct XskConfig {
    /// Frames in the UMEM.
    pub frames: u32,
    /// Size of a frame (a power of two: 2048 or 4096).
    pub frame_size: u32,
    /// Bytes kept free in front of every received frame.
    pub headroom: u32,
    /// Entries of each ring (a power of two).
    pub ring_size: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        Self {
            frames: 4096,
            frame_size: 2048,
            headroom: 64,
            ring_size: 2048,
        }
    }
}

impl XskConfig {
    /// The sizes of each socket of a port with `queues` receive queues:
    /// the default's memory (8 MiB of UMEM, pinned by the kernel) split
    /// over the queues, with rings of at least 256 entries (so at least
    /// 1 MiB a socket). Twice as many frames as fill-ring entries, as in
    /// the default: a full fill ring leaves as many frames for sending.
    pub fn for_queues(queues: u32) -> Self {
        let default = Self::default();
        // The largest power of two within the share, not below 256.
        let share = (default.ring_size / queues.max(1)).max(256);
        let ring_size = 1 << (u32::BITS - 1 - share.leading_zeros());
        Self {
            frames: ring_size * (default.frames / default.ring_size),
            ring_size,
            ..default
        }
    }
}

/// A mapping of the process's memory, unmapped on drop.
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    fn anonymous(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // aliased. The result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::checked(ptr, len)
    }

    fn ring(fd: BorrowedFd<'_>, len: usize, offset: libc::off_t) -> io::Result<Self> {
        // SAFETY: maps a ring of an AF_XDP socket at the page offset the
        // kernel defines for it; the kernel validates the length and offset.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::checked(ptr, len)
    }

    fn checked(ptr: *mut libc::c_void, len: usize) -> io::Result<Self> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the
        // mapping past the owner's lifetime (rings and UMEM slices borrow self).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is plain memory; access to it is serialised by the
// owner (&mut self) and, for the rings, by the kernel's index protocol.
unsafe impl Send for Mmap {}

/// One ring: producer and consumer indices, flags, and `size` entries of `T`.
struct Ring<T> {
    _map: Mmap,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    mask: u32,
    size: u32,
    /// Our copy of the index we advance (producer of a ring we fill,
    /// consumer of a ring we drain).
    cached_own: u32,
    /// Our last view of the index the kernel advances.
    cached_other: u32,
}

// SAFETY: see `Mmap`; the pointers all point into the owned mapping.
unsafe impl<T> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = Mmap::ring(fd, len, pgoff)?;
        let at = |o: u64| -> NonNull<u8> {
            // SAFETY: the kernel's offsets lie within the mapping of `len`
            // bytes it accepted.
            unsafe { map.ptr.add(o as usize) }
        };
        let (producer, consumer, flags, entries) = (
            at(off.producer).cast(),
            at(off.consumer).cast(),
            at(off.flags).cast(),
            at(off.desc).cast(),
        );
        Ok(Self {
            _map: map,
            producer,
            consumer,
            flags,
            entries,
            mask: size - 1,
            size,
            cached_own: 0,
            cached_other: 0,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a u32 index in the ring's mapping, shared with the kernel
        // and only accessed atomically.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as `producer`.
        unsafe { self.flags.as_ref() }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: free slots, refreshing our view of the consumer.
    fn free_slots(&mut self) -> u32 {
        let free = self.size - self.cached_own.wrapping_sub(self.cached_other);
        if free > 0 {
            return free;
        }
        self.cached_other = self.consumer().load(Ordering::Acquire);
        self.size - self.cached_own.wrapping_sub(self.cached_other)
    }

    /// Producer side: writes an entry at our next slot (not yet published).
    fn write(&mut self, value: T) {
        let slot = (self.cached_own & self.mask) as usize;
        // SAFETY: slot < size, so the write stays within the entries array;
        // the slot is free (checked by the caller through `free_slots`), so
        // the kernel does not read it until we publish the producer index.
        unsafe { self.entries.add(slot).write(value) };
        self.cached_own = self.cached_own.wrapping_add(1);
    }

    /// Producer side: publishes the entries written so far.
    fn publish(&self) {
        self.producer().store(self.cached_own, Ordering::Release);
    }

    /// Consumer side: entries available, refreshing our view of the producer.
    fn available(&mut self) -> u32 {
        self.cached_other = self.producer().load(Ordering::Acquire);
        self.cached_other.wrapping_sub(self.cached_own)
    }

    /// Consumer side: reads the entry `i` slots past our consumer index.
    fn read(&self, i: u32) -> T {
        let slot = (self.cached_own.wrapping_add(i) & self.mask) as usize;
        // SAFETY: slot < size; the entry was published by the kernel
        // (i < available()), and stays valid until we release it.
        unsafe { self.entries.add(slot).read() }
    }

    /// Consumer side: hands `n` entries back to the kernel.
    fn release(&mut self, n: u32) {
        self.cached_own = self.cached_own.wrapping_add(n);
        self.consumer().store(self.cached_own, Ordering::Release);
    }
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: passes a pointer to a live, correctly sized value; the kernel
    // copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads the `SOL_XDP` option `name` of `fd`.
///
/// # Safety
/// `T` must be the plain C struct the kernel writes for `name`, valid when
/// all zeroes.
unsafe fn getsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int) -> io::Result<T> {
    // SAFETY: the caller vouches that all zeroes is a valid `T`.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An AF_XDP socket bound to one queue of one interface, with its own UMEM.
pub struct XskSocket {
    fd: OwnedFd,
    umem: Mmap,
    config: XskConfig,
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    /// Frames (their UMEM offsets) owned by userspace and unused.
    free: Vec<u64>,
    /// TX descriptors published but not yet kicked.
    tx_pending: bool,
    /// The kernel's drop counters at the last `take_losses`.
    reported: Losses,
}

/// Where the UMEM lies, to cut frame slices out of it.
#[derive(Clone, Copy)]
struct UmemView {
    ptr: NonNull<u8>,
    len: usize,
    frame_size: usize,
}

impl UmemView {
    /// The frame starting at `base`.
    ///
    /// # Safety
    /// The frame must be owned by userspace (received and not yet handed
    /// back, or taken from the free list) and no other live reference to it
    /// may exist for the returned lifetime.
    unsafe fn frame_mut<'a>(&self, base: u64) -> &'a mut [u8] {
        assert!(base as usize + self.frame_size <= self.len);
        // SAFETY: [base, base + frame_size) lies within the UMEM (checked);
        // ownership and uniqueness are the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(base as usize), self.frame_size)
        }
    }
}

/// The transmit side of a socket, borrowed while a receive batch is being
/// handled: the frame handler sends flood copies through it.
struct TxSide<'s> {
    umem: UmemView,
    free: &'s mut Vec<u64>,
    tx: &'s mut Ring<libc::xdp_desc>,
    queued: u32,
}

impl TxSide<'_> {
    /// Queues the frame at `addr` (a UMEM offset) for sending.
    fn queue(&mut self, addr: u64, len: usize) -> Result<(), TxError> {
        if self.tx.free_slots() == 0 {
            return Err(TxError::RingFull);
        }
        self.tx.write(libc::xdp_desc {
            addr,
            len: len as u32,
            options: 0,
        });
        self.queued += 1;
        Ok(())
    }
}

impl Sender for TxSide<'_> {
    fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        if self.tx.free_slots() == 0 {
            return Err(TxError::RingFull);
        }
        let base = self.free.pop().ok_or(TxError::NoBuffer)?;
        // SAFETY: `base` came off the free list: userspace owns it and
        // nothing else refers to it until it is queued or pushed back.
        let frame = unsafe { self.umem.frame_mut(base) };
        let size = frame.len();
        match fill(frame) {
            Some((offset, len)) if offset.checked_add(len).is_some_and(|end| end <= size) => {
                self.queue(base + offset as u64, len)
                    .inspect_err(|_| self.free.push(base))?;
                Ok(true)
            }
            Some(_) => {
                self.free.push(base);
                Err(TxError::TooLarge)
            }
            None => {
                self.free.push(base);
                Ok(false)
            }
        }
    }
}

/// How a socket moves frames between the driver and its UMEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// Copy mode (`XDP_COPY`): what generic XDP needs, and any driver does.
    Copy,
    /// Zero-copy where the driver supports it (the driver receives into
    /// the UMEM and sends from it), else copy mode: the kernel decides at
    /// bind time ([`XskSocket::zero_copy`] says which). Only with the XDP
    /// program attached in driver (native) mode.
    PreferZeroCopy,
}

impl XskSocket {
    /// Creates the socket and its UMEM and binds it, in copy mode, to
    /// `queue` of the interface `ifindex`.
    pub fn bind(ifindex: u32, queue: u32, config: XskConfig) -> Result<Self, Error> {
        Self::bind_mode(ifindex, queue, config, CopyMode::Copy)
    }

    /// Creates the socket and its UMEM and binds it to `queue` of the
    /// interface `ifindex` in `mode`.
    pub fn bind_mode(
        ifindex: u32,
        queue: u32,
        config: XskConfig,
        mode: CopyMode,
    ) -> Result<Self, Error> {
        let step = |what: &'static str| move |source: io::Error| Error::Socket { what, source };
        assert!(config.frame_size.is_power_of_two() && config.ring_size.is_power_of_two());
        // SAFETY: creates a socket; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(step("socket(AF_XDP)")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem_len = config.frames as usize * config.frame_size as usize;
        let umem = Mmap::anonymous(umem_len).map_err(step("mmap UMEM"))?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: config.frame_size,
            headroom: config.headroom,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(fd.as_fd(), libc::XDP_UMEM_REG, &reg).map_err(step("XDP_UMEM_REG"))?;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(fd.as_fd(), opt, &config.ring_size).map_err(step("ring size"))?;
        }
        // SAFETY: xdp_mmap_offsets is a plain C struct of integers.
        let off: libc::xdp_mmap_offsets = unsafe { getsockopt(fd.as_fd(), libc::XDP_MMAP_OFFSETS) }
            .map_err(step("XDP_MMAP_OFFSETS"))?;
        let n = config.ring_size;
        let fill = Ring::map(
            fd.as_fd(),
            &off.fr,
            n,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
        )
        .map_err(step("mmap fill ring"))?;
        let completion = Ring::map(
            fd.as_fd(),
            &off.cr,
            n,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
        )
        .map_err(step("mmap completion ring"))?;
        let rx = Ring::map(fd.as_fd(), &off.rx, n, libc::XDP_PGOFF_RX_RING)
            .map_err(step("mmap rx ring"))?;
        let tx = Ring::map(fd.as_fd(), &off.tx, n, libc::XDP_PGOFF_TX_RING)
            .map_err(step("mmap tx ring"))?;
        let free = (0..config.frames as u64)
            .rev()
            .map(|i| i * config.frame_size as u64)
            .collect();
        let mut socket = Self {
            fd,
            umem,
            config,
            fill,
            completion,
            rx,
            tx,
            free,
            tx_pending: false,
            reported: Losses::default(),
        };
        socket.refill();
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            // Neither XDP_COPY nor XDP_ZEROCOPY: the kernel tries zero-copy
            // and falls back to copy mode.
            sxdp_flags: match mode {
                CopyMode::Copy => libc::XDP_COPY,
                CopyMode::PreferZeroCopy => 0,
            } | libc::XDP_USE_NEED_WAKEUP,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: a valid sockaddr_xdp of the size given.
        let rc = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(step("bind")(io::Error::last_os_error()));
        }
        Ok(socket)
    }

    /// Moves free frames to the fill ring, so the kernel can receive into them.
    fn refill(&mut self) {
        let n = self.fill.free_slots().min(self.free.len() as u32);
        for _ in 0..n {
            let frame = self.free.pop().expect("counted");
            self.fill.write(frame);
        }
        if n > 0 {
            self.fill.publish();
        }
        if self.fill.needs_wakeup() {
            // In driver mode the kernel may wait for a wakeup before using
            // new fill entries; a non-blocking receive call is that wakeup.
            // SAFETY: a zero-length, non-blocking receive on our own socket.
            unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
    }

    /// Takes back the frames the kernel has finished sending.
    fn reclaim(&mut self) {
        let n = self.completion.available();
        for i in 0..n {
            let addr = self.completion.read(i);
            self.free.push(addr & !(self.config.frame_size as u64 - 1));
        }
        if n > 0 {
            self.completion.release(n);
        }
    }

    fn umem_view(&self) -> UmemView {
        UmemView {
            ptr: self.umem.ptr,
            len: self.umem.len,
            frame_size: self.config.frame_size as usize,
        }
    }

    /// Asks the kernel to send what the TX ring holds (copy mode sends in
    /// the syscall).
    fn kick(&mut self) {
        if !self.tx_pending {
            return;
        }
        // SAFETY: a zero-length send on our own socket; it only wakes TX.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc >= 0
            || !matches!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS)
            )
        {
            self.tx_pending = false;
        }
    }

    /// Receives up to `max` frames and hands each to `handle`; see
    /// [`crate::Port::receive`].
    pub fn receive(
        &mut self,
        max: u32,
        handle: &mut FrameHandler<'_>,
        outcome: &mut TxOutcome<'_>,
    ) -> usize {
        self.reclaim();
        let n = self.rx.available().min(max);
        let umem = self.umem_view();
        let mask = !(self.config.frame_size as u64 - 1);
        let mut tx = TxSide {
            umem,
            free: &mut self.free,
            tx: &mut self.tx,
            queued: 0,
        };
        for i in 0..n {
            let desc = self.rx.read(i);
            let base = desc.addr & mask;
            let offset = (desc.addr - base) as usize;
            // SAFETY: the kernel handed this frame to us through the RX ring
            // and it is not on the free list; the slice lives until the
            // handler returns, before the frame is queued or recycled.
            let frame = unsafe { umem.frame_mut(base) };
            let size = frame.len();
            match handle(frame, offset, desc.len as usize, &mut tx) {
                Action::Transmit { offset, len, tag } => {
                    let queued = if offset.checked_add(len).is_some_and(|end| end <= size) {
                        tx.queue(base + offset as u64, len)
                    } else {
                        Err(TxError::TooLarge)
                    };
                    if queued.is_err() {
                        tx.free.push(base);
                    }
                    outcome(tag, len, queued);
                }
                Action::Drop => tx.free.push(base),
            }
        }
        let queued = tx.queued;
        if n > 0 {
            self.rx.release(n);
        }
        if queued > 0 {
            self.tx.publish();
            self.tx_pending = true;
        }
        self.kick();
        self.refill();
        n as usize
    }

    /// Hands `fill` a free UMEM frame and queues what it writes; see
    /// [`crate::Port::send_with`].
    pub fn send_with(&mut self, fill: &mut Fill<'_>) -> Result<bool, TxError> {
        self.reclaim();
        let mut tx = TxSide {
            umem: self.umem_view(),
            free: &mut self.free,
            tx: &mut self.tx,
            queued: 0,
        };
        let sent = tx.send_with(fill)?;
        if sent {
            self.tx.publish();
            self.tx_pending = true;
        }
        Ok(sent)
    }

    /// The largest frame received whole: the frame size less the headroom
    /// (ours and the kernel's `XDP_PACKET_HEADROOM` of 256 bytes).
    pub fn max_frame(&self) -> usize {
        (self.config.frame_size - self.config.headroom) as usize - 256
    }

    /// What the kernel dropped on this socket since the last call.
    pub fn take_losses(&mut self) -> Losses {
        let Ok(stats) = self.statistics() else {
            return Losses::default();
        };
        let now = Losses {
            too_large: 0,
            kernel_dropped: stats.rx_dropped,
            ring_full: stats.rx_ring_full,
        };
        let delta = Losses {
            too_large: 0,
            kernel_dropped: now
                .kernel_dropped
                .saturating_sub(self.reported.kernel_dropped),
            ring_full: now.ring_full.saturating_sub(self.reported.ring_full),
        };
        self.reported = now;
        delta
    }

    /// Kicks pending transmissions and reclaims completed ones.
    pub fn flush(&mut self) {
        self.kick();
        self.reclaim();
        self.refill();
    }

    /// Kernel counters of the socket.
    pub fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        // SAFETY: xdp_statistics is a plain C struct of integers.
        unsafe { getsockopt(self.fd.as_fd(), libc::XDP_STATISTICS) }
    }

    /// Whether the socket runs in zero-copy mode (the kernel's
    /// `XDP_OPTIONS`).
    pub fn zero_copy(&self) -> io::Result<bool> {
        // SAFETY: xdp_options is a plain C struct of integers.
        let options: libc::xdp_options = unsafe { getsockopt(self.fd.as_fd(), libc::XDP_OPTIONS)? };
        Ok(options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
    }

    /// The socket's descriptor (for `poll` and the XSKMAP).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::XskConfig;

    #[test]
    fn a_ports_sockets_share_the_default_memory_down_to_rings_of_256() {
        let umem = |c: XskConfig| c.frames as usize * c.frame_size as usize;
        let one = XskConfig::for_queues(1);
        assert_eq!((one.frames, one.ring_size), (4096, 2048), "the default");
        let four = XskConfig::for_queues(4);
        assert_eq!((four.frames, four.ring_size), (1024, 512));
        assert_eq!(4 * umem(four), umem(one), "the same memory per port");
        let three = XskConfig::for_queues(3);
        assert_eq!((three.frames, three.ring_size), (1024, 512), "rounded down");
        let many = XskConfig::for_queues(64);
        assert_eq!((many.frames, many.ring_size), (512, 256), "the floor");
        for q in 1..=64 {
            let c = XskConfig::for_queues(q);
            assert!(c.ring_size.is_power_of_two() && c.frames == 2 * c.ring_size);
        }
    }
}
