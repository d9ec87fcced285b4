//! Synthetic log-shipping shares: a continuous chain of log backups named as log shipping names
//! them, with the cases the planner must handle (gap, empty log, duplicate, another database,
//! incomplete file, full and differential, in-flight `.wrk` copies). Deterministic for a seed.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::synth::{Cut, Prng, SynthBackup};
use super::{BackupHeader, BackupType, MtfDate};
use crate::lsn::Lsn;

/// 2026-01-05T00:00:00: the first log's BackupStartDate, so names do not depend on the clock.
const BASE_UNIX: u64 = 1_767_571_200;
/// Log shipping's default backup interval.
const INTERVAL: u64 = 300;
/// Log blocks are 512-byte sectors: an 8 KiB page advances the LSN by 16 blocks.
const BLOCKS_PER_PAGE: u64 = 16;
/// Start a new VLF past this block number (keeps LSNs in SQL Server's range).
const VLF_BLOCKS: u64 = 4_000_000;

/// What to write.
#[derive(Clone, Debug)]
pub struct ShareSpec {
    pub dir: PathBuf,
    pub database: String,
    pub server: String,
    /// Log backup slots, 5 minutes apart.
    pub logs: u32,
    /// Log records per backup (rounded up to 8 KiB pages; the file adds about 35 KiB).
    pub log_size: u64,
    /// FirstLSN of the first log.
    pub start_lsn: Lsn,
    /// The log after the K-th is not written: a gap in the chain.
    pub gap_after: Option<u32>,
    /// The log after the K-th is empty (FirstLSN == LastLSN).
    pub empty_after: Option<u32>,
    /// The K-th log is written a second time under the next second's name (same BackupSetGUID).
    pub duplicate: Option<u32>,
    /// Log backups of another database (`<database>_other`) in the same folder.
    pub foreign: u32,
    /// The newest log has no trailer (no MSLS, no ESET): still being written.
    pub incomplete_last: bool,
    /// In-flight copies: the next N logs as `.wrk` files cut in the middle of their log data.
    pub wrk: u32,
    /// A full backup the chain starts from, and a differential after the middle log.
    pub with_full: bool,
    /// Data pages of the full (and half of it for the differential).
    pub full_size: u64,
    pub seed: u64,
}

impl ShareSpec {
    pub fn new(dir: impl Into<PathBuf>, database: &str) -> ShareSpec {
        ShareSpec {
            dir: dir.into(),
            database: database.to_string(),
            server: "SQL01".to_string(),
            logs: 10,
            log_size: 64 * 1024,
            start_lsn: Lsn::new(40, 1000, 1),
            gap_after: None,
            empty_after: None,
            duplicate: None,
            foreign: 0,
            incomplete_last: false,
            wrk: 0,
            with_full: false,
            full_size: 1 << 20,
            seed: 1,
        }
    }
}

/// Why a share could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("invalid share: {0}")]
    Invalid(String),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The part a file plays in the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    Log,
    EmptyLog,
    Duplicate,
    Foreign,
    Incomplete,
    Wrk,
    Full,
    Differential,
}

/// One written file and what the native reader reads from it.
#[derive(Clone, Debug, Serialize)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub role: FileRole,
    pub bytes: u64,
    pub header: BackupHeader,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShareSummary {
    pub dir: PathBuf,
    pub database: String,
    pub files: Vec<WrittenFile>,
    pub bytes: u64,
    /// FirstLSN of the first log and LastLSN of the newest written log of the chain.
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    /// The LSN ranges the gap leaves out.
    pub missing: Vec<(Lsn, Lsn)>,
}

fn advance(l: Lsn, pages: u64) -> Lsn {
    let block = l.block as u64 + pages * BLOCKS_PER_PAGE + 2;
    if block > VLF_BLOCKS {
        Lsn::new(l.vlf + 1, 16, 1)
    } else {
        Lsn::new(l.vlf, block as u32, 1)
    }
}

/// An LSN `k` blocks into a log that starts at `l` (within its range for k < 16 pages).
fn inside(l: Lsn, k: u32, slot: u16) -> Lsn {
    Lsn::new(l.vlf, l.block + k, slot)
}

fn date(unix: u64) -> MtfDate {
    MtfDate::from_unix(unix)
}

fn check(spec: &ShareSpec) -> Result<(), ShareError> {
    let bad = |m: String| Err(ShareError::Invalid(m));
    let k_ok = |k: Option<u32>, what: &str, min: u32, max: u32| match k {
        Some(k) if k < min || k > max => Err(ShareError::Invalid(format!(
            "{what} {k}: must be between {min} and {max}"
        ))),
        _ => Ok(()),
    };
    if spec.logs == 0 {
        return bad("at least one log backup".into());
    }
    if spec.database.is_empty() || spec.database.contains(['/', '\\', '\0']) {
        return bad(format!(
            "database name {:?} cannot name files",
            spec.database
        ));
    }
    if spec.start_lsn.block as u64 >= VLF_BLOCKS {
        return bad(format!(
            "start LSN {} has a block past {VLF_BLOCKS}",
            spec.start_lsn
        ));
    }
    k_ok(spec.gap_after, "--gap-after", 0, spec.logs - 1)?;
    k_ok(spec.empty_after, "--empty-after", 1, spec.logs - 1)?;
    k_ok(spec.duplicate, "--duplicate", 1, spec.logs)?;
    if spec.gap_after.is_some() && spec.gap_after == spec.empty_after {
        return bad("--gap-after and --empty-after name the same log".into());
    }
    Ok(())
}

/// Writes the share; files appear under their final names only when whole (temp name, rename).
pub fn write_share(spec: &ShareSpec) -> Result<ShareSummary, ShareError> {
    check(spec)?;
    fs::create_dir_all(&spec.dir).map_err(|source| ShareError::Io {
        path: spec.dir.clone(),
        source,
    })?;
    let mut rng = Prng::new(spec.seed);
    let pages = spec.log_size.div_ceil(8192).max(1);
    let db = &spec.database;

    // The chain: slot i (1-based) covers [lsns[i-1], lsns[i]).
    let total = spec.logs + spec.wrk;
    let mut bounds = vec![spec.start_lsn];
    for i in 1..=total {
        let prev = bounds[i as usize - 1];
        let empty = spec.empty_after.is_some_and(|k| k + 1 == i);
        bounds.push(if empty { prev } else { advance(prev, pages) });
    }
    let first_log_start = bounds[0];
    // The full sits inside the first log's range: restoring it, then log 1, continues the chain.
    let full_ckpt = inside(first_log_start, 1, 71);
    let full_guid = rng.guid();

    let mut summary = ShareSummary {
        dir: spec.dir.clone(),
        database: db.clone(),
        files: Vec::new(),
        bytes: 0,
        first_lsn: bounds[0],
        last_lsn: bounds[0],
        missing: Vec::new(),
    };
    if spec.with_full {
        let start = BASE_UNIX - 180;
        let mut full = SynthBackup::log(
            db,
            full_ckpt,
            inside(first_log_start, 2, 1),
            date(start),
            rng.next_u64(),
        );
        full.backup_type = BackupType::Full;
        full.server_name = spec.server.clone();
        full.checkpoint_lsn = full_ckpt;
        full.backup_set_guid = full_guid;
        full.last_full_guid = full_guid;
        full.data_bytes = spec.full_size;
        full.log_bytes = 8192;
        full.backup_finish_date = date(start + 20);
        emit(
            spec,
            &mut summary,
            &full,
            format!("{db}_FULL_{}.bak", date(start).compact()),
            FileRole::Full,
            None,
        )?;
    }

    let diff_after = (spec.logs / 2).max(1);
    for i in 1..=total {
        let (first, last) = (bounds[i as usize - 1], bounds[i as usize]);
        let start = BASE_UNIX + (i as u64 - 1) * INTERVAL;
        if spec.gap_after.is_some_and(|k| k + 1 == i) {
            summary.missing.push((first, last));
            continue;
        }
        let mut b = SynthBackup::log(db, first, last, date(start), rng.next_u64());
        b.server_name = spec.server.clone();
        b.log_bytes = if first == last { 0 } else { pages * 8192 };
        b.checkpoint_lsn = if first == last {
            first
        } else {
            inside(first, 1, 2)
        };
        b.database_backup_lsn = full_ckpt;
        b.last_full_guid = full_guid;
        let name = format!("{db}_{}.trn", date(start).compact());
        if i > spec.logs {
            // In flight: log shipping's copy job writes `<name>.wrk`, then renames it.
            let cut = b.file_len() / 2;
            b.complete = false;
            let wrk = format!("{}.wrk", name.trim_end_matches(".trn"));
            emit(spec, &mut summary, &b, wrk, FileRole::Wrk, Some(cut))?;
            continue;
        }
        let role = if spec.incomplete_last && i == spec.logs {
            b.complete = false;
            FileRole::Incomplete
        } else if first == last {
            FileRole::EmptyLog
        } else {
            FileRole::Log
        };
        emit(spec, &mut summary, &b, name, role, None)?;
        summary.last_lsn = last;
        if spec.duplicate == Some(i) {
            emit(
                spec,
                &mut summary,
                &b,
                format!("{db}_{}.trn", date(start + 1).compact()),
                FileRole::Duplicate,
                None,
            )?;
        }
    }

    // The differential: after the middle log, inside the range of the next log that has records.
    let normal =
        |i: u32| i <= spec.logs && spec.gap_after != Some(i - 1) && spec.empty_after != Some(i - 1);
    if let Some(i) = (spec.with_full && spec.logs >= 2)
        .then(|| (diff_after..spec.logs).find(|&i| normal(i + 1)))
        .flatten()
    {
        let next = bounds[i as usize];
        let dstart = BASE_UNIX + (i as u64 - 1) * INTERVAL + 120;
        let mut diff = SynthBackup::log(
            db,
            inside(next, 1, 1),
            inside(next, 2, 1),
            date(dstart),
            rng.next_u64(),
        );
        diff.backup_type = BackupType::Differential;
        diff.server_name = spec.server.clone();
        diff.database_backup_lsn = full_ckpt;
        diff.differential_base_lsn = full_ckpt;
        diff.differential_base_guid = full_guid;
        diff.last_full_guid = full_guid;
        diff.data_bytes = spec.full_size / 2;
        diff.log_bytes = 8192;
        emit(
            spec,
            &mut summary,
            &diff,
            format!("{db}_DIFF_{}.bak", date(dstart).compact()),
            FileRole::Differential,
            None,
        )?;
    }

    let other = format!("{db}_other");
    let mut l = Lsn::new(spec.start_lsn.vlf.wrapping_add(100), 500, 1);
    for j in 0..spec.foreign {
        let start = BASE_UNIX + 150 + j as u64 * INTERVAL;
        let next = advance(l, pages);
        let mut b = SynthBackup::log(&other, l, next, date(start), rng.next_u64());
        b.server_name = spec.server.clone();
        b.log_bytes = pages * 8192;
        emit(
            spec,
            &mut summary,
            &b,
            format!("{other}_{}.trn", date(start).compact()),
            FileRole::Foreign,
            None,
        )?;
        l = next;
    }
    Ok(summary)
}

/// Writes one file and records it in the summary with the header the reader will read.
fn emit(
    spec: &ShareSpec,
    summary: &mut ShareSummary,
    b: &SynthBackup,
    name: String,
    role: FileRole,
    cut: Option<u64>,
) -> Result<(), ShareError> {
    let path = spec.dir.join(&name);
    let bytes = write_file(&spec.dir, &name, b, cut).map_err(|source| ShareError::Io {
        path: path.clone(),
        source,
    })?;
    summary.bytes += bytes;
    summary.files.push(WrittenFile {
        header: b.header(&path),
        path,
        role,
        bytes,
    });
    Ok(())
}

/// Writes one file under a temporary name, then renames it; returns its length.
fn write_file(dir: &Path, name: &str, b: &SynthBackup, cut: Option<u64>) -> io::Result<u64> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let f = fs::File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let n = match cut {
        Some(limit) => {
            let mut c = Cut {
                inner: &mut w,
                limit,
                written: 0,
            };
            b.write_to(&mut c)?;
            limit.min(c.written)
        }
        None => b.write_to(&mut w)?,
    };
    w.flush()?;
    drop(w);
    fs::rename(&tmp, dir.join(name))?;
    Ok(n)
}
