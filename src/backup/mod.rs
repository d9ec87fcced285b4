//! Backup files: the MTF walker, the native header reader and the synthetic backup writer.

mod date;
mod mtf;
mod reader;
mod scin;
pub mod share;
mod source;
pub mod synth;

pub(crate) use source::read_full;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lsn::Lsn;

pub use date::MtfDate;
pub use reader::{
    check_whole, check_whole_hashed, read_file, read_headers, read_headers_any_version, ReadError,
    ReadErrorKind, KNOWN_MAJORS,
};

/// `BackupType` of `RESTORE HEADERONLY`, from the SCIN type letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    Full,
    Log,
    Differential,
    File,
    DifferentialFile,
    Partial,
    DifferentialPartial,
}

impl BackupType {
    /// The SCIN type letter (FORMAT.md, offset 0x57).
    pub fn from_letter(c: u8) -> Option<BackupType> {
        Some(match c {
            b'D' => BackupType::Full,
            b'L' => BackupType::Log,
            b'I' => BackupType::Differential,
            b'F' => BackupType::File,
            b'G' => BackupType::DifferentialFile,
            b'P' => BackupType::Partial,
            b'Q' => BackupType::DifferentialPartial,
            _ => return None,
        })
    }

    pub fn letter(self) -> u8 {
        match self {
            BackupType::Full => b'D',
            BackupType::Log => b'L',
            BackupType::Differential => b'I',
            BackupType::File => b'F',
            BackupType::DifferentialFile => b'G',
            BackupType::Partial => b'P',
            BackupType::DifferentialPartial => b'Q',
        }
    }

    /// The `BackupType` number of `RESTORE HEADERONLY`.
    pub fn code(self) -> u8 {
        match self {
            BackupType::Full => 1,
            BackupType::Log => 2,
            BackupType::File => 4,
            BackupType::Differential => 5,
            BackupType::DifferentialFile => 6,
            BackupType::Partial => 7,
            BackupType::DifferentialPartial => 8,
        }
    }

    pub fn is_differential(self) -> bool {
        matches!(
            self,
            BackupType::Differential
                | BackupType::DifferentialFile
                | BackupType::DifferentialPartial
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Log => "log",
            BackupType::Differential => "differential",
            BackupType::File => "file",
            BackupType::DifferentialFile => "differential_file",
            BackupType::Partial => "partial",
            BackupType::DifferentialPartial => "differential_partial",
        }
    }
}

impl fmt::Display for BackupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SoftwareVersionMajor.Minor.Build` of the server that wrote the backup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SoftwareVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
}

impl fmt::Display for SoftwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

impl Serialize for SoftwareVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SoftwareVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut it = s.split('.');
        let mut next = || it.next().and_then(|p| p.parse::<u64>().ok());
        match (next(), next(), next()) {
            (Some(a), Some(b), Some(c)) if a < 256 && b < 256 && c < 65536 => Ok(SoftwareVersion {
                major: a as u8,
                minor: b as u8,
                build: c as u16,
            }),
            _ => Err(serde::de::Error::custom(format!(
                "invalid software version {s:?}"
            ))),
        }
    }
}

/// One backup set as `RESTORE HEADERONLY` describes it: the fields FORMAT.md locates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    pub path: PathBuf,
    /// The data-set number within the file (several with `WITH NOINIT`), from 1.
    pub position: u16,
    pub database_name: String,
    pub server_name: String,
    pub backup_type: BackupType,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub differential_base_lsn: Option<Lsn>,
    pub differential_base_guid: Option<Uuid>,
    pub database_creation_date: Option<MtfDate>,
    pub backup_start_date: Option<MtfDate>,
    pub backup_finish_date: Option<MtfDate>,
    pub backup_size: u64,
    pub software_version: SoftwareVersion,
    pub database_version: u16,
    pub unicode_locale_id: u32,
    pub unicode_comparison_style: u32,
    /// The trailer (`MSLS`) was found: the set is whole. Without it the MSCI copy was read.
    pub complete: bool,
    pub backup_set_guid: Uuid,
    pub media_set_guid: Uuid,
    pub family_count: u16,
    pub family_sequence: u16,
    /// The GUID of the most recent full backup (SCIN 0xC8).
    pub last_full_guid: Uuid,
}

impl BackupHeader {
    /// An empty log backup (`FirstLSN == LastLSN`) carries no log records.
    pub fn is_empty_log(&self) -> bool {
        self.backup_type == BackupType::Log && self.first_lsn == self.last_lsn
    }
}
