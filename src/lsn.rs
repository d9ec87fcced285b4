//! `Lsn`: a SQL Server log sequence number, its ordering and its decimal and hex forms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A log sequence number: VLF sequence, log block, slot.
///
/// SQL Server shows it as `numeric(25,0)` (`vlf * 10^15 + block * 10^5 + slot`), which exceeds
/// a `u64`, and in logs as hex `0000001a:000001b8:0001`. The derived ordering on the triple is the
/// ordering of the decimal form, because block < 10^10 and slot < 10^5 always hold for real LSNs.
/// LSNs are compared, never used in arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn {
    pub vlf: u32,
    pub block: u32,
    pub slot: u16,
}

/// Why a string is not an LSN.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid LSN {input:?}: {reason}")]
pub struct ParseLsnError {
    input: String,
    reason: &'static str,
}

const VLF_SCALE: u128 = 1_000_000_000_000_000;
const BLOCK_SCALE: u128 = 100_000;

impl Lsn {
    pub const ZERO: Lsn = Lsn {
        vlf: 0,
        block: 0,
        slot: 0,
    };
    pub const MAX: Lsn = Lsn {
        vlf: u32::MAX,
        block: u32::MAX,
        slot: u16::MAX,
    };

    pub const fn new(vlf: u32, block: u32, slot: u16) -> Lsn {
        Lsn { vlf, block, slot }
    }

    /// Reads the 10-byte on-disk form: u32 VLF, u32 block, u16 slot, little-endian.
    pub fn from_bytes(b: &[u8; 10]) -> Lsn {
        Lsn {
            vlf: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            block: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            slot: u16::from_le_bytes([b[8], b[9]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[0..4].copy_from_slice(&self.vlf.to_le_bytes());
        b[4..8].copy_from_slice(&self.block.to_le_bytes());
        b[8..10].copy_from_slice(&self.slot.to_le_bytes());
        b
    }

    /// The `numeric(25,0)` value SQL Server shows.
    pub fn to_decimal(self) -> u128 {
        self.vlf as u128 * VLF_SCALE + self.block as u128 * BLOCK_SCALE + self.slot as u128
    }

    /// The inverse of [`Lsn::to_decimal`]; `None` when a part does not fit its field.
    pub fn from_decimal(v: u128) -> Option<Lsn> {
        let vlf = v / VLF_SCALE;
        let block = (v % VLF_SCALE) / BLOCK_SCALE;
        let slot = v % BLOCK_SCALE;
        Some(Lsn {
            vlf: u32::try_from(vlf).ok()?,
            block: u32::try_from(block).ok()?,
            slot: u16::try_from(slot).ok()?,
        })
    }

    pub fn is_zero(self) -> bool {
        self == Lsn::ZERO
    }

    /// The hex form of SQL Server's error log and `fn_dblog`: `0000001a:000001b8:0001`.
    pub fn hex(self) -> String {
        format!("{:08x}:{:08x}:{:04x}", self.vlf, self.block, self.slot)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    /// Accepts the decimal form and the hex form (`vlf:block:slot`, hex digits, any widths).
    fn from_str(s: &str) -> Result<Lsn, ParseLsnError> {
        let err = |reason| ParseLsnError {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        if t.contains(':') {
            let parts: Vec<&str> = t.split(':').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(err("the hex form is vlf:block:slot"));
            }
            let hex = |p: &str| u64::from_str_radix(p.trim_start_matches("0x"), 16);
            let (vlf, block, slot) = match (hex(parts[0]), hex(parts[1]), hex(parts[2])) {
                (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                _ => return Err(err("not hexadecimal")),
            };
            return Ok(Lsn {
                vlf: u32::try_from(vlf).map_err(|_| err("VLF sequence out of range"))?,
                block: u32::try_from(block).map_err(|_| err("block out of range"))?,
                slot: u16::try_from(slot).map_err(|_| err("slot out of range"))?,
            });
        }
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected decimal digits or vlf:block:slot in hex"));
        }
        let v: u128 = t.parse().map_err(|_| err("too large"))?;
        Lsn::from_decimal(v).ok_or_else(|| err("out of range"))
    }
}

impl Serialize for Lsn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lsn, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_form_matches_sql_server() {
        let l = Lsn::new(39, 488, 71);
        assert_eq!(l.to_string(), "39000000048800071");
        assert_eq!("39000000048800071".parse::<Lsn>().unwrap(), l);
        assert_eq!(l.hex(), "00000027:000001e8:0047");
        assert_eq!("00000027:000001e8:0047".parse::<Lsn>().unwrap(), l);
    }

    #[test]
    fn exceeds_u64() {
        let l = Lsn::new(u32::MAX, 99_999, 9_999);
        let d = l.to_decimal();
        assert!(d > u64::MAX as u128);
        assert_eq!(Lsn::from_decimal(d), Some(l));
        assert_eq!(d.to_string().parse::<Lsn>().unwrap(), l);
    }

    #[test]
    fn ordering_is_numeric() {
        let cases = [
            (Lsn::new(1, 0, 0), Lsn::new(0, 99_999, 9)),
            (Lsn::new(1, 2, 0), Lsn::new(1, 1, 65_000)),
            (Lsn::new(1, 1, 2), Lsn::new(1, 1, 1)),
        ];
        for (big, small) in cases {
            assert!(big > small);
            assert!(big.to_decimal() > small.to_decimal());
        }
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "abc",
            "1:2",
            "1:2:3:4",
            "-5",
            "1:zz:3",
            "1:2:10000",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(s.parse::<Lsn>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn bytes_round_trip() {
        let l = Lsn::new(0x1234_5678, 0x9abc_def0, 0x4321);
        assert_eq!(Lsn::from_bytes(&l.to_bytes()), l);
    }

    #[test]
    fn serde_is_a_decimal_string() {
        let l = Lsn::new(21, 182, 1);
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"21000000018200001\"");
        let back: Lsn = serde_json::from_str("\"21000000018200001\"").unwrap();
        assert_eq!(back, l);
    }
}
