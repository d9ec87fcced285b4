//! The native header reader: `RESTORE HEADERONLY` without a server. Walks the MTF blocks,
//! validating every descriptor-block and stream-header checksum, and seeks over the data streams,
//! so only the head and the tail of a file are read.

use std::fmt;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::mtf::{self, array_at, u16_at, Dblk, StreamHeader, DBLK_LEN, STREAM_LEN};
use super::scin::{self, Scin};
use super::source::{Seeking, Sequential, Source, Window};
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
    /// A stream with a non-zero encryption (or compression) field, or a media password.
    Encrypted { offset: u64 },
    /// A descriptor block or stream header whose checksum does not match.
    Checksum { offset: u64, what: &'static str },
    /// Ends before the first backup set's metadata (or, for a whole-file check, before its end).
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

/// Software major versions whose layout was checked (SQL Server 2008 to 2022).
pub const KNOWN_MAJORS: std::ops::RangeInclusive<u8> = 10..=16;
/// Cap on the MQCI bytes read: SCIN comes first and is about 500 bytes.
const MQCI_CAP: usize = 64 * 1024;
/// Cap on streams in one block, so a hostile file cannot make the walk crawl.
const MAX_STREAMS: usize = 1 << 16;

/// Reads every backup set of the file at `path`.
pub fn read_file(path: &Path) -> Result<Vec<BackupHeader>, ReadError> {
    thread_local! {
        // One window buffer per thread: a scan reads thousands of files.
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let headers = BUF.with(|b| {
        let mut own = Vec::new();
        let mut guard = b.try_borrow_mut();
        let buf = guard.as_deref_mut().unwrap_or(&mut own);
        #[cfg(unix)]
        let a = &f;
        #[cfg(not(unix))]
        let a = Seeking::new(&f);
        let mut src = Window::new(a, buf).map_err(|e| io_error(path, e))?;
        walk(&mut src, path, false)
    })?;
    known_versions(headers, path)
}

/// Reads every backup set from `r`, naming `path` in the headers and errors.
pub fn read_headers<R: Read + Seek>(r: R, path: &Path) -> Result<Vec<BackupHeader>, ReadError> {
    known_versions(read_headers_any_version(r, path)?, path)
}

/// As [`read_headers`], without refusing software versions outside [`KNOWN_MAJORS`]: for the
/// simulated server, which plays a SQL Server that knows the version it wrote.
pub fn read_headers_any_version<R: Read + Seek>(
    r: R,
    path: &Path,
) -> Result<Vec<BackupHeader>, ReadError> {
    let mut buf = Vec::new();
    let mut src = Window::new(Seeking::new(r), &mut buf).map_err(|e| io_error(path, e))?;
    walk(&mut src, path, false)
}

/// Layouts were checked for [`KNOWN_MAJORS`] only; others go to the server's RESTORE HEADERONLY.
fn known_versions(headers: Vec<BackupHeader>, path: &Path) -> Result<Vec<BackupHeader>, ReadError> {
    match headers
        .iter()
        .find(|h| !KNOWN_MAJORS.contains(&h.software_version.major))
    {
        Some(h) => Err(ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::UnknownVersion {
                major: h.software_version.major,
            },
        }),
        None => Ok(headers),
    }
}

/// Reads the whole file sequentially, as RESTORE LOG does, checking every block and stream
/// header to the end and that the file is not truncated (every set has its trailer and the last
/// block ends at the end of the file). `progress(done, total)` follows the bytes read.
///
/// MTF checksums cover headers only: a flipped byte inside the log or data pages goes unseen
/// here, as it does for SQL Server until it replays the damaged record.
pub fn check_whole(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<BackupHeader>, ReadError> {
    let (f, len) = open_with_len(path)?;
    check_whole_from(f, len, path, progress)
}

/// [`check_whole`], and the BLAKE3 of every byte it read, from the same single pass: what a
/// restore read, without reading the file a second time.
pub fn check_whole_hashed(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Vec<BackupHeader>, blake3::Hash), ReadError> {
    let (f, len) = open_with_len(path)?;
    let mut hashing = Hashing {
        inner: f,
        hasher: blake3::Hasher::new(),
    };
    let headers = check_whole_from(&mut hashing, len, path, progress)?;
    Ok((headers, hashing.hasher.finalize()))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn open_with_len(path: &Path) -> Result<(std::fs::File, u64), ReadError> {
    let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let len = f.metadata().map_err(|e| io_error(path, e))?.len();
    Ok((f, len))
}

fn check_whole_from(
    f: impl std::io::Read,
    len: u64,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<BackupHeader>, ReadError> {
    let mut src = Sequential::new(f, len, progress);
    let headers = walk(&mut src, path, true)?;
    let extra = src.drain().map_err(|e| io_error(path, e))?;
    if extra != 0 {
        let detail = format!("{extra} bytes past the last block (the file grew while read)");
        return Err(ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::Malformed {
                offset: len,
                detail,
            },
        });
    }
    Ok(headers)
}

fn io_error(path: &Path, e: std::io::Error) -> ReadError {
    ReadError {
        path: path.to_path_buf(),
        kind: ReadErrorKind::Io(e.to_string()),
    }
}

/// The media: from the TAPE block's RAID stream.
struct Media {
    set_guid: Uuid,
    family_count: u16,
    family_sequence: u16,
}

/// One SSET .. ESET.
struct Set {
    offset: u64,
    position: u16,
    guid: Uuid,
    msci: Option<Scin>,
    msls: Option<Scin>,
    ended: bool,
}

/// A walk that stops early: a kind, or the end of what was written.
enum Stop {
    Error(ReadErrorKind),
    Truncated(u64),
}

impl From<ReadErrorKind> for Stop {
    fn from(k: ReadErrorKind) -> Stop {
        Stop::Error(k)
    }
}

fn malformed(offset: u64, detail: impl Into<String>) -> Stop {
    Stop::Error(ReadErrorKind::Malformed {
        offset,
        detail: detail.into(),
    })
}

fn io(e: std::io::Error) -> Stop {
    Stop::Error(ReadErrorKind::Io(e.to_string()))
}

/// Walks the blocks; `strict` asks for a whole, untruncated file.
fn walk<S: Source>(src: &mut S, path: &Path, strict: bool) -> Result<Vec<BackupHeader>, ReadError> {
    let err = |kind| ReadError {
        path: path.to_path_buf(),
        kind,
    };
    let len = src.len();
    if len == 0 {
        return Err(err(ReadErrorKind::Empty));
    }
    let head = src
        .get(0, 8)
        .map_err(|e| err(ReadErrorKind::Io(e.to_string())))?;
    if head.starts_with(b"MSSQLBAK") {
        return Err(err(ReadErrorKind::Compressed));
    }
    if !(head.starts_with(&mtf::TAPE) || mtf::TAPE.starts_with(head)) {
        return Err(err(ReadErrorKind::NotMtf));
    }
    let mut media = Media {
        set_guid: Uuid::nil(),
        family_count: 1,
        family_sequence: 1,
    };
    let mut sets = Vec::new();
    let truncated = match walk_blocks(src, strict, &mut media, &mut sets) {
        // A file ends with ESET and the end-of-media filemark; one that stops at a block
        // boundary before them is still being written, or was cut there.
        Ok(last) if last == mtf::SFMB && sets.last().is_some_and(|s| s.ended) => None,
        Ok(_) => Some(len),
        Err(Stop::Truncated(at)) => Some(at),
        Err(Stop::Error(kind)) => return Err(err(kind)),
    };
    if let Some(at) = truncated {
        if strict {
            return Err(err(ReadErrorKind::Truncated { offset: at }));
        }
        // A set cut before its metadata is still being written: it does not exist yet.
        if sets
            .last()
            .is_some_and(|s: &Set| s.msci.is_none() && s.msls.is_none())
        {
            sets.pop();
        }
        if sets.is_empty() {
            return Err(err(ReadErrorKind::Truncated { offset: at }));
        }
    }
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        if strict && !(set.msls.is_some() && set.ended) {
            let detail = "backup set without its MSLS and ESET trailer".to_string();
            return Err(err(ReadErrorKind::Malformed {
                offset: set.offset,
                detail,
            }));
        }
        out.push(header(path, set, &media).map_err(err)?);
    }
    Ok(out)
}

fn header(path: &Path, set: Set, media: &Media) -> Result<BackupHeader, ReadErrorKind> {
    let complete = set.msls.is_some();
    let scin = match (set.msls, set.msci) {
        (Some(last), Some(first)) => {
            let lsns = |s: &Scin| {
                (
                    s.first_lsn,
                    s.last_lsn,
                    s.checkpoint_lsn,
                    s.database_backup_lsn,
                )
            };
            if lsns(&last) != lsns(&first) || last.backup_type != first.backup_type {
                let detail = "the MSCI and MSLS copies of the metadata disagree".to_string();
                return Err(ReadErrorKind::Malformed {
                    offset: set.offset,
                    detail,
                });
            }
            last
        }
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => return Err(ReadErrorKind::NoMetadata { offset: set.offset }),
    };
    let diff = scin.backup_type.is_differential();
    Ok(BackupHeader {
        path: path.to_path_buf(),
        position: set.position,
        database_name: scin.database_name,
        server_name: scin.server_name,
        backup_type: scin.backup_type,
        first_lsn: scin.first_lsn,
        last_lsn: scin.last_lsn,
        checkpoint_lsn: scin.checkpoint_lsn,
        database_backup_lsn: scin.database_backup_lsn,
        differential_base_lsn: diff.then_some(scin.differential_base_lsn),
        differential_base_guid: diff.then_some(scin.differential_base_guid),
        database_creation_date: scin.database_creation_date,
        backup_start_date: scin.backup_start_date,
        backup_finish_date: scin.backup_finish_date,
        backup_size: scin.backup_size,
        software_version: scin.version,
        database_version: scin.database_version,
        unicode_locale_id: scin.unicode_locale_id,
        unicode_comparison_style: scin.unicode_comparison_style,
        complete,
        backup_set_guid: set.guid,
        media_set_guid: media.set_guid,
        family_count: media.family_count,
        family_sequence: media.family_sequence,
        last_full_guid: scin.last_full_guid,
    })
}

/// Walks to the end of the file; returns the kind of the last block.
fn walk_blocks<S: Source>(
    src: &mut S,
    strict: bool,
    media: &mut Media,
    sets: &mut Vec<Set>,
) -> Result<mtf::Tag, Stop> {
    let len = src.len();
    let mut pos = 0u64;
    let mut last = [0u8; 4];
    while pos < len {
        let hb = src.get(pos, DBLK_LEN).map_err(io)?;
        let Some(hb) = array_at::<DBLK_LEN>(hb, 0) else {
            return Err(Stop::Truncated(pos));
        };
        if hb.iter().all(|&b| b == 0) {
            // Space the writer has not filled yet.
            return Err(Stop::Truncated(pos));
        }
        let d = Dblk::parse(&hb).ok_or(ReadErrorKind::Checksum {
            offset: pos,
            what: "descriptor block",
        })?;
        if pos == 0 && d.kind != mtf::TAPE {
            return Err(ReadErrorKind::NotMtf.into());
        }
        let fs = d.first_stream as u64;
        if fs < DBLK_LEN as u64 {
            return Err(malformed(
                pos,
                format!("first stream offset {fs} inside the block header"),
            ));
        }
        last = d.kind;
        if d.kind == mtf::SFMB {
            pos += fs;
            continue;
        }
        match d.kind {
            mtf::TAPE => tape_body(src, pos, fs)?,
            mtf::SSET => sets.push(sset(src, pos, fs, &d)?),
            mtf::MSCI | mtf::MSLS | mtf::ESET if sets.is_empty() => {
                return Err(malformed(
                    pos,
                    format!("{} block before any SSET", mtf::tag_str(&d.kind)),
                ));
            }
            _ => {}
        }
        let mut scin = None;
        let mut s = pos + fs;
        let mut streams = 0;
        let next = loop {
            streams += 1;
            if streams > MAX_STREAMS {
                return Err(malformed(pos, "too many streams in one block"));
            }
            let sb = src.get(s, STREAM_LEN).map_err(io)?;
            let Some(sb) = array_at::<STREAM_LEN>(sb, 0) else {
                return Err(Stop::Truncated(s));
            };
            let sh = StreamHeader::parse(&sb).ok_or(ReadErrorKind::Checksum {
                offset: s,
                what: "stream header",
            })?;
            if sh.encryption != 0 || sh.compression != 0 {
                return Err(ReadErrorKind::Encrypted { offset: s }.into());
            }
            let data = s + STREAM_LEN as u64;
            let end = data
                .checked_add(sh.length)
                .ok_or_else(|| malformed(s, "stream length overflows"))?;
            if sh.id == mtf::SPAD {
                break end;
            }
            match (d.kind, sh.id) {
                (mtf::TAPE, mtf::RAID) => raid(src, data, sh.length, media)?,
                (mtf::MSCI | mtf::MSLS, mtf::MQCI) if scin.is_none() => {
                    scin = mqci(src, pos, data, sh.length)?
                }
                (mtf::MSTL, mtf::MQTL) | (mtf::MSDA, mtf::MQDA)
                    if strict && !whole_pages(sh.length) =>
                {
                    let what = format!(
                        "{} stream of {} bytes is not whole pages",
                        mtf::tag_str(&sh.id),
                        sh.length
                    );
                    return Err(malformed(s, what));
                }
                _ => {}
            }
            if end > len {
                return Err(Stop::Truncated(len));
            }
            s = mtf::align4(end).ok_or_else(|| malformed(s, "stream length overflows"))?;
        };
        if next > len {
            return Err(Stop::Truncated(len));
        }
        if let Some(set) = sets.last_mut() {
            match d.kind {
                mtf::MSCI | mtf::MSLS => {
                    let Some(scin) = scin else {
                        return Err(ReadErrorKind::NoMetadata { offset: pos }.into());
                    };
                    if d.kind == mtf::MSCI {
                        set.msci = Some(scin);
                    } else {
                        set.msls = Some(scin);
                    }
                }
                mtf::ESET => set.ended = true,
                _ => {}
            }
        }
        pos = next;
    }
    Ok(last)
}

/// MQTL and MQDA data: empty, or two bytes then whole 8 KiB pages.
fn whole_pages(length: u64) -> bool {
    length == 0 || (length >= 2 && (length - 2) % mtf::PAGE == 0)
}

/// The fixed part of a block, up to its first stream.
fn block_head<S: Source>(src: &mut S, pos: u64, fs: u64) -> Result<&[u8], Stop> {
    let b = src.get(pos, fs as usize).map_err(io)?;
    if (b.len() as u64) < fs {
        return Err(Stop::Truncated(pos + b.len() as u64));
    }
    Ok(b)
}

fn tape_body<S: Source>(src: &mut S, pos: u64, fs: u64) -> Result<(), Stop> {
    let b = block_head(src, pos, fs)?;
    // A media password (0x3E) locks the media: only the server, given the password, reads it.
    if u16_at(b, 0x3E).is_some_and(|a| a != 0) {
        return Err(ReadErrorKind::Encrypted { offset: pos + 0x3E }.into());
    }
    Ok(())
}

fn sset<S: Source>(src: &mut S, pos: u64, fs: u64, d: &Dblk) -> Result<Set, Stop> {
    let b = block_head(src, pos, fs)?;
    let position =
        u16_at(b, 0x3E).ok_or_else(|| malformed(pos, "SSET shorter than its data-set number"))?;
    let at = d.os_data_offset as usize;
    if d.os_data_size < 16 {
        return Err(malformed(
            pos,
            format!(
                "SSET OS-specific data of {} bytes has no BackupSetGUID",
                d.os_data_size
            ),
        ));
    }
    let guid = array_at::<16>(b, at)
        .map(Uuid::from_bytes_le)
        .ok_or_else(|| {
            malformed(
                pos,
                format!("SSET OS-specific data at +{at} outside the block head"),
            )
        })?;
    Ok(Set {
        offset: pos,
        position,
        guid,
        msci: None,
        msls: None,
        ended: false,
    })
}

fn raid<S: Source>(src: &mut S, data: u64, length: u64, media: &mut Media) -> Result<(), Stop> {
    let b = src.get(data, length.min(64) as usize).map_err(io)?;
    if (b.len() as u64) < length.min(64) {
        return Err(Stop::Truncated(data + b.len() as u64));
    }
    let (Some(guid), Some(count), Some(seq)) =
        (array_at::<16>(b, 0), u16_at(b, 0x14), u16_at(b, 0x18))
    else {
        return Err(malformed(
            data,
            format!("RAID stream of {length} bytes too short"),
        ));
    };
    if count == 0 || seq == 0 || seq > count {
        return Err(malformed(data, format!("media family {seq} of {count}")));
    }
    *media = Media {
        set_guid: Uuid::from_bytes_le(guid),
        family_count: count,
        family_sequence: seq,
    };
    Ok(())
}

fn mqci<S: Source>(src: &mut S, pos: u64, data: u64, length: u64) -> Result<Option<Scin>, Stop> {
    let want = length.min(MQCI_CAP as u64) as usize;
    let b = src.get(data, want).map_err(io)?;
    if b.len() < want {
        return Err(Stop::Truncated(data + b.len() as u64));
    }
    let chunk = scin::find(b).map_err(|d| malformed(data, d))?;
    let Some(chunk) = chunk else {
        return Err(ReadErrorKind::NoMetadata { offset: pos }.into());
    };
    Scin::parse(chunk).map(Some).map_err(|d| malformed(data, d))
}
