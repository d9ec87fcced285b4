//! `MtfDate`: the 5-byte MTF date (year 14 bits, month 4, day 5, hour 5, minute 6, second 6).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A date and time as stored in a backup (server local time, no zone), to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MtfDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl MtfDate {
    /// Decodes the packed big-endian bit fields; `None` for an all-zero (unset) date.
    pub fn from_bytes(b: &[u8; 5]) -> Option<MtfDate> {
        if b.iter().all(|&x| x == 0) {
            return None;
        }
        let v = u64::from_be_bytes([0, 0, 0, b[0], b[1], b[2], b[3], b[4]]);
        Some(MtfDate {
            year: ((v >> 26) & 0x3fff) as u16,
            month: ((v >> 22) & 0xf) as u8,
            day: ((v >> 17) & 0x1f) as u8,
            hour: ((v >> 12) & 0x1f) as u8,
            minute: ((v >> 6) & 0x3f) as u8,
            second: (v & 0x3f) as u8,
        })
    }

    pub fn to_bytes(self) -> [u8; 5] {
        let v = ((self.year as u64 & 0x3fff) << 26)
            | ((self.month as u64 & 0xf) << 22)
            | ((self.day as u64 & 0x1f) << 17)
            | ((self.hour as u64 & 0x1f) << 12)
            | ((self.minute as u64 & 0x3f) << 6)
            | (self.second as u64 & 0x3f);
        let b = v.to_be_bytes();
        [b[3], b[4], b[5], b[6], b[7]]
    }

    /// The date `secs` seconds after 1970-01-01T00:00:00 (civil calendar, no leap seconds).
    pub fn from_unix(secs: u64) -> MtfDate {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + if month <= 2 { 1 } else { 0 }) as u16;
        MtfDate {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// Seconds since 1970-01-01T00:00:00, reading the date as UTC.
    pub fn to_unix(self) -> i64 {
        let (y, m, d) = (self.year as i64, self.month as i64, self.day as i64);
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + self.hour as i64 * 3600 + self.minute as i64 * 60 + self.second as i64
    }

    /// `yyyyMMddHHmmss`, as log shipping names its files.
    pub fn compact(self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for MtfDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl Serialize for MtfDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MtfDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_iso(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid date {s:?}")))
    }
}

fn parse_iso(s: &str) -> Option<MtfDate> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u16>().ok();
    Some(MtfDate {
        year: n(0..4)?,
        month: n(5..7)? as u8,
        day: n(8..10)? as u8,
        hour: n(11..13)? as u8,
        minute: n(14..16)? as u8,
        second: n(17..19)? as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_sample_date() {
        // BackupStartDate of RestoreTimeClean_1.trn: 2019-05-02T21:05:55.
        let d = MtfDate {
            year: 2019,
            month: 5,
            day: 2,
            hour: 21,
            minute: 5,
            second: 55,
        };
        assert_eq!(MtfDate::from_bytes(&d.to_bytes()), Some(d));
        assert_eq!(d.to_string(), "2019-05-02T21:05:55");
        assert_eq!(d.compact(), "20190502210555");
        assert_eq!(
            serde_json::from_str::<MtfDate>("\"2019-05-02T21:05:55\"").unwrap(),
            d
        );
    }

    #[test]
    fn zero_is_unset() {
        assert_eq!(MtfDate::from_bytes(&[0; 5]), None);
    }

    #[test]
    fn unix_round_trip() {
        for secs in [0u64, 86_399, 951_782_400, 1_556_830_000, 4_102_444_800] {
            let d = MtfDate::from_unix(secs);
            assert_eq!(d.to_unix(), secs as i64, "{d}");
        }
        assert_eq!(
            MtfDate::from_unix(951_782_400).to_string(),
            "2000-02-29T00:00:00"
        );
    }
}
