//! The synthetic backup writer: format-faithful MTF log, full and differential backups (the
//! block sequence, 1 KiB format logical blocks, checksums, SCIN fields and chunk order of the
//! real SQL Server 2016 samples), with a seeded pseudo-random payload. Shares of such files
//! (log-shipping names, chain cases) are in [`super::share`], re-exported here.

use std::io::{self, Write};
use std::path::Path;

use uuid::Uuid;

use super::mtf::{self, put_u16, put_u32, put_u64, Dblk, StreamHeader, PAGE, STREAM_LEN};
use super::scin::Scin;
use super::{BackupHeader, BackupType, MtfDate, SoftwareVersion};
use crate::lsn::Lsn;

pub use super::share::{write_share, FileRole, ShareError, ShareSpec, ShareSummary, WrittenFile};

/// The format logical block: every block but SFMB is a whole number of them.
const FLB: u64 = 1024;
/// An SFMB (filemark) block is half a logical block.
const SFMB_LEN: u64 = 512;
/// Empty MSTL blocks SQL Server 2016 writes after the log data.
const TRAILING_MSTL: u32 = 17;
/// BackupSize is the file length less this (TAPE, filemarks, ESETs and what SQL Server leaves out).
const SIZE_OVERHEAD: u64 = 0x2200;
/// Offset of the first MQTL/MQDA page from its block start: the APAD stream aligns it.
const PAGES_AT: u64 = 0x400;
const MSTL_HEAD: usize = 0x254;
const MSDA_HEAD: usize = 0x3C;
const MSCI_HEAD: usize = 0x38;
const ESET_HEAD: usize = 0x58;
const USER: &str = r"NT SERVICE\SQLSERVERAGENT";

/// A fast seeded generator (splitmix64) for payloads and GUIDs: deterministic for a seed.
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` 8 bytes at a time (its length is a multiple of 8 for pages).
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    /// A random (version 4) GUID.
    pub fn guid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }
}

/// One synthetic backup set: everything `RESTORE HEADERONLY` shows, and the payload size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthBackup {
    pub database_name: String,
    pub server_name: String,
    pub backup_type: BackupType,
    pub position: u16,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    /// Written for differential types only (zero otherwise, as SQL Server does).
    pub differential_base_lsn: Lsn,
    pub differential_base_guid: Uuid,
    pub database_creation_date: MtfDate,
    pub backup_start_date: MtfDate,
    pub backup_finish_date: MtfDate,
    pub software_version: SoftwareVersion,
    pub database_version: u16,
    pub unicode_locale_id: u32,
    pub unicode_comparison_style: u32,
    pub backup_set_guid: Uuid,
    pub media_set_guid: Uuid,
    pub last_full_guid: Uuid,
    pub family_count: u16,
    pub family_sequence: u16,
    /// Log records (MQTL), rounded up to whole 8 KiB pages; 0 for an empty log.
    pub log_bytes: u64,
    /// Data pages (MQDA) of a full or differential backup, rounded up to 8 KiB pages.
    pub data_bytes: u64,
    /// Seed of the payload bytes.
    pub seed: u64,
    /// False: the file stops after the data, with no MSLS and ESET trailer (still being written).
    pub complete: bool,
}

impl SynthBackup {
    /// A log backup of `database` with SQL Server 2016's versions and fresh GUIDs from `seed`.
    pub fn log(
        database: &str,
        first_lsn: Lsn,
        last_lsn: Lsn,
        start: MtfDate,
        seed: u64,
    ) -> SynthBackup {
        let mut rng = Prng::new(seed);
        SynthBackup {
            database_name: database.to_string(),
            server_name: "SQL01".to_string(),
            backup_type: BackupType::Log,
            position: 1,
            first_lsn,
            last_lsn,
            checkpoint_lsn: first_lsn,
            database_backup_lsn: Lsn::ZERO,
            differential_base_lsn: Lsn::ZERO,
            differential_base_guid: Uuid::nil(),
            database_creation_date: MtfDate::from_unix(
                (start.to_unix() - 30 * 86_400).max(0) as u64
            ),
            backup_start_date: start,
            backup_finish_date: MtfDate::from_unix(start.to_unix().max(0) as u64 + 1),
            software_version: SoftwareVersion {
                major: 13,
                minor: 0,
                build: 5081,
            },
            database_version: 852,
            unicode_locale_id: 1033,
            unicode_comparison_style: 196_609,
            backup_set_guid: rng.guid(),
            media_set_guid: rng.guid(),
            last_full_guid: Uuid::nil(),
            family_count: 1,
            family_sequence: 1,
            log_bytes: if first_lsn == last_lsn { 0 } else { 64 * 1024 },
            data_bytes: 0,
            seed,
            complete: true,
        }
    }

    fn log_pages(&self) -> u64 {
        self.log_bytes.div_ceil(PAGE)
    }

    fn data_pages(&self) -> u64 {
        if self.backup_type == BackupType::Log {
            0
        } else {
            self.data_bytes.div_ceil(PAGE).max(1)
        }
    }

    /// Bytes from the SSET to the end of the set's last filemark.
    fn span(&self) -> u64 {
        let mqci = self.mqci(false).len() as u64; // the same length in MSLS
        let meta = round_up(
            mtf::align4(MSCI_HEAD as u64 + STREAM_LEN as u64 + mqci).unwrap_or(0)
                + STREAM_LEN as u64,
            FLB,
        );
        let pages_block = |pages: u64, extra: u64| {
            round_up(PAGES_AT + pages * PAGE + extra + STREAM_LEN as u64, FLB)
        };
        let mut n = 2 * FLB + meta; // SSET, VOLB, MSCI
        if self.data_pages() > 0 {
            n += pages_block(self.data_pages(), STREAM_LEN as u64); // with the closing MQDA
        }
        if self.log_pages() > 0 {
            n += pages_block(self.log_pages(), 0);
        } else {
            n += FLB;
        }
        if self.complete {
            n += TRAILING_MSTL as u64 * FLB + meta + SFMB_LEN + 3 * FLB + SFMB_LEN;
        }
        n
    }

    /// The length of the file [`SynthBackup::write_to`] writes.
    pub fn file_len(&self) -> u64 {
        FLB + SFMB_LEN + self.span()
    }

    /// BackupSize as SQL Server reports it: final in MSLS, an estimate in MSCI.
    fn backup_size(&self, last: bool) -> u64 {
        // The MSCI copy holds an estimate; `span` sizes the blocks from it (same length), so
        // the final size does not depend on itself.
        if last {
            self.file_len() - SIZE_OVERHEAD
        } else {
            (self.log_pages() + self.data_pages()) * PAGE + 10 * FLB
        }
    }

    fn scin(&self, last: bool) -> Scin {
        let backup_size = self.backup_size(last);
        let diff = self.backup_type.is_differential();
        Scin {
            flags: if diff { 0xA00 } else { 0x200 },
            version: self.software_version,
            first_lsn: self.first_lsn,
            last_lsn: self.last_lsn,
            checkpoint_lsn: self.checkpoint_lsn,
            database_backup_lsn: self.database_backup_lsn,
            database_creation_date: Some(self.database_creation_date),
            backup_start_date: Some(self.backup_start_date),
            backup_finish_date: last.then_some(self.backup_finish_date),
            backup_type: self.backup_type,
            database_version: self.database_version,
            backup_size,
            database_name: self.database_name.clone(),
            server_name: self.server_name.clone(),
            unicode_locale_id: self.unicode_locale_id,
            unicode_comparison_style: self.unicode_comparison_style,
            last_full_guid: self.last_full_guid,
            differential_base_lsn: if diff {
                self.differential_base_lsn
            } else {
                Lsn::ZERO
            },
            differential_base_guid: if diff {
                self.differential_base_guid
            } else {
                Uuid::nil()
            },
        }
    }

    /// The MQCI stream: SCIN, SFGI (the filegroup), one SFIN per database file.
    fn mqci(&self, last: bool) -> Vec<u8> {
        let mut out = self.scin(last).encode();
        out.extend(chunk(
            b"SFGI",
            0xE0,
            0x10,
            &["PRIMARY"],
            &[(0x08, 0x10), (0x0C, 1)],
        ));
        let dir = format!(
            r"C:\Program Files\Microsoft SQL Server\MSSQL{}.MSSQLSERVER\MSSQL\DATA",
            self.software_version.major
        );
        let db = &self.database_name;
        let files = [
            (db.clone(), format!(r"{dir}\{db}.mdf"), 4, 1),
            (format!("{db}_log"), format!(r"{dir}\{db}_log.ldf"), 0x0C, 2),
        ];
        for (logical, physical, kind, id) in &files {
            let fields = [
                (0x08, *kind),
                (0x10, 0x2000),
                (0x14, *id),
                (0x1C, *id),
                (0x20, 0x200),
            ];
            out.extend(chunk(b"SFIN", 0x404, 0x30, &[logical, physical], &fields));
        }
        out
    }

    /// What the native reader returns for this set in a file at `path`.
    pub fn header(&self, path: &Path) -> BackupHeader {
        let s = self.scin(self.complete);
        let diff = self.backup_type.is_differential();
        BackupHeader {
            path: path.to_path_buf(),
            position: self.position,
            database_name: s.database_name,
            server_name: s.server_name,
            backup_type: s.backup_type,
            first_lsn: s.first_lsn,
            last_lsn: s.last_lsn,
            checkpoint_lsn: s.checkpoint_lsn,
            database_backup_lsn: s.database_backup_lsn,
            differential_base_lsn: diff.then_some(s.differential_base_lsn),
            differential_base_guid: diff.then_some(s.differential_base_guid),
            database_creation_date: s.database_creation_date,
            backup_start_date: s.backup_start_date,
            backup_finish_date: s.backup_finish_date,
            backup_size: s.backup_size,
            software_version: s.version,
            database_version: s.database_version,
            unicode_locale_id: s.unicode_locale_id,
            unicode_comparison_style: s.unicode_comparison_style,
            complete: self.complete,
            backup_set_guid: self.backup_set_guid,
            media_set_guid: self.media_set_guid,
            family_count: self.family_count,
            family_sequence: self.family_sequence,
            last_full_guid: self.last_full_guid,
        }
    }

    /// Writes the backup as a file of its own; returns the bytes written.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<u64> {
        write_sets(std::slice::from_ref(self), w)
    }
}

/// A chunk of the MQCI stream: `tag + u32 size`, a fixed part, then UTF-16LE names referenced
/// as (u16 length, u16 offset) pairs from `refs_at`, as SQL Server lays out SFGI and SFIN.
fn chunk(
    tag: &[u8; 4],
    fixed: usize,
    refs_at: usize,
    names: &[&str],
    fields: &[(usize, u32)],
) -> Vec<u8> {
    let mut c = vec![0u8; fixed];
    c[0..4].copy_from_slice(tag);
    for &(at, v) in fields {
        put_u32(&mut c, at, v);
    }
    for (i, n) in names.iter().enumerate() {
        let at = c.len();
        c.extend(n.encode_utf16().take(260).flat_map(u16::to_le_bytes));
        let len = (c.len() - at) as u16;
        put_u16(&mut c, refs_at + 4 * i, len);
        put_u16(&mut c, refs_at + 2 + 4 * i, at as u16);
    }
    let size = c.len() as u32;
    put_u32(&mut c, 4, size);
    c
}

fn round_up(v: u64, unit: u64) -> u64 {
    v.div_ceil(unit) * unit
}

/// Several backup sets in one file, as `BACKUP ... WITH NOINIT` appends them; the TAPE block
/// (media GUID, family) comes from the first. Each set keeps its own `position`.
pub fn write_sets<W: Write>(sets: &[SynthBackup], w: &mut W) -> io::Result<u64> {
    let Some(first) = sets.first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no backup set to write",
        ));
    };
    let mut e = Emitter {
        w,
        pos: 0,
        filemarks: Vec::new(),
        buf: Vec::new(),
    };
    e.tape(first)?;
    e.sfmb()?;
    for s in sets {
        e.set(s)?;
        if !s.complete {
            break;
        }
    }
    Ok(e.pos)
}

/// The body of a stream.
enum Body<'a> {
    Bytes(&'a [u8]),
    Zeros(u64),
    /// Two zero bytes, then `n` pseudo-random 8 KiB pages.
    Pages(u64, u64),
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Zeros(n) => *n,
            Body::Pages(n, _) => 2 + n * PAGE,
        }
    }
}

struct Emitter<'w, W> {
    w: &'w mut W,
    pos: u64,
    /// Offsets of the filemarks written so far (each SFMB lists the earlier ones).
    filemarks: Vec<u64>,
    buf: Vec<u8>,
}

const ZEROS: [u8; 4096] = [0; 4096];

impl<W: Write> Emitter<'_, W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn zeros(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.put(&ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    fn pages(&mut self, n: u64, seed: u64) -> io::Result<()> {
        self.put(&[0, 0])?;
        let mut rng = Prng::new(seed);
        let per = (1 << 20) / PAGE;
        self.buf.resize((per * PAGE) as usize, 0);
        let mut left = n;
        while left > 0 {
            let k = left.min(per);
            let mut buf = std::mem::take(&mut self.buf);
            rng.fill(&mut buf[..(k * PAGE) as usize]);
            let r = self.put(&buf[..(k * PAGE) as usize]);
            self.buf = buf;
            r?;
            left -= k;
        }
        Ok(())
    }

    /// A descriptor block: `head` (DBLK header space included), the streams, then SPAD up to
    /// the next logical block.
    fn block(
        &mut self,
        mut d: Dblk,
        mut head: Vec<u8>,
        streams: &[(StreamHeader, Body)],
    ) -> io::Result<()> {
        let start = self.pos;
        d.first_stream = head.len() as u16;
        d.os_id = mtf::OS_WINDOWS_NT;
        d.os_version = 1;
        d.string_type = mtf::STRING_UTF16;
        d.encode(&mut head);
        self.put(&head)?;
        for (h, body) in streams {
            let pad = mtf::align4(self.pos).unwrap_or(self.pos) - self.pos;
            self.zeros(pad)?;
            let mut h = h.clone();
            h.length = body.len();
            self.put(&h.to_bytes())?;
            match body {
                Body::Bytes(b) => self.put(b)?,
                Body::Zeros(n) => self.zeros(*n)?,
                Body::Pages(n, seed) => self.pages(*n, *seed)?,
            }
        }
        let pad = mtf::align4(self.pos).unwrap_or(self.pos) - self.pos;
        self.zeros(pad)?;
        let used = self.pos + STREAM_LEN as u64 - start;
        let spad = round_up(used, FLB) - used;
        self.put(&StreamHeader::new(mtf::SPAD, spad).to_bytes())?;
        self.zeros(spad)
    }

    fn tape(&mut self, s: &SynthBackup) -> io::Result<()> {
        let mut head = vec![0u8; 0x8C];
        let mut rng = Prng::new(s.seed ^ 0x7A9E);
        put_u32(&mut head, 0x34, rng.next_u64() as u32); // media family id
        put_u32(&mut head, 0x38, 5);
        put_u16(&mut head, 0x3C, 1); // media sequence
        put_u16(&mut head, 0x40, 1);
        put_u16(&mut head, 0x42, 3);
        let name: Vec<u8> = "Microsoft SQL Server"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        put_u16(&mut head, 0x50, name.len() as u16 + 4);
        put_u16(&mut head, 0x52, 0x5E);
        put_u16(&mut head, 0x54, FLB as u16);
        head[0x58..0x5D].copy_from_slice(&s.backup_start_date.to_bytes());
        head[0x5E..0x5E + name.len()].copy_from_slice(&name);
        let mut raid = [0u8; 32];
        raid[..16].copy_from_slice(&s.media_set_guid.to_bytes_le());
        put_u16(&mut raid, 0x14, s.family_count);
        put_u16(&mut raid, 0x16, 1);
        put_u16(&mut raid, 0x18, s.family_sequence);
        put_u16(&mut raid, 0x1E, 1);
        let d = Dblk {
            kind: mtf::TAPE,
            attributes: 0x30000,
            ..Dblk::default()
        };
        self.block(
            d,
            head,
            &[(StreamHeader::new(mtf::RAID, 0), Body::Bytes(&raid))],
        )
    }

    /// A filemark: its number and the offsets of the earlier ones, newest first.
    fn sfmb(&mut self) -> io::Result<()> {
        let mut b = vec![0u8; SFMB_LEN as usize];
        put_u32(&mut b, 0x34, ((SFMB_LEN as usize - 0x48) / 8) as u32);
        put_u32(&mut b, 0x38, self.filemarks.len() as u32);
        put_u32(&mut b, 0x3C, 0x48);
        for (i, &off) in self.filemarks.iter().rev().take(55).enumerate() {
            put_u64(&mut b, 0x48 + 8 * i, off);
        }
        let mut d = Dblk {
            kind: mtf::SFMB,
            attributes: 0x8000_0000,
            ..Dblk::default()
        };
        d.first_stream = SFMB_LEN as u16;
        d.os_id = mtf::OS_WINDOWS_NT;
        d.os_version = 1;
        d.encode(&mut b);
        self.filemarks.push(self.pos);
        self.put(&b)
    }

    fn set(&mut self, s: &SynthBackup) -> io::Result<()> {
        let base = self.pos;
        let mut cbid = 0u32;
        let mut dblk = |kind, pos: u64| {
            let d = Dblk {
                kind,
                fla: (pos - base) / FLB,
                control_block_id: cbid,
                ..Dblk::default()
            };
            cbid += 1;
            d
        };
        // SSET: attributes, data-set number, user, write date, version, BackupSetGUID.
        let user: Vec<u8> = USER.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut head = vec![0u8; 0x7A + user.len()];
        let diff = s.backup_type.is_differential();
        put_u32(&mut head, 0x34, if diff { 8 } else { 4 });
        put_u16(&mut head, 0x3E, s.position);
        put_u16(&mut head, 0x4C, user.len() as u16);
        put_u16(&mut head, 0x4E, 0x7A);
        put_u16(&mut head, 0x50, 0x600);
        head[0x58..0x5D].copy_from_slice(&s.backup_start_date.to_bytes());
        head[0x5D] = s.software_version.major;
        head[0x5E] = s.software_version.minor;
        head[0x5F] = 4;
        put_u16(&mut head, 0x60, 0x200);
        head[0x64..0x74].copy_from_slice(&s.backup_set_guid.to_bytes_le());
        head[0x7A..].copy_from_slice(&user);
        let mut d = dblk(mtf::SSET, self.pos);
        d.os_data_size = 21;
        d.os_data_offset = 0x64;
        self.block(d, head, &[])?;

        let server: Vec<u8> = s
            .server_name
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .take(256)
            .collect();
        let mut head = vec![0u8; 0x4A + server.len()];
        put_u32(&mut head, 0x34, 2);
        put_u16(&mut head, 0x38, 4);
        put_u16(&mut head, 0x3A, 0x49);
        put_u16(&mut head, 0x3E, server.len() as u16);
        put_u16(&mut head, 0x40, 0x4A);
        head[0x44..0x49].copy_from_slice(&s.backup_start_date.to_bytes());
        head[0x4A..].copy_from_slice(&server);
        head.resize(mtf::align4(head.len() as u64).unwrap_or(0) as usize, 0);
        let d = dblk(mtf::VOLB, self.pos);
        self.block(d, head, &[])?;

        let mqci = s.mqci(false);
        let d = dblk(mtf::MSCI, self.pos);
        self.block(
            d,
            vec![0; MSCI_HEAD],
            &[(StreamHeader::new(mtf::MQCI, 0), Body::Bytes(&mqci))],
        )?;

        if s.data_pages() > 0 {
            let d = dblk(mtf::MSDA, self.pos);
            let apad = PAGES_AT - MSDA_HEAD as u64 - 2 * STREAM_LEN as u64 - 2;
            let mut data = StreamHeader::new(mtf::MQDA, 0);
            data.media_attributes = 2;
            let mut end = StreamHeader::new(mtf::MQDA, 0);
            end.media_attributes = 6;
            let streams = [
                (apad_header(), Body::Zeros(apad)),
                (data, Body::Pages(s.data_pages(), s.seed ^ 0xDA7A)),
                (end, Body::Bytes(&[])),
            ];
            self.block(d, vec![0; MSDA_HEAD], &streams)?;
        }
        self.mstl(dblk(mtf::MSTL, self.pos), s.log_pages(), s.seed)?;
        if !s.complete {
            return self.w.flush();
        }
        for _ in 0..TRAILING_MSTL {
            self.mstl(dblk(mtf::MSTL, self.pos), 0, 0)?;
        }
        let mqci = s.mqci(true);
        let d = dblk(mtf::MSLS, self.pos);
        self.block(
            d,
            vec![0; MSCI_HEAD],
            &[(StreamHeader::new(mtf::MQCI, 0), Body::Bytes(&mqci))],
        )?;
        self.sfmb()?;
        let first_eset = self.pos;
        self.eset(s, 0, true)?;
        self.eset(s, first_eset, false)?;
        self.sfmb()?;
        self.w.flush()
    }

    fn mstl(&mut self, d: Dblk, pages: u64, seed: u64) -> io::Result<()> {
        let mut head = vec![0u8; MSTL_HEAD];
        put_u16(&mut head, 0x3A, 1);
        put_u32(&mut head, 0x4C, 2);
        put_u16(&mut head, 0x50, 0x1F8);
        put_u16(&mut head, 0x52, 0x5C);
        if pages == 0 {
            return self.block(d, head, &[]);
        }
        let apad = PAGES_AT - MSTL_HEAD as u64 - 2 * STREAM_LEN as u64 - 2;
        let streams = [
            (apad_header(), Body::Zeros(apad)),
            (StreamHeader::new(mtf::MQTL, 0), Body::Pages(pages, seed)),
        ];
        self.block(d, head, &streams)
    }

    /// End of set: the first ESET carries the OTCP and TSMP streams, the second points back.
    fn eset(&mut self, s: &SynthBackup, first: u64, catalog: bool) -> io::Result<()> {
        let mut head = vec![0u8; ESET_HEAD];
        put_u32(
            &mut head,
            0x34,
            if s.backup_type.is_differential() {
                8
            } else {
                4
            },
        );
        put_u64(&mut head, 0x3C, first);
        put_u16(&mut head, 0x4E, s.position);
        head[0x50..0x55].copy_from_slice(&s.backup_finish_date.to_bytes());
        let d = Dblk {
            kind: mtf::ESET,
            ..Dblk::default()
        };
        if !catalog {
            return self.block(d, head, &[]);
        }
        // OTCP fills the first logical block; TSMP starts the second.
        let otcp = FLB - ESET_HEAD as u64 - STREAM_LEN as u64;
        let mut tsmp = vec![0u8; 254];
        tsmp[..5].copy_from_slice(&s.backup_start_date.to_bytes());
        put_u16(&mut tsmp, 6, s.position);
        tsmp[0x40..0x50].copy_from_slice(&s.backup_set_guid.to_bytes_le());
        let streams = [
            (StreamHeader::new(mtf::OTCP, 0), Body::Zeros(otcp)),
            (StreamHeader::new(mtf::TSMP, 0), Body::Bytes(&tsmp)),
        ];
        self.block(d, head, &streams)
    }
}

fn apad_header() -> StreamHeader {
    let mut h = StreamHeader::new(mtf::APAD, 0);
    h.media_attributes = 0x80;
    h
}

/// Keeps the first `limit` bytes written and drops the rest: a copy cut short (`.wrk`).
pub struct Cut<W> {
    pub inner: W,
    pub limit: u64,
    pub written: u64,
}

impl<W: Write> Write for Cut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let keep = (self.limit.saturating_sub(self.written) as usize).min(buf.len());
        if keep > 0 {
            self.inner.write_all(&buf[..keep])?;
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::read_headers;
    use std::io::Cursor;

    fn start() -> MtfDate {
        MtfDate {
            year: 2026,
            month: 1,
            day: 5,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    #[test]
    fn file_len_matches_what_is_written() {
        let mut full =
            SynthBackup::log("db", Lsn::new(40, 100, 1), Lsn::new(40, 300, 1), start(), 7);
        full.backup_type = BackupType::Full;
        full.data_bytes = 100_000;
        let empty = SynthBackup::log("db", Lsn::new(40, 100, 1), Lsn::new(40, 100, 1), start(), 8);
        let incomplete = SynthBackup {
            complete: false,
            ..SynthBackup::log("db", Lsn::new(1, 1, 1), Lsn::new(1, 9, 1), start(), 9)
        };
        for s in [full, empty, incomplete] {
            let mut out = Vec::new();
            let n = s.write_to(&mut out).unwrap();
            assert_eq!(n, out.len() as u64);
            assert_eq!(n, s.file_len(), "{:?}", s.backup_type);
            assert_eq!(n % 512, 0);
        }
    }

    #[test]
    fn layout_matches_the_2016_samples() {
        // RestoreTimeClean_1.trn: 64 KiB of log in a 100,864-byte file, BackupSize 92,160.
        let s = SynthBackup::log(
            "RestoreTimeClean",
            Lsn::new(39, 474, 1),
            Lsn::new(39, 541, 1),
            start(),
            1,
        );
        let mut out = Vec::new();
        s.write_to(&mut out).unwrap();
        assert_eq!(out.len(), 100_864);
        let h = read_headers(Cursor::new(&out), Path::new("a.trn")).unwrap();
        assert_eq!(h[0].backup_size, 92_160);
        let tags: Vec<(usize, &[u8])> = [
            0x0, 0x400, 0x600, 0xA00, 0xE00, 0x1E00, 0x21E8, 0x12600, 0x16A00, 0x17A00, 0x17C00,
            0x18000, 0x18400, 0x18800,
        ]
        .iter()
        .map(|&o| (o, &out[o..o + 4]))
        .collect();
        let want: [&[u8]; 14] = [
            b"TAPE", b"SFMB", b"SSET", b"VOLB", b"MSCI", b"MSTL", b"MQTL", b"MSTL", b"MSLS",
            b"SFMB", b"ESET", b"TSMP", b"ESET", b"SFMB",
        ];
        for ((o, got), want) in tags.into_iter().zip(want) {
            assert_eq!(got, want, "at 0x{o:x}");
        }
    }

    #[test]
    fn payload_is_seeded() {
        let mut a = [0u8; 20];
        let mut b = [0u8; 20];
        Prng::new(3).fill(&mut a);
        Prng::new(3).fill(&mut b);
        assert_eq!(a, b);
        Prng::new(4).fill(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn cut_keeps_a_prefix() {
        let mut c = Cut {
            inner: Vec::new(),
            limit: 5,
            written: 0,
        };
        c.write_all(b"abc").unwrap();
        c.write_all(b"defg").unwrap();
        assert_eq!(c.inner, b"abcde");
    }
}
