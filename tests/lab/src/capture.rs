//! Packet capture in the lab with tshark, decoded by tshark: an independent
//! decoder of the bytes trunkline puts on a wire.
//!
//! ```text
//!  lab.capture("fab", "br0", "udp port 4789", Limit::packets(2).within(10 s))
//!     -> ip netns exec <p>-fab tshark -i br0 -f "udp port 4789" -c 2 -a duration:10 -w <state>/captures/N.pcap
//!        (returns once tshark logs "Capture started.": dumpcap has opened the
//!        interface, set the filter and opened the file, so traffic sent next is
//!        seen; its earlier "Capturing on" comes before any of that)
//!  capture.finish()   waits until tshark stops by itself (count or duration)
//!  pcap.fields(&["vxlan.vni", "ip.src"], &[])
//!     -> tshark -r N.pcap -T json -e vxlan.vni -e ip.src  -> one Packet per frame
//! ```
//!
//! # Decoding tunnels (checked with tshark 4.0.17, Debian 12)
//! - **VXLAN** on UDP 4789 is decoded without options: `vxlan.vni`,
//!   `vxlan.flags`, then the inner frame (`eth.*`, `ip.*` ... appear twice:
//!   [`Packet::first`] is the outer header, [`Packet::last`] the inner).
//! - **MPLS over UDP** (RFC 7510, port 6635) needs a decode-as:
//!   [`MPLS_OVER_UDP`] (`udp.port==6635,mpls`). Then `mpls.label`,
//!   `mpls.exp`, `mpls.bottom`, `mpls.ttl`.
//!   - A **routed** label's payload (an IP packet) needs nothing more: the
//!     MPLS dissector looks at the first nibble (4: IPv4, 6: IPv6).
//!   - A **bridged** label's payload (an Ethernet frame without control
//!     word) is misread by that guess (a destination MAC starting with `0`
//!     is taken for a pseudowire control word, `f` for unknown data): add
//!     [`bridged_label`] for each bridged label
//!     (`mpls.label==L,pwethnocw`, "Ethernet PW (no CW)"). A label range
//!     (`mpls.label==16-99,pwethnocw`) works too, but would misread routed
//!     labels in it. There is no preference for this in 4.0
//!     (`tshark -G defaultprefs | grep mpls`).
//!
//! A second decoder is at hand for a capture file ([`Pcap::path`]): scapy
//! (`python3-scapy`, Debian's `/usr/bin/python3`; `rdpcap`, and
//! `scapy.contrib.mpls.MPLS` bound to UDP 6635 with `bind_layers`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::traffic::poll_until;
use crate::{Lab, LabError};

/// The decode-as for MPLS over UDP on its IANA port.
pub const MPLS_OVER_UDP: &str = "udp.port==6635,mpls";

/// The decode-as that reads label `label`'s payload as an Ethernet frame
/// (a bridged label), to use with [`MPLS_OVER_UDP`].
pub fn bridged_label(label: u32) -> String {
    format!("mpls.label=={label},pwethnocw")
}

/// When a capture stops by itself: after `packets` frames (if given) or
/// after `duration`, whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    packets: Option<u32>,
    duration: Duration,
}

impl Limit {
    /// Stop after `n` frames (or after 10 s; see [`Limit::within`]).
    pub fn packets(n: u32) -> Self {
        Self {
            packets: Some(n),
            duration: Duration::from_secs(10),
        }
    }

    /// Stop after `duration`, however many frames came.
    pub fn duration(duration: Duration) -> Self {
        Self {
            packets: None,
            duration,
        }
    }

    /// Stop at the latest after `duration`.
    pub fn within(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }
}

/// A running tshark.
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    pcap: PathBuf,
    log: PathBuf,
    limit: Limit,
}

/// A capture file.
#[derive(Clone, Debug)]
pub struct Pcap {
    path: PathBuf,
}

/// One frame's decoded fields: field name -> values, outermost first
/// (a field of a protocol that appears twice, as in a tunnel, has two).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Packet {
    fields: BTreeMap<String, Vec<String>>,
}

impl Lab {
    /// Starts tshark in `name`'s namespace on `iface` with capture filter
    /// `filter` (pcap-filter syntax, e.g. `udp port 4789`); returns once it
    /// captures (tshark's "Capture started." message). The file lives in the lab's state dir (gone with the lab).
    pub fn capture(
        &self,
        name: &str,
        iface: &str,
        filter: &str,
        limit: Limit,
    ) -> Result<Capture, LabError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = self.state_dir().join("captures");
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            path: dir.clone(),
            source,
        })?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pcap = dir.join(format!("{name}-{iface}-{n}.pcap"));
        let log = dir.join(format!("{name}-{iface}-{n}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| LabError::Io {
            path: log.clone(),
            source,
        })?;
        let seconds = limit.duration.as_secs().max(1).to_string();
        let mut args = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.namespace(name),
            "tshark".to_owned(),
            "-i".to_owned(),
            iface.to_owned(),
            "-f".to_owned(),
            filter.to_owned(),
            "-a".to_owned(),
            format!("duration:{seconds}"),
            "-F".to_owned(),
            "pcap".to_owned(),
            "-w".to_owned(),
            pcap.display().to_string(),
        ];
        if let Some(packets) = limit.packets {
            args.extend(["-c".to_owned(), packets.to_string()]);
        }
        let child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|source| LabError::Spawn {
                program: "tshark".to_owned(),
                source,
            })?;
        let mut capture = Capture {
            child: Some(child),
            pcap,
            log,
            limit,
        };
        let started = poll_until(
            &format!("tshark capturing on {iface} in {}", self.namespace(name)),
            Duration::from_secs(15),
            || {
                let text = std::fs::read_to_string(&capture.log).unwrap_or_default();
                if text.contains("Capture started") {
                    return Ok(Ok(()));
                }
                match capture.child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => Ok(Err(format!("tshark exited ({status}): {text}"))),
                    _ => Err(text),
                }
            },
        )?;
        started.map_err(|reason| LabError::Decode {
            path: capture.pcap.clone(),
            reason,
        })?;
        Ok(capture)
    }
}

impl Capture {
    /// Waits until tshark stops by itself (its packet count or duration,
    /// plus 10 s of slack); the capture file.
    pub fn finish(mut self) -> Result<Pcap, LabError> {
        let mut child = self.child.take().expect("a running capture");
        let bound = self.limit.duration + Duration::from_secs(10);
        let status = poll_until("tshark to stop", bound, || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("still capturing".to_owned()),
            Err(e) => Err(e.to_string()),
        });
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        if !status.success() {
            return Err(LabError::Decode {
                path: self.pcap.clone(),
                reason: format!(
                    "tshark exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            });
        }
        Ok(Pcap {
            path: self.pcap.clone(),
        })
    }

    /// Stops tshark now (SIGTERM: it writes what it has); the capture file.
    pub fn stop(mut self) -> Result<Pcap, LabError> {
        if let Some(child) = self.child.as_ref() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let mut child = self.child.take().expect("a running capture");
        poll_until(
            "tshark to stop after SIGTERM",
            Duration::from_secs(10),
            || match child.try_wait() {
                Ok(Some(_)) => Ok(()),
                _ => Err("still running".to_owned()),
            },
        )?;
        Ok(Pcap {
            path: self.pcap.clone(),
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let stopped = poll_until("tshark to stop", Duration::from_secs(3), || {
                match child.try_wait() {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(String::new()),
                }
            });
            if stopped.is_err() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Pcap {
    /// A capture file written elsewhere (e.g. by scapy).
    pub fn from_path(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The file (pcap format).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes every frame, keeping `fields` (tshark field names such as
    /// `vxlan.vni`, `mpls.label`, `ip.src`, `vlan.id`), with `decode_as`
    /// rules (`-d`, e.g. [`MPLS_OVER_UDP`], [`bridged_label`]).
    pub fn fields(&self, fields: &[&str], decode_as: &[&str]) -> Result<Vec<Packet>, LabError> {
        self.fields_where("", fields, decode_as)
    }

    /// Like [`Pcap::fields`], for the frames matching tshark display filter
    /// `filter` (e.g. `icmp`, `mpls.label == 16`; empty: every frame).
    pub fn fields_where(
        &self,
        filter: &str,
        fields: &[&str],
        decode_as: &[&str],
    ) -> Result<Vec<Packet>, LabError> {
        let mut args = vec!["-r".to_owned(), self.path.display().to_string()];
        if !filter.is_empty() {
            args.extend(["-Y".to_owned(), filter.to_owned()]);
        }
        for d in decode_as {
            args.extend(["-d".to_owned(), (*d).to_owned()]);
        }
        args.extend(["-T".to_owned(), "json".to_owned()]);
        for f in fields {
            args.extend(["-e".to_owned(), (*f).to_owned()]);
        }
        let json = self.tshark(&args)?;
        parse_json(&json).map_err(|reason| LabError::Decode {
            path: self.path.clone(),
            reason,
        })
    }

    /// tshark's one-line summary of each frame (for failure messages).
    pub fn summary(&self, decode_as: &[&str]) -> Result<String, LabError> {
        let mut args = vec!["-r".to_owned(), self.path.display().to_string()];
        for d in decode_as {
            args.extend(["-d".to_owned(), (*d).to_owned()]);
        }
        self.tshark(&args)
    }

    fn tshark(&self, args: &[String]) -> Result<String, LabError> {
        let out = Command::new("tshark")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::Spawn {
                program: "tshark".to_owned(),
                source,
            })?;
        if !out.status.success() {
            return Err(LabError::Command {
                command: format!("tshark {}", args.join(" ")),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `tshark -T json -e ...`: `[{"_source": {"layers": {"f": ["v", ...]}}}]`.
fn parse_json(text: &str) -> Result<Vec<Packet>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let frames = value.as_array().ok_or("not a JSON array")?;
    frames
        .iter()
        .map(|frame| {
            let layers = frame["_source"]["layers"]
                .as_object()
                .ok_or("a frame without _source.layers")?;
            let fields = layers
                .iter()
                .map(|(name, values)| {
                    let values = match values {
                        serde_json::Value::Array(a) => a
                            .iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .collect(),
                        other => vec![
                            other
                                .as_str()
                                .map_or_else(|| other.to_string(), str::to_owned),
                        ],
                    };
                    (name.clone(), values)
                })
                .collect();
            Ok(Packet { fields })
        })
        .collect()
}

impl Packet {
    /// Every value of `field`, outermost first (empty when absent).
    pub fn all(&self, field: &str) -> &[String] {
        self.fields.get(field).map_or(&[], Vec::as_slice)
    }

    /// The outermost value of `field` (the tunnel header's, in a tunnel).
    pub fn first(&self, field: &str) -> Option<&str> {
        self.all(field).first().map(String::as_str)
    }

    /// The innermost value of `field` (the inner packet's, in a tunnel).
    pub fn last(&self, field: &str) -> Option<&str> {
        self.all(field).last().map(String::as_str)
    }

    /// Every field that was found.
    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tshark_json_reads_into_packets() {
        let text = r#"[
          {"_index": "packets", "_source": {"layers": {
            "vxlan.vni": ["5001"], "ip.src": ["10.0.0.1", "192.168.1.10"]}}},
          {"_source": {"layers": {}}}
        ]"#;
        let packets = parse_json(text).unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].first("vxlan.vni"), Some("5001"));
        assert_eq!(packets[0].first("ip.src"), Some("10.0.0.1"));
        assert_eq!(packets[0].last("ip.src"), Some("192.168.1.10"));
        assert!(packets[1].all("ip.src").is_empty());
        assert!(parse_json("{}").is_err());
    }

    #[test]
    fn decode_as_rules_read_as_tshark_takes_them() {
        assert_eq!(bridged_label(17), "mpls.label==17,pwethnocw");
        assert_eq!(MPLS_OVER_UDP, "udp.port==6635,mpls");
    }
}
