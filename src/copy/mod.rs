//! Parallel verified copy of backup files into the copy folder: what is uncopied, the copy engine,
//! the manifest of verified files, and resume after a crash.
//!
//! The contract, for the catch-up pipeline and for `logship copy`:
//! - A file never appears under its final name in the copy folder unless it is complete, fsynced
//!   and verified: it is written to `.NAME.logship-part`, hashed (BLAKE3) as it is written,
//!   fsynced, verified (see [`VerifyMode`]), renamed, and the folder is fsynced. The rename is the
//!   commit point.
//! - The manifest (`.logship-manifest.json`, see [`manifest`]) records every verified file with its
//!   size, mtime and hash. It is a cache of verification: a re-run skips a file whose manifest entry
//!   matches its size and mtime without reading its content; a verified file the manifest lost (a
//!   crash between the rename and the next manifest write) is checked by hashing both sides, never
//!   copied again.
//! - Failures are per file: each names its file, the other files go on, and the report lists them.
//!
//! One writer per copy folder: leftover `.logship-part` files are removed at the start of a run.

mod dirsync;
pub mod engine;
pub mod manifest;
mod pieces;
pub mod progress;
mod readback;
mod ring;
pub mod select;
mod stream;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use engine::copy_files;
pub use manifest::{Manifest, ManifestEntry, MANIFEST_NAME};
pub use progress::{CopyProgress, NoProgress, RateMeter};
pub use select::{discover_backups, is_backup_name, select_uncopied, Action, Pending};
pub use stream::forget_cached;

/// Suffix of the temporary name a file is written under until it is verified.
pub const PART_SUFFIX: &str = ".logship-part";

/// The temporary name of `name` in the copy folder: `.NAME.logship-part` (hidden, never a backup).
pub fn part_name(name: &str) -> String {
    format!(".{name}{PART_SUFFIX}")
}

/// One file to bring into the copy folder. Jobs are handled in the order given (chain order
/// first), so the files the applier needs first are verified first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyJob {
    /// The backup file on the share.
    pub source: PathBuf,
    /// Its final file name in the copy folder (a plain name, no separators).
    pub name: String,
    /// Its size when it was listed; a different size when copied means it changed.
    pub size: u64,
}

/// How a copied file is verified before it gets its final name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// After fsync, read the destination back (from the page cache) and compare it byte for byte
    /// with the buffers it was written from, which were hashed after the write: equal bytes prove
    /// what comparing a hash of the copy with the source's would, for less CPU.
    #[default]
    Reread,
    /// Drop the destination's cached pages first (posix_fadvise DONTNEED) so the read-back comes
    /// from the device. Where that is not available (non-Unix) it behaves as `reread` and says so.
    Disk,
    /// Trust the write: hash the source only (the hash still lands in the manifest).
    Inline,
}

impl VerifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::Reread => "reread",
            VerifyMode::Disk => "disk",
            VerifyMode::Inline => "inline",
        }
    }
}

impl fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VerifyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "reread" => Ok(VerifyMode::Reread),
            "disk" => Ok(VerifyMode::Disk),
            "inline" => Ok(VerifyMode::Inline),
            _ => Err(format!(
                "unknown verify mode {s:?} (expected reread, disk or inline)"
            )),
        }
    }
}

/// How a file came to be verified in the copy folder; recorded in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifiedBy {
    /// Copied, then verified by re-reading (page cache).
    Reread,
    /// Copied, then verified by re-reading from the device.
    Disk,
    /// Copied, source hashed, write trusted.
    Inline,
    /// Found in place with the right size and no manifest entry; both sides hashed and equal.
    Compared,
}

impl From<VerifyMode> for VerifiedBy {
    fn from(m: VerifyMode) -> Self {
        match m {
            VerifyMode::Reread => VerifiedBy::Reread,
            VerifyMode::Disk => VerifiedBy::Disk,
            VerifyMode::Inline => VerifiedBy::Inline,
        }
    }
}

/// Tuning and behaviour of [`copy_files`].
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Files copied at once.
    pub workers: usize,
    pub verify: VerifyMode,
    /// Read and write size. A file larger than two buffers may be spread over a reader, a writer
    /// and a hasher thread (see the engine). In the reread and disk modes a worker keeps up to 48
    /// buffers and 48 MiB (at least 8 buffers) for the read-back's comparison; a larger file is
    /// copied in pieces of this size rounded down to a power of two, at most 256 KiB, each read
    /// back once an fsync covers it (see `pieces`).
    pub buffer_size: usize,
    /// Extra attempts after a source changed while copied or a verification mismatch.
    pub retries: u32,
    /// Test knob: a pause after each buffer, so tests can interrupt a copy midway
    /// (`logship copy` reads it from `LOGSHIP_COPY_THROTTLE_MS`). `None` in production.
    pub throttle: Option<Duration>,
    /// fsync each file before its rename and the folder after it. Always true in production: a
    /// file under its final name must survive a power cut. `false` exists only so the benchmark
    /// can show the engine's own speed apart from the device's write-back; `disk` verification
    /// then re-reads from the cache (pages are still dirty, so they cannot be dropped).
    pub fsync: bool,
    /// Run every worker but the first at a lower CPU priority (Linux: nice 10 on their threads).
    /// Catch-up sets it: the restores get the CPU before the extra workers, and the first worker
    /// still copies at full priority for when the copy is the critical path.
    pub low_priority: bool,
    /// Leave each verified copy's pages in the page cache. Without it (`logship copy`) a copy's
    /// cached pages are dropped once it is fsynced and verified, so copying gigabytes of backups
    /// does not push the server's own memory out, and the next file's writes reuse the freed
    /// pages. Catch-up keeps them (the restore reads the file next) and drops them after the
    /// restore. Linux only (posix_fadvise); elsewhere the cache is left to the system.
    pub keep_cached: bool,
    /// How many of the announced files the consumer (catch-up's applier) has finished with.
    /// With it, the first worker (the one at normal priority, see `low_priority`) waits while
    /// the copy is `2 x workers` files ahead: when the restores are the critical path, the copy
    /// then goes on at low priority only and stays out of their way.
    pub consumed: Option<Arc<AtomicUsize>>,
}

/// Workers when none is asked for; chosen from `cargo bench --bench copy` (see the README).
pub const DEFAULT_WORKERS: usize = 4;
/// 1 MiB: large enough that syscalls and hashing setup are noise, small enough to stay in cache.
pub const DEFAULT_BUFFER: usize = 1 << 20;

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            workers: DEFAULT_WORKERS,
            verify: VerifyMode::Reread,
            buffer_size: DEFAULT_BUFFER,
            retries: 2,
            throttle: None,
            fsync: true,
            low_priority: false,
            keep_cached: false,
            consumed: None,
        }
    }
}

/// A file that is verified under its final name, announced as soon as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFile {
    pub name: String,
    /// Its path in the copy folder.
    pub path: PathBuf,
    pub size: u64,
    pub blake3: blake3::Hash,
    /// `None`: it was already verified by an earlier run (the manifest says so).
    pub by: Option<VerifiedBy>,
    /// Set when this run read the copy back and its content cannot have changed since without
    /// this stamp changing (see [`crate::custody`]): a consumer compares stamps instead of
    /// hashing the file again. `None`: hash it before trusting it.
    pub stamp: Option<crate::custody::Stamp>,
}

/// A job that ended without a verified file.
#[derive(Debug)]
pub struct FailedFile {
    pub name: String,
    pub source: PathBuf,
    pub attempts: u32,
    pub error: CopyError,
}

/// What [`copy_files`] did.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub verify: VerifyMode,
    /// Copied and verified in this run, in completion order.
    pub copied: Vec<VerifiedFile>,
    /// In place with the right size but not in the manifest; both sides hashed equal.
    pub verified_by_hash: Vec<VerifiedFile>,
    /// Already verified by an earlier run; content not read.
    pub skipped: Vec<VerifiedFile>,
    pub failed: Vec<FailedFile>,
    /// Jobs not started because the run was cancelled.
    pub cancelled: Vec<String>,
    /// Source bytes copied in this run.
    pub bytes_copied: u64,
    pub elapsed: Duration,
    /// Files opened to read their content (sources and destinations): 0 when all were skipped.
    pub content_reads: u64,
    /// The manifest could not be written (the files themselves are verified; a re-run re-hashes).
    pub manifest_error: Option<String>,
    /// Set when `disk` mode could not drop cached pages and fell back to `reread`.
    pub disk_fallback: Option<String>,
}

impl CopyReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.cancelled.is_empty() && self.manifest_error.is_none()
    }

    /// Bytes per second of source copied, over the whole run.
    pub fn mib_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes_copied as f64 / (1024.0 * 1024.0) / s
        } else {
            0.0
        }
    }
}

/// Everything that can go wrong, each naming its file or folder.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("destination folder {} does not exist", path.display())]
    DestMissing { path: PathBuf },
    #[error("destination {} is not a folder", path.display())]
    DestNotDir { path: PathBuf },
    #[error("destination folder {} is not writable", path.display())]
    DestNotWritable { path: PathBuf, source: io::Error },
    #[error("cannot list destination folder {}", path.display())]
    DestList { path: PathBuf, source: io::Error },
    #[error("source {} vanished before it was copied (deleted from the share?)", path.display())]
    SourceVanished { path: PathBuf, source: io::Error },
    #[error("cannot open source {}", path.display())]
    SourceOpen { path: PathBuf, source: io::Error },
    #[error("cannot read source {}", path.display())]
    SourceRead { path: PathBuf, source: io::Error },
    #[error("source {} changed while it was copied: {detail}", path.display())]
    SourceChanged { path: PathBuf, detail: String },
    #[error("cannot write {}", path.display())]
    DestWrite { path: PathBuf, source: io::Error },
    #[error("cannot read back {}", path.display())]
    DestRead { path: PathBuf, source: io::Error },
    #[error("{} does not match its source {}: {detail}", path.display(), source_path.display())]
    Mismatch {
        path: PathBuf,
        source_path: PathBuf,
        /// Where the read-back first differs from what was written.
        detail: String,
    },
    #[error("{name:?} is not a plain file name")]
    BadName { name: String },
    #[error("{name:?} is given twice; only its first job runs")]
    DuplicateName { name: String },
    #[error("cancelled")]
    Cancelled,
}

impl CopyError {
    /// Worth another attempt: the source moved under us or the read-back disagreed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            CopyError::SourceChanged { .. } | CopyError::Mismatch { .. }
        )
    }
}

/// Checks the copy folder up front: it exists, is a folder, and a file can be created in it.
pub fn check_dest(dest: &Path) -> Result<(), CopyError> {
    let meta = match std::fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CopyError::DestMissing {
                path: dest.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(CopyError::DestNotWritable {
                path: dest.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_dir() {
        return Err(CopyError::DestNotDir {
            path: dest.to_path_buf(),
        });
    }
    // A probe file, because permission bits lie (root, ACLs, read-only mounts).
    let probe = dest.join(format!(".logship-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(CopyError::DestNotWritable {
            path: dest.to_path_buf(),
            source,
        }),
    }
}
