//! The MTF container: descriptor-block (DBLK) and stream headers, their checksums, and the
//! little-endian field access both the reader and the synthetic writer use.
//!
//! Layouts are in FORMAT.md ("Container: Microsoft Tape Format"). Parsing never panics: every
//! accessor is bounds-checked and returns `None` past the end of its slice.

/// Length of the common DBLK header.
pub const DBLK_LEN: usize = 52;
/// Length of a stream header.
pub const STREAM_LEN: usize = 22;

pub type Tag = [u8; 4];

pub const TAPE: Tag = *b"TAPE";
pub const SFMB: Tag = *b"SFMB";
pub const SSET: Tag = *b"SSET";
pub const VOLB: Tag = *b"VOLB";
pub const MSCI: Tag = *b"MSCI";
pub const MSDA: Tag = *b"MSDA";
pub const MSTL: Tag = *b"MSTL";
pub const MSLS: Tag = *b"MSLS";
pub const ESET: Tag = *b"ESET";

pub const SPAD: Tag = *b"SPAD";
pub const APAD: Tag = *b"APAD";
pub const RAID: Tag = *b"RAID";
pub const MQCI: Tag = *b"MQCI";
pub const MQDA: Tag = *b"MQDA";
pub const MQTL: Tag = *b"MQTL";
pub const OTCP: Tag = *b"OTCP";
pub const TSMP: Tag = *b"TSMP";

/// OS id of Windows NT, the only one SQL Server writes.
pub const OS_WINDOWS_NT: u8 = 14;
/// String type UTF-16LE.
pub const STRING_UTF16: u8 = 2;
/// MQTL and MQDA data: two bytes, then whole 8 KiB pages.
pub const PAGE: u64 = 8192;

pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

pub fn array_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// XOR of the little-endian u16 words of `b` (MTF's header checksum).
pub fn xor16(b: &[u8]) -> u16 {
    b.chunks_exact(2)
        .fold(0u16, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]))
}

/// The common header of a descriptor block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dblk {
    pub kind: Tag,
    pub attributes: u32,
    /// Offset of the first stream header from the block start (an `SFMB`'s whole length).
    pub first_stream: u16,
    pub os_id: u8,
    pub os_version: u8,
    pub displayable_size: u64,
    /// Format logical address: the block's offset in format logical blocks from the set start.
    pub fla: u64,
    pub control_block_id: u32,
    pub os_data_size: u16,
    pub os_data_offset: u16,
    pub string_type: u8,
}

impl Dblk {
    /// Parses a header; `None` when its checksum does not match.
    pub fn parse(b: &[u8; DBLK_LEN]) -> Option<Dblk> {
        if xor16(&b[..50]) != u16::from_le_bytes([b[50], b[51]]) {
            return None;
        }
        Some(Dblk {
            kind: [b[0], b[1], b[2], b[3]],
            attributes: u32_at(b, 0x04)?,
            first_stream: u16_at(b, 0x08)?,
            os_id: b[0x0A],
            os_version: b[0x0B],
            displayable_size: u64_at(b, 0x0C)?,
            fla: u64_at(b, 0x14)?,
            control_block_id: u32_at(b, 0x24)?,
            os_data_size: u16_at(b, 0x2C)?,
            os_data_offset: u16_at(b, 0x2E)?,
            string_type: b[0x30],
        })
    }

    /// Writes the header, checksum included, into the first 52 bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        let b = &mut out[..DBLK_LEN];
        b.fill(0);
        b[0..4].copy_from_slice(&self.kind);
        put_u32(b, 0x04, self.attributes);
        put_u16(b, 0x08, self.first_stream);
        b[0x0A] = self.os_id;
        b[0x0B] = self.os_version;
        put_u64(b, 0x0C, self.displayable_size);
        put_u64(b, 0x14, self.fla);
        put_u32(b, 0x24, self.control_block_id);
        put_u16(b, 0x2C, self.os_data_size);
        put_u16(b, 0x2E, self.os_data_offset);
        b[0x30] = self.string_type;
        let ck = xor16(&b[..50]);
        put_u16(b, 50, ck);
    }
}

/// A stream header inside a descriptor block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    pub id: Tag,
    pub fs_attributes: u16,
    pub media_attributes: u16,
    pub length: u64,
    pub encryption: u16,
    pub compression: u16,
}

impl StreamHeader {
    /// Parses a stream header; `None` when its checksum does not match.
    pub fn parse(b: &[u8; STREAM_LEN]) -> Option<StreamHeader> {
        if xor16(&b[..20]) != u16::from_le_bytes([b[20], b[21]]) {
            return None;
        }
        Some(StreamHeader {
            id: [b[0], b[1], b[2], b[3]],
            fs_attributes: u16_at(b, 4)?,
            media_attributes: u16_at(b, 6)?,
            length: u64_at(b, 8)?,
            encryption: u16_at(b, 16)?,
            compression: u16_at(b, 18)?,
        })
    }

    pub fn new(id: Tag, length: u64) -> StreamHeader {
        StreamHeader {
            id,
            length,
            ..StreamHeader::default()
        }
    }

    pub fn encode(&self, out: &mut [u8]) {
        let b = &mut out[..STREAM_LEN];
        b[0..4].copy_from_slice(&self.id);
        put_u16(b, 4, self.fs_attributes);
        put_u16(b, 6, self.media_attributes);
        put_u64(b, 8, self.length);
        put_u16(b, 16, self.encryption);
        put_u16(b, 18, self.compression);
        let ck = xor16(&b[..20]);
        put_u16(b, 20, ck);
    }

    pub fn to_bytes(&self) -> [u8; STREAM_LEN] {
        let mut b = [0u8; STREAM_LEN];
        self.encode(&mut b);
        b
    }
}

/// Streams start on 4-byte boundaries.
pub fn align4(v: u64) -> Option<u64> {
    v.checked_add(3).map(|x| x & !3)
}

/// A tag for messages: printable ASCII or hex.
pub fn tag_str(t: &Tag) -> String {
    if t.iter().all(|c| c.is_ascii_graphic()) {
        t.iter().map(|&c| c as char).collect()
    } else {
        format!("0x{:02x}{:02x}{:02x}{:02x}", t[0], t[1], t[2], t[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dblk_round_trip_and_checksum() {
        let d = Dblk {
            kind: MSTL,
            first_stream: 0x254,
            os_id: OS_WINDOWS_NT,
            os_version: 1,
            fla: 72,
            control_block_id: 4,
            string_type: STRING_UTF16,
            ..Dblk::default()
        };
        let mut b = [0u8; DBLK_LEN];
        d.encode(&mut b);
        assert_eq!(Dblk::parse(&b), Some(d));
        for i in 0..DBLK_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert_eq!(Dblk::parse(&c), None, "flip at {i} undetected");
        }
    }

    #[test]
    fn stream_round_trip_and_checksum() {
        let s = StreamHeader {
            id: MQTL,
            length: 65538,
            media_attributes: 0x80,
            ..StreamHeader::default()
        };
        let b = s.to_bytes();
        assert_eq!(StreamHeader::parse(&b), Some(s));
        for i in 0..STREAM_LEN {
            let mut c = b;
            c[i] ^= 1;
            assert_eq!(StreamHeader::parse(&c), None, "flip at {i} undetected");
        }
    }

    #[test]
    fn accessors_are_bounds_checked() {
        let b = [1u8, 2, 3];
        assert_eq!(u16_at(&b, 1), Some(0x0302));
        assert_eq!(u16_at(&b, 2), None);
        assert_eq!(u32_at(&b, 0), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
        assert_eq!(array_at::<2>(&b, usize::MAX - 1), None);
        assert_eq!(align4(5), Some(8));
        assert_eq!(align4(u64::MAX), None);
        assert_eq!(tag_str(b"SPAD"), "SPAD");
        assert_eq!(tag_str(&[0, 1, 2, 3]), "0x00010203");
    }
}
