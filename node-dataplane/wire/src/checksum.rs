//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept as folded 16-bit one's complement values; a header's
//! checksum field holds the complement of the sum of everything it covers,
//! so a correct header sums (checksum field included) to `0xffff`.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Fold a 32-bit accumulator into a 16-bit one's complement sum.
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's complement sum of `data` read as big-endian 16-bit words, an
/// odd trailing byte padded with zero (not complemented).
#[inline]
pub fn data(data: &[u8]) -> u16 {
    // A u64 accumulator cannot overflow for any buffer a frame can hold.
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The one's complement sum of several partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u32::from(s)).sum())
}

/// The sum of the IPv4 pseudo-header (RFC 768, RFC 793).
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let mut acc = u32::from(data(&src.octets()));
    acc += u32::from(data(&dst.octets()));
    acc += u32::from(protocol);
    acc += u32::from(length);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let mut acc = u32::from(data(&src.octets()));
    acc += u32::from(data(&dst.octets()));
    acc += length >> 16;
    acc += length & 0xffff;
    acc += u32::from(next_header);
    fold(acc)
}

/// Update a checksum field after one 16-bit word it covers changed from
/// `old` to `new`, without summing the rest again: RFC 1624 equation 3,
/// `HC' = ~(~HC + ~m + m')`, which never produces the `-0` of equation 2.
#[inline]
pub const fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(!checksum as u32 + !old as u32 + new as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The example of RFC 1071 section 3: sum 0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
    }

    #[test]
    fn odd_length_is_padded() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn combine_folds_carries() {
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x8000, 0x8000]), 0x0001);
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        // Change every possible value of one word in a fixed header and
        // compare with a full recompute.
        let mut header = [
            0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 1, 1,
        ];
        let full = |h: &[u8; 20]| !data(h);
        let c = full(&header);
        header[10..12].copy_from_slice(&c.to_be_bytes());
        for new in (0u16..=0xffff).step_by(97) {
            let old = u16::from_be_bytes([header[8], header[9]]);
            let mut changed = header;
            changed[8..10].copy_from_slice(&new.to_be_bytes());
            changed[10..12].copy_from_slice(&[0, 0]);
            let expected = full(&changed);
            let updated = update(c, old, new);
            // Both +0 and -0 are valid encodings only when the sum is zero,
            // which a header with a non-zero version byte never has.
            assert_eq!(updated, expected, "new word {new:#06x}");
        }
    }
}
