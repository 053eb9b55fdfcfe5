//! The messages gateway HA nodes exchange over the fabric (UDP, port
//! `--ha-port`, default [`DEFAULT_PORT`]): heartbeats that elect a group's
//! active member, and claims that move multi-homed VMIs' paths.
//!
//! ```text
//!  0      4    5     6     7     8
//!  | TLHA | v1 | kind| flags| 0  | group len | group | sender len | sender |
//!  kind 1, hello:  priority u8 | state u8 | hello_millis u32 | seq u64 (the highest path
//!                  sequence the sender knows for the group's VMIs)
//!  kind 2, claim:  owner len | owner | count u16 | count x (label u32, seq u64)
//!                  flags bit 0: a correction (a reply to an older claim, on the owner's
//!                  behalf)
//! ```
//! Big endian; names are at most 255 bytes (object names are at most 253).
//! Parsing never panics and refuses anything short, long or unknown: the
//! bytes come from the network.

use std::fmt;

/// The default UDP port of gateway HA messages.
pub const DEFAULT_PORT: u16 = 6638;

const MAGIC: &[u8; 4] = b"TLHA";
const VERSION: u8 = 1;
const KIND_HELLO: u8 = 1;
const KIND_CLAIM: u8 = 2;
const FLAG_CORRECTION: u8 = 1;

/// The largest datagram sent: it stays within any fabric's MTU.
pub const MAX_DATAGRAM: usize = 1200;

/// What a node says of itself in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Announced {
    /// A member starting up, or fenced: not eligible.
    Down,
    /// A member that may become active.
    Standby,
    /// A member asking the active one to hand over (preemption).
    Claiming,
    /// The active member.
    Active,
    /// A node of the group's networks that is not a member: its heartbeats
    /// confirm the fabric to the members.
    Witness,
}

impl Announced {
    fn to_u8(self) -> u8 {
        match self {
            Announced::Down => 0,
            Announced::Standby => 1,
            Announced::Claiming => 2,
            Announced::Active => 3,
            Announced::Witness => 4,
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Announced::Down,
            1 => Announced::Standby,
            2 => Announced::Claiming,
            3 => Announced::Active,
            4 => Announced::Witness,
            _ => return None,
        })
    }
}

/// A heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The group.
    pub group: String,
    /// The sending node.
    pub sender: String,
    /// Its priority in the group (0 for a witness).
    pub priority: u8,
    /// What it is.
    pub state: Announced,
    /// Its heartbeat interval.
    pub hello_millis: u32,
    /// The highest path sequence it knows for the group's VMIs.
    pub seq: u64,
}

/// A claim: `owner` serves these VMIs (by routed label), at these sequence
/// numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The group.
    pub group: String,
    /// The sending node.
    pub sender: String,
    /// The node that serves the VMIs.
    pub owner: String,
    /// A reply to an older claim, on the owner's behalf.
    pub correction: bool,
    /// (label, sequence) pairs.
    pub entries: Vec<(u32, u64)>,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A heartbeat.
    Hello(Hello),
    /// A claim.
    Claim(Claim),
}

/// Why bytes are not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than what it announces.
    #[error("truncated")]
    Truncated,
    /// Not our magic, version or kind.
    #[error("not a trunkline HA message (magic, version or kind)")]
    Unrecognized,
    /// A field out of range (a state, a name that is not UTF-8).
    #[error("malformed field")]
    Malformed,
    /// Bytes after the message.
    #[error("trailing bytes")]
    Trailing,
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn name(&mut self) -> Result<String, WireError> {
        let len = usize::from(self.u8()?);
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed)
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    let bytes = name.as_bytes();
    let len = bytes.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&bytes[..len]);
}

fn header(out: &mut Vec<u8>, kind: u8, flags: u8, group: &str, sender: &str) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, kind, flags, 0]);
    put_name(out, group);
    put_name(out, sender);
}

impl Message {
    /// Parses a datagram.
    pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
        let mut r = Reader { bytes };
        if r.take(4)? != MAGIC || r.u8()? != VERSION {
            return Err(WireError::Unrecognized);
        }
        let kind = r.u8()?;
        let flags = r.u8()?;
        let _reserved = r.u8()?;
        let group = r.name()?;
        let sender = r.name()?;
        let message = match kind {
            KIND_HELLO => Message::Hello(Hello {
                group,
                sender,
                priority: r.u8()?,
                state: Announced::from_u8(r.u8()?).ok_or(WireError::Malformed)?,
                hello_millis: r.u32()?,
                seq: r.u64()?,
            }),
            KIND_CLAIM => {
                let owner = r.name()?;
                let count = usize::from(r.u16()?);
                let mut entries = Vec::with_capacity(count.min(MAX_DATAGRAM / 12));
                for _ in 0..count {
                    entries.push((r.u32()?, r.u64()?));
                }
                Message::Claim(Claim {
                    group,
                    sender,
                    owner,
                    correction: flags & FLAG_CORRECTION != 0,
                    entries,
                })
            }
            _ => return Err(WireError::Unrecognized),
        };
        if r.bytes.is_empty() {
            Ok(message)
        } else {
            Err(WireError::Trailing)
        }
    }

    /// The datagrams of this message: one for a hello, as many as the
    /// entries of a claim need to stay within [`MAX_DATAGRAM`] each.
    pub fn emit(&self) -> Vec<Vec<u8>> {
        match self {
            Message::Hello(h) => {
                let mut out = Vec::with_capacity(64);
                header(&mut out, KIND_HELLO, 0, &h.group, &h.sender);
                out.push(h.priority);
                out.push(h.state.to_u8());
                out.extend_from_slice(&h.hello_millis.to_be_bytes());
                out.extend_from_slice(&h.seq.to_be_bytes());
                vec![out]
            }
            Message::Claim(c) => {
                let flags = if c.correction { FLAG_CORRECTION } else { 0 };
                let mut prefix = Vec::with_capacity(600);
                header(&mut prefix, KIND_CLAIM, flags, &c.group, &c.sender);
                put_name(&mut prefix, &c.owner);
                let per = ((MAX_DATAGRAM - prefix.len() - 2) / 12).max(1);
                let empty: [(u32, u64); 0] = [];
                let chunks: Vec<&[(u32, u64)]> = if c.entries.is_empty() {
                    vec![&empty]
                } else {
                    c.entries.chunks(per).collect()
                };
                chunks
                    .into_iter()
                    .map(|chunk| {
                        let mut out = prefix.clone();
                        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                        for (label, seq) in chunk {
                            out.extend_from_slice(&label.to_be_bytes());
                            out.extend_from_slice(&seq.to_be_bytes());
                        }
                        out
                    })
                    .collect()
            }
        }
    }
}

impl fmt::Display for Announced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Announced::Down => "down",
            Announced::Standby => "standby",
            Announced::Claiming => "claiming",
            Announced::Active => "active",
            Announced::Witness => "witness",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A hello of group "g" from "gw1": every byte, by hand.
    const HELLO: [u8; 30] = [
        b'T', b'L', b'H', b'A', 1, 1, 0, 0, // magic, version, hello, flags, reserved
        1, b'g', // group
        3, b'g', b'w', b'1', // sender
        200, 3, // priority, active
        0, 0, 0, 100, // hello 100 ms
        0, 0, 0, 0, 0, 0, 0, 7, // seq 7
        // (no padding)
        0, 0,
    ];

    #[test]
    fn a_hello_is_these_bytes() {
        let hello = Message::Hello(Hello {
            group: "g".into(),
            sender: "gw1".into(),
            priority: 200,
            state: Announced::Active,
            hello_millis: 100,
            seq: 7,
        });
        let bytes = hello.emit();
        assert_eq!(bytes.len(), 1);
        assert_eq!(bytes[0], HELLO[..28]);
        assert_eq!(Message::parse(&bytes[0]), Ok(hello));
        assert_eq!(Message::parse(&HELLO), Err(WireError::Trailing));
        assert_eq!(Message::parse(&HELLO[..27]), Err(WireError::Truncated));
        let mut bad = HELLO[..28].to_vec();
        bad[15] = 9;
        assert_eq!(Message::parse(&bad), Err(WireError::Malformed));
        bad[0] = b'X';
        assert_eq!(Message::parse(&bad), Err(WireError::Unrecognized));
    }

    #[test]
    fn a_long_claim_is_split_into_datagrams_that_each_parse() {
        let entries: Vec<(u32, u64)> = (16..316).map(|l| (l, u64::from(l) * 3)).collect();
        let claim = Claim {
            group: "rack-1".into(),
            sender: "gw3".into(),
            owner: "gw2".into(),
            correction: true,
            entries: entries.clone(),
        };
        let datagrams = Message::Claim(claim.clone()).emit();
        assert!(datagrams.len() > 1);
        let mut back = Vec::new();
        for d in &datagrams {
            assert!(d.len() <= MAX_DATAGRAM);
            match Message::parse(d).unwrap() {
                Message::Claim(c) => {
                    assert_eq!((c.owner.as_str(), c.correction), ("gw2", true));
                    back.extend(c.entries);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, entries);
    }

    proptest! {
        /// Whatever arrives, parsing returns (never panics), and what is
        /// emitted parses back to itself.
        #[test]
        fn parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::parse(&bytes);
            let mut tagged = b"TLHA\x01".to_vec();
            tagged.extend_from_slice(&bytes);
            let _ = Message::parse(&tagged);
        }

        #[test]
        fn hellos_and_claims_round_trip(
            group in "[a-z0-9-]{1,60}",
            sender in "[a-z0-9-]{1,60}",
            priority in any::<u8>(),
            state in 0u8..5,
            hello in any::<u32>(),
            seq in any::<u64>(),
            entries in prop::collection::vec((any::<u32>(), any::<u64>()), 0..10),
        ) {
            let h = Message::Hello(Hello {
                group: group.clone(), sender: sender.clone(), priority,
                state: Announced::from_u8(state).unwrap(), hello_millis: hello, seq,
            });
            prop_assert_eq!(Message::parse(&h.emit()[0]), Ok(h));
            let c = Message::Claim(Claim { group, sender: sender.clone(), owner: sender, correction: false, entries });
            prop_assert_eq!(Message::parse(&c.emit()[0]), Ok(c));
        }
    }
}
