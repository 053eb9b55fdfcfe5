//! (b) The bare AF_XDP forwarder: the ceiling of the I/O path the agent
//! uses. It opens ports `in` and `out` with `trunkline-xdp` (AF_XDP, copy
//! mode, generic XDP, exactly as the agent does) and runs the agent's loop
//! shape (poll, receive a batch of 64 from each port, flush every port),
//! but instead of the pipeline it writes constant headers: no parsing, no
//! lookup, no validation, and one copy (received frame -> transmit frame)
//! where the agent makes two (through its staging buffer).
//!
//! It runs as a child process (`trunkline-bench forward`), so its CPU time
//! is its own.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use trunkline_xdp::{Action, BackendChoice, Port};

use crate::Error;
use crate::frame::{GATEWAY_MAC, OUT_VLAN, VMI2_MAC};
use crate::netns::Topology;

/// Frames taken from a port per batch (as the agent).
const BATCH: u32 = 64;
/// Poll timeout when idle, ms (as the agent).
const POLL_MS: i32 = 20;

/// What the report says about this mode.
pub fn notes() -> Vec<String> {
    vec![
        "(b) rewrites the same header fields as (a) (MACs, VLAN ID, TTL with an incremental checksum update) with constants: no parsing, no table lookup, no source check, one userspace copy per frame where (a) makes two (a staging buffer between ports). Same trunkline-xdp ports (AF_XDP copy mode, generic XDP) and the same poll/receive/flush loop as (a).".to_owned(),
    ]
}

/// Rewrites a generated frame in place into the forwarded one: MACs, VLAN
/// ID (priority bits kept), TTL - 1 with the IPv4 checksum updated
/// incrementally (RFC 1624). Frames too short are left alone.
pub fn rewrite(frame: &mut [u8]) {
    if frame.len() < 38 {
        return;
    }
    frame[0..6].copy_from_slice(&VMI2_MAC);
    frame[6..12].copy_from_slice(&GATEWAY_MAC);
    let tci = u16::from_be_bytes([frame[14], frame[15]]);
    frame[14..16].copy_from_slice(&((tci & 0xf000) | OUT_VLAN).to_be_bytes());
    let ttl = frame[26];
    frame[26] = ttl.wrapping_sub(1);
    // The TTL is the high byte of the 16-bit word at 26: -1 there is -0x0100.
    let checksum = u16::from_be_bytes([frame[28], frame[29]]);
    let sum = u32::from(checksum) + 0x0100;
    let sum = (sum & 0xffff) + (sum >> 16);
    frame[28..30].copy_from_slice(&(sum as u16).to_be_bytes());
}

/// The forwarder's loop, in the calling thread: enters `netns`, opens the
/// ports, forwards `ingress` -> `egress` until `stop`.
pub fn forward(netns: &Path, ingress: &str, egress: &str, stop: &AtomicBool) -> Result<(), Error> {
    trunkline_xdp::enter_network_namespace(netns)
        .map_err(Error::io(format!("entering {}", netns.display())))?;
    let open = |name: &str| {
        Port::open(name, BackendChoice::AfXdp).map_err(|e| Error::Mode {
            mode: "b",
            message: format!("opening {name}: {e}"),
        })
    };
    let mut input = open(ingress)?;
    let mut output = open(egress)?;
    let fds: Vec<_> = input.raw_fds().chain(output.raw_fds()).collect();
    while !stop.load(Ordering::Relaxed) {
        trunkline_xdp::wait_fds(&fds, POLL_MS).map_err(Error::io("poll"))?;
        input
            .receive(
                BATCH,
                &mut |buf, offset, len, _| {
                    let frame = &mut buf[offset..offset + len];
                    rewrite(frame);
                    let _ = output.send_copy(frame);
                    Action::Drop
                },
                &mut |_, _, _| {},
            )
            .map_err(Error::io("receive on in"))?;
        // Nothing comes back from the sink; receiving still kicks pending
        // transmissions, as in the agent's loop.
        output
            .receive(BATCH, &mut |_, _, _, _| Action::Drop, &mut |_, _, _| {})
            .map_err(Error::io("receive on out"))?;
        input.flush();
        output.flush();
    }
    Ok(())
}

/// The forwarder as a child process.
pub struct BareDevice {
    child: Child,
}

impl BareDevice {
    /// Starts `trunkline-bench forward` in mode (b)'s namespace, pinned to
    /// `core`, and waits until its ports are open.
    pub fn start(topology: &Topology, core: Option<usize>) -> Result<Self, Error> {
        let exe = std::env::current_exe().map_err(Error::io("locating trunkline-bench"))?;
        let mut command = Command::new(exe);
        command
            .arg("forward")
            .arg("--netns")
            .arg(topology.path(super::Mode::Bare.id()))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        if let Some(core) = core {
            command.arg("--core").arg(core.to_string());
        }
        let child = command
            .spawn()
            .map_err(Error::io("starting the forwarder"))?;
        let mut device = Self { child };
        // Ready when both ports carry an XDP program.
        let ns = topology.namespace(super::Mode::Bare.id());
        for _ in 0..100 {
            device.check()?;
            let links = crate::netns::run("ip", &["-n", &ns, "-details", "link", "show"])?;
            if links.matches("prog/xdp").count() >= 2 {
                return Ok(device);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(Error::Mode {
            mode: "b",
            message: "the forwarder did not open its ports within 10 s".to_owned(),
        })
    }

    /// The forwarder's process id.
    pub fn pid(&self) -> Option<u32> {
        Some(self.child.id())
    }

    /// Fails if the forwarder exited.
    pub fn check(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Mode {
                mode: "b",
                message: format!("the forwarder exited: {status}"),
            }),
            Err(e) => Err(Error::io("waiting for the forwarder")(e)),
        }
    }
}

impl Drop for BareDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{egress_frame, ingress_frame};

    #[test]
    fn the_constant_rewrite_gives_exactly_the_forwarded_frame() {
        for len in [64, 512] {
            let mut frame = ingress_frame(len);
            rewrite(&mut frame);
            assert_eq!(frame, egress_frame(len));
        }
    }
}
