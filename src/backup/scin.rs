//! The `SCIN` chunk of an `MQCI` stream: SQL Server's backup-set metadata (FORMAT.md's table),
//! decoded for the reader and encoded for the synthetic writer.

use uuid::Uuid;

use super::mtf::{array_at, put_u16, put_u32, put_u64, u16_at, u32_at, u64_at};
use super::{BackupType, MtfDate, SoftwareVersion};
use crate::lsn::Lsn;

pub const SCIN: [u8; 4] = *b"SCIN";
/// The last fixed field ends at 0x120; strings follow the fixed part.
const FIXED_MIN: usize = 0x120;
/// Where SQL Server puts the first string (DatabaseName) in the samples.
const STRINGS_AT: usize = 0x190;

/// The metadata of one backup set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scin {
    pub flags: u32,
    pub version: SoftwareVersion,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub database_creation_date: Option<MtfDate>,
    pub backup_start_date: Option<MtfDate>,
    pub backup_finish_date: Option<MtfDate>,
    pub backup_type: BackupType,
    pub database_version: u16,
    pub backup_size: u64,
    pub database_name: String,
    pub server_name: String,
    pub unicode_locale_id: u32,
    pub unicode_comparison_style: u32,
    pub last_full_guid: Uuid,
    pub differential_base_lsn: Lsn,
    pub differential_base_guid: Uuid,
}

/// Finds the `SCIN` chunk among the `tag + u32 size` chunks of MQCI stream data.
/// `Ok(None)`: the chunks are well formed but none is SCIN (within `data`).
pub fn find(data: &[u8]) -> Result<Option<&[u8]>, String> {
    let mut p = 0usize;
    while p + 8 <= data.len() {
        let tag = array_at::<4>(data, p).ok_or("chunk tag")?;
        let size = u32_at(data, p + 4).ok_or("chunk size")? as usize;
        if size < 8 {
            return Err(format!("MQCI chunk at +{p} has size {size}"));
        }
        let end = p.checked_add(size).ok_or("chunk size overflows")?;
        if tag == SCIN {
            return match data.get(p..end) {
                Some(c) => Ok(Some(c)),
                None => Err(format!("SCIN chunk of {size} bytes runs past its stream")),
            };
        }
        p = end;
    }
    Ok(None)
}

fn lsn_at(c: &[u8], off: usize) -> Option<Lsn> {
    array_at::<10>(c, off).map(|b| Lsn::from_bytes(&b))
}

fn date_at(c: &[u8], off: usize) -> Option<Option<MtfDate>> {
    array_at::<5>(c, off).map(|b| MtfDate::from_bytes(&b))
}

fn guid_at(c: &[u8], off: usize) -> Option<Uuid> {
    array_at::<16>(c, off).map(Uuid::from_bytes_le)
}

/// A UTF-16LE string referenced by (u16 length in bytes, u16 offset from the chunk start).
fn string_at(c: &[u8], off: usize, what: &str) -> Result<String, String> {
    let len = u16_at(c, off).ok_or(what)? as usize;
    let at = u16_at(c, off + 2).ok_or(what)? as usize;
    if len % 2 != 0 {
        return Err(format!("{what} has an odd byte length {len}"));
    }
    let bytes = c
        .get(at..at + len)
        .ok_or_else(|| format!("{what} ({len} bytes at +{at}) runs past the SCIN chunk"))?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| format!("{what} is not valid UTF-16"))
}

impl Scin {
    /// Decodes a whole SCIN chunk (tag and size included).
    pub fn parse(c: &[u8]) -> Result<Scin, String> {
        if c.len() < FIXED_MIN {
            return Err(format!(
                "SCIN chunk of {} bytes is shorter than {FIXED_MIN}",
                c.len()
            ));
        }
        let short = || "SCIN field out of range".to_string();
        let letter = c[0x57];
        let backup_type = BackupType::from_letter(letter)
            .ok_or_else(|| format!("unknown backup type letter 0x{letter:02x}"))?;
        let scin = Scin {
            flags: u32_at(c, 0x08).ok_or_else(short)?,
            version: SoftwareVersion {
                build: u16_at(c, 0x18).ok_or_else(short)?,
                minor: c[0x1A],
                major: c[0x1B],
            },
            first_lsn: lsn_at(c, 0x20).ok_or_else(short)?,
            last_lsn: lsn_at(c, 0x2A).ok_or_else(short)?,
            checkpoint_lsn: lsn_at(c, 0x34).ok_or_else(short)?,
            database_backup_lsn: lsn_at(c, 0x3E).ok_or_else(short)?,
            database_creation_date: date_at(c, 0x48).ok_or_else(short)?,
            backup_start_date: date_at(c, 0x4D).ok_or_else(short)?,
            backup_finish_date: date_at(c, 0x52).ok_or_else(short)?,
            backup_type,
            database_version: u16_at(c, 0x5E).ok_or_else(short)?,
            backup_size: u64_at(c, 0x60).ok_or_else(short)?,
            database_name: string_at(c, 0x68, "DatabaseName")?,
            server_name: string_at(c, 0x6C, "ServerName")?,
            unicode_locale_id: u32_at(c, 0x74).ok_or_else(short)?,
            unicode_comparison_style: u32_at(c, 0x78).ok_or_else(short)?,
            last_full_guid: guid_at(c, 0xC8).ok_or_else(short)?,
            differential_base_lsn: lsn_at(c, 0x104).ok_or_else(short)?,
            differential_base_guid: guid_at(c, 0x110).ok_or_else(short)?,
        };
        if scin.first_lsn > scin.last_lsn {
            return Err(format!(
                "FirstLSN {} is after LastLSN {}",
                scin.first_lsn, scin.last_lsn
            ));
        }
        Ok(scin)
    }

    /// Encodes the chunk as SQL Server lays it out: fixed part, then DatabaseName and ServerName.
    pub fn encode(&self) -> Vec<u8> {
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let db = utf16(&self.database_name);
        let srv = utf16(&self.server_name);
        // Names are sysname (128 characters); cap so the u16 offsets hold.
        let db = &db[..db.len().min(512)];
        let srv = &srv[..srv.len().min(512)];
        let size = STRINGS_AT + db.len() + srv.len();
        let mut c = vec![0u8; size];
        c[0..4].copy_from_slice(&SCIN);
        put_u32(&mut c, 4, size as u32);
        put_u32(&mut c, 0x08, self.flags);
        // Constants seen in every sample backup (meaning unknown).
        put_u32(&mut c, 0x0C, 1);
        put_u32(&mut c, 0x10, 1);
        put_u16(&mut c, 0x18, self.version.build);
        c[0x1A] = self.version.minor;
        c[0x1B] = self.version.major;
        c[0x20..0x2A].copy_from_slice(&self.first_lsn.to_bytes());
        c[0x2A..0x34].copy_from_slice(&self.last_lsn.to_bytes());
        c[0x34..0x3E].copy_from_slice(&self.checkpoint_lsn.to_bytes());
        c[0x3E..0x48].copy_from_slice(&self.database_backup_lsn.to_bytes());
        let date = |d: Option<MtfDate>| d.map_or([0u8; 5], MtfDate::to_bytes);
        c[0x48..0x4D].copy_from_slice(&date(self.database_creation_date));
        c[0x4D..0x52].copy_from_slice(&date(self.backup_start_date));
        c[0x52..0x57].copy_from_slice(&date(self.backup_finish_date));
        c[0x57] = self.backup_type.letter();
        put_u16(&mut c, 0x5E, self.database_version);
        put_u64(&mut c, 0x60, self.backup_size);
        put_u16(&mut c, 0x68, db.len() as u16);
        put_u16(&mut c, 0x6A, STRINGS_AT as u16);
        put_u16(&mut c, 0x6C, srv.len() as u16);
        put_u16(&mut c, 0x6E, (STRINGS_AT + db.len()) as u16);
        put_u32(&mut c, 0x74, self.unicode_locale_id);
        put_u32(&mut c, 0x78, self.unicode_comparison_style);
        c[0xC8..0xD8].copy_from_slice(&self.last_full_guid.to_bytes_le());
        c[0x104..0x10E].copy_from_slice(&self.differential_base_lsn.to_bytes());
        c[0x110..0x120].copy_from_slice(&self.differential_base_guid.to_bytes_le());
        c[STRINGS_AT..STRINGS_AT + db.len()].copy_from_slice(db);
        c[STRINGS_AT + db.len()..].copy_from_slice(srv);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Scin {
        Scin {
            flags: 0x200,
            version: SoftwareVersion {
                major: 13,
                minor: 0,
                build: 5081,
            },
            first_lsn: Lsn::new(39, 474, 1),
            last_lsn: Lsn::new(39, 541, 1),
            checkpoint_lsn: Lsn::new(39, 488, 71),
            database_backup_lsn: Lsn::new(39, 488, 71),
            database_creation_date: Some(MtfDate {
                year: 2019,
                month: 5,
                day: 2,
                hour: 20,
                minute: 58,
                second: 2,
            }),
            backup_start_date: Some(MtfDate {
                year: 2019,
                month: 5,
                day: 2,
                hour: 21,
                minute: 5,
                second: 55,
            }),
            backup_finish_date: None,
            backup_type: BackupType::Log,
            database_version: 852,
            backup_size: 92160,
            database_name: "Ünïcødé 数据库".into(),
            server_name: r"WIN-X\SQL2016".into(),
            unicode_locale_id: 1033,
            unicode_comparison_style: 196_609,
            last_full_guid: Uuid::from_u128(0x1234),
            differential_base_lsn: Lsn::ZERO,
            differential_base_guid: Uuid::nil(),
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let c = s.encode();
        assert_eq!(Scin::parse(&c).unwrap(), s);
        let mut stream = b"XXXX\x0c\0\0\0abcd".to_vec();
        stream.extend_from_slice(&c);
        assert_eq!(find(&stream).unwrap(), Some(&c[..]));
    }

    #[test]
    fn rejects_bad_chunks() {
        let c = sample().encode();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (c[..0x100].to_vec(), "shorter"),
            (
                {
                    let mut d = c.clone();
                    d[0x57] = b'Z';
                    d
                },
                "type letter",
            ),
            (
                {
                    let mut d = c.clone();
                    put_u16(&mut d, 0x68, 3);
                    d
                },
                "odd byte length",
            ),
            (
                {
                    let mut d = c.clone();
                    put_u16(&mut d, 0x6A, 0xFFF0);
                    d
                },
                "runs past",
            ),
            (
                {
                    let mut d = c.clone();
                    d[0x20..0x2A].copy_from_slice(&Lsn::new(40, 0, 0).to_bytes());
                    d
                },
                "after LastLSN",
            ),
        ];
        for (bytes, want) in cases {
            let err = Scin::parse(&bytes).unwrap_err();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
        assert!(find(b"SCIN\x04\0\0\0").is_err());
        assert!(find(b"SCIN\xff\0\0\0abc").is_err());
        assert_eq!(find(b"SFGI\x08\0\0\0").unwrap(), None);
    }
}
