//! The copy engine: N worker threads take jobs in the caller's order; each file is copied to its
//! temporary name while hashed, fsynced, verified, renamed, the folder fsynced, the manifest
//! updated, and the file announced at once. A manifest writer thread coalesces manifest writes.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info_span, warn};

use super::dirsync::DirSync;
use super::manifest::{self, now_secs, sync_dir, to_ns, Manifest, ManifestEntry};
use super::pieces::{copy_pieces, piece_size, Fail, Pieces};
use super::progress::CopyProgress;
use super::readback::{compare_back, Back};
use super::ring::Ring;
use super::select::{decide, dest_state, remove_leftovers, Action};
use super::stream::{
    advise_sequential, drop_cached_pages, hash_file, pump, start_writeback, Kept, PumpCfg,
    PumpError, PUMP_BUFFERS,
};
use super::{
    check_dest, part_name, CopyError, CopyJob, CopyOptions, CopyReport, FailedFile, VerifiedBy,
    VerifiedFile, VerifyMode,
};

/// Progress is reported in batches of this many bytes (and at the end of each file).
const PROGRESS_BATCH: u64 = 4 << 20;
/// Writeback of a large file is started every this many bytes (see `start_writeback`).
const WRITEBACK_STEP: u64 = 8 << 20;
/// A file of up to `keep_buffers` buffers keeps them all for its read-back after the fsync; a
/// larger one is copied in pieces, each read back once an fsync covers it (see `write_in_pieces`).
/// This bounds a worker's buffers: 48, and no more than 48 MiB unless that is under 8.
const KEEP_BUFFERS: u64 = 48;
const KEEP_BYTES: u64 = 48 << 20;
const KEEP_MIN_BUFFERS: u64 = 8;
/// A thread copying pieces fsyncs and reads them back every 1 MiB it writes, so they are still
/// in the core's cache when compared (one 2 GiB file to the tmpfs: 0.92-1.00x `cp` with 0.5 to
/// 2 MiB, 0.89x with 4 MiB). Where fsyncs are slow (each is a cache flush on the device) its
/// segments double, up to an eighth of its share of the file, and no more than a worker keeps.
const PIECE_SEGMENT: u64 = 1 << 20;
const PIECE_SEGMENTS: u64 = 8;
/// Threads on one file copied in pieces, at most: more only contend for the file's locks.
const PIECE_THREADS: usize = 4;
/// How often a worker waiting for the consumer looks again.
const CONSUMER_POLL: Duration = Duration::from_millis(1);
/// The manifest writer waits this long after a write, so a burst of small files shares one write.
const MANIFEST_INTERVAL: Duration = Duration::from_millis(50);

struct ManifestState {
    m: Manifest,
    dirty: bool,
    stop: bool,
}

struct Shared<'a> {
    dest: &'a Path,
    opts: &'a CopyOptions,
    progress: &'a dyn CopyProgress,
    on_verified: &'a (dyn Fn(&VerifiedFile) + Sync),
    cancel: &'a AtomicBool,
    manifest: Mutex<ManifestState>,
    manifest_cv: Condvar,
    report: Mutex<CopyReport>,
    content_reads: AtomicU64,
    dir_sync: DirSync,
    /// The jobs (by index) workers are on, and the cores they share: see `Shared::pump_cfg`.
    in_flight: Mutex<BTreeSet<usize>>,
    cores: usize,
    /// Files announced to `on_verified` so far.
    announced: AtomicUsize,
}

impl Shared<'_> {
    fn announce(&self, vf: &VerifiedFile) {
        self.announced.fetch_add(1, Ordering::Relaxed);
        (self.on_verified)(vf);
    }

    /// The first worker's pause while the copy is far enough ahead of its consumer (see
    /// `CopyOptions::consumed`). It ends when the consumer catches up, when no job is left to
    /// take (the other workers take the rest; a consumer that stopped never holds it up) or on
    /// cancel.
    fn wait_for_consumer(&self, next: &AtomicUsize, jobs: usize, workers: usize) {
        let Some(consumed) = &self.opts.consumed else {
            return;
        };
        while next.load(Ordering::Relaxed) < jobs && !self.cancel.load(Ordering::Relaxed) {
            let ahead = self
                .announced
                .load(Ordering::Relaxed)
                .saturating_sub(consumed.load(Ordering::Relaxed));
            if ahead < 2 * workers {
                return;
            }
            std::thread::sleep(CONSUMER_POLL);
        }
    }

    /// How to move the bytes of job `index` now. The oldest job in flight is spread over threads
    /// (a consumer in chain order waits for it first), and so is every job while at most half the
    /// cores have one. The others go on one thread each, which does more with the cores since
    /// each buffer is used while it is still in the core's cache (measured on 16 x 32 MiB files,
    /// 4 workers on 2 cores: 0.85-0.92x `cp -r` against 0.72-0.79x with every file spread).
    fn pump_cfg(&self, throttle: Option<Duration>, index: usize) -> PumpCfg<'_> {
        PumpCfg {
            buf: self.opts.buffer_size,
            throttle,
            cancel: self.cancel,
            spread: spread(&self.in_flight.lock().unwrap(), index, self.cores),
        }
    }
}

fn spread(in_flight: &BTreeSet<usize>, index: usize, cores: usize) -> bool {
    in_flight.first() == Some(&index) || in_flight.len() * 2 <= cores
}

/// A worker's state between files: the job it is on and its buffers (memory is touched once).
struct Worker {
    index: usize,
    pool: Vec<Vec<u8>>,
}

/// Brings `jobs` into `dest`, verified, in the given order, with `opts.workers` threads.
///
/// Each job ends in exactly one of the report's lists. `on_verified` is called from the worker
/// as soon as a file is verified under its final name and recorded in the manifest (also for
/// files an earlier run verified), so a consumer can start on it while later files copy.
/// Setting `cancel` stops the workers between buffers; unfinished files keep no final name.
///
/// Returns an error only when nothing can be done: the copy folder is missing, not a folder,
/// not writable, or cannot be listed. Per-file failures are in the report.
pub fn copy_files(
    jobs: &[CopyJob],
    dest: &Path,
    opts: &CopyOptions,
    progress: &dyn CopyProgress,
    on_verified: &(dyn Fn(&VerifiedFile) + Sync),
    cancel: &AtomicBool,
) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    check_dest(dest)?;
    let removed = remove_leftovers(dest)?;
    if removed > 0 {
        warn!(folder = %dest.display(), removed, "removed partial files left by an interrupted copy");
    }
    let m = Manifest::load(dest).unwrap_or_else(|e| {
        // The manifest is a cache of verification: without it, files in place are re-hashed.
        warn!("{e}; starting from an empty manifest (files in place will be hashed, not copied)");
        Manifest {
            version: 1,
            ..Manifest::default()
        }
    });
    progress.begin(jobs.len() as u64, jobs.iter().map(|j| j.size).sum());
    let shared = Shared {
        dest,
        opts,
        progress,
        on_verified,
        cancel,
        manifest: Mutex::new(ManifestState {
            m,
            dirty: false,
            stop: false,
        }),
        manifest_cv: Condvar::new(),
        report: Mutex::new(CopyReport {
            verify: opts.verify,
            ..CopyReport::default()
        }),
        content_reads: AtomicU64::new(0),
        dir_sync: DirSync::default(),
        in_flight: Mutex::new(BTreeSet::new()),
        announced: AtomicUsize::new(0),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // Two jobs with one name would write the same temporary file: only the first one runs.
    let mut seen = std::collections::HashSet::new();
    let duplicate: Vec<bool> = jobs.iter().map(|j| !seen.insert(j.name.as_str())).collect();
    let next = AtomicUsize::new(0);
    let workers = opts.workers.clamp(1, jobs.len().max(1));
    let manifest_error = std::thread::scope(|s| {
        let writer = s.spawn(|| manifest_writer(&shared));
        let (shared, next, duplicate) = (&shared, &next, &duplicate);
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    // The first worker copies at normal priority and the others take what CPU
                    // the restores leave: when the copy is the critical path it still has a full
                    // worker, and the extra ones never crowd out the restores (each of their
                    // threads would be one more claim on the cores).
                    if opts.low_priority && w > 0 {
                        lower_thread_priority();
                    }
                    let mut slot = Worker {
                        index: 0,
                        pool: Vec::new(),
                    };
                    loop {
                        // Only the first worker waits: it runs at normal priority, and with
                        // one worker nothing else would take the jobs.
                        if w == 0 && workers > 1 {
                            shared.wait_for_consumer(next, jobs.len(), workers);
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        if cancel.load(Ordering::Relaxed) {
                            shared
                                .report
                                .lock()
                                .unwrap()
                                .cancelled
                                .push(job.name.clone());
                            continue;
                        }
                        if duplicate[i] {
                            fail(
                                shared,
                                job,
                                0,
                                CopyError::DuplicateName {
                                    name: job.name.clone(),
                                },
                            );
                            continue;
                        }
                        slot.index = i;
                        shared.in_flight.lock().unwrap().insert(i);
                        process(shared, job, &mut slot);
                        shared.in_flight.lock().unwrap().remove(&i);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("copy worker does not panic");
        }
        shared.manifest.lock().unwrap().stop = true;
        shared.manifest_cv.notify_all();
        writer.join().expect("manifest writer does not panic")
    });
    progress.end();
    let mut report = shared.report.into_inner().unwrap();
    report.manifest_error = manifest_error;
    report.content_reads = shared.content_reads.load(Ordering::Relaxed);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Writes the manifest whenever it changed, at most every `MANIFEST_INTERVAL`, and once more at
/// the end. Returns the error of the last write if it failed (the final state is not on disk).
fn manifest_writer(sh: &Shared) -> Option<String> {
    let mut last_err = None;
    let mut st = sh.manifest.lock().unwrap();
    loop {
        while !st.dirty && !st.stop {
            st = sh.manifest_cv.wait(st).unwrap();
        }
        if !st.dirty {
            return last_err;
        }
        let last = st.stop;
        let bytes = st.m.to_json();
        st.dirty = false;
        drop(st);
        last_err = match manifest::write_atomic(sh.dest, &bytes) {
            Ok(()) => None,
            Err(e) => {
                warn!("{e}: {}", e.source_chain());
                Some(format!("{e}: {}", e.source_chain()))
            }
        };
        st = sh.manifest.lock().unwrap();
        if last_err.is_some() {
            if last {
                return last_err;
            }
            // The file is behind: write it again (a full disk may have room by then, once a
            // failed copy's temporary file is gone), at the latest when the workers are done.
            st.dirty = true;
        }
        if !st.stop {
            st = sh
                .manifest_cv
                .wait_timeout_while(st, MANIFEST_INTERVAL, |s| !s.stop)
                .unwrap()
                .0;
        }
    }
}

trait SourceChain {
    fn source_chain(&self) -> String;
}
impl<E: std::error::Error> SourceChain for E {
    fn source_chain(&self) -> String {
        let mut out = String::new();
        let mut cur = self.source();
        while let Some(e) = cur {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}

/// Lowers the calling thread's CPU priority; threads it starts later (a large file's reader and
/// hasher) inherit it. Best effort: the copy is as correct at any priority.
fn lower_thread_priority() {
    // On Linux, PRIO_PROCESS with a thread id changes that thread only; elsewhere it would change
    // the whole process, the applier too, so it is left alone there.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        debug!("could not lower the copy worker's priority: {e}");
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn process(sh: &Shared, job: &CopyJob, w: &mut Worker) {
    let _span = info_span!("copy", file = %job.name, bytes = job.size).entered();
    sh.progress.file_started(&job.name);
    if !valid_name(&job.name) {
        return fail(
            sh,
            job,
            0,
            CopyError::BadName {
                name: job.name.clone(),
            },
        );
    }
    let action = {
        let st = sh.manifest.lock().unwrap();
        decide(job, dest_state(sh.dest, &job.name), &st.m)
    };
    match action {
        Action::Skip(e) => match blake3::Hash::from_hex(&e.blake3) {
            Ok(hash) => {
                let vf = VerifiedFile {
                    name: job.name.clone(),
                    path: sh.dest.join(&job.name),
                    size: e.size,
                    blake3: hash,
                    by: None,
                    stamp: None,
                };
                sh.progress.bytes(job.size);
                sh.report.lock().unwrap().skipped.push(vf.clone());
                sh.announce(&vf);
                sh.progress.file_done(&job.name, true);
            }
            // A hand-edited manifest: do not trust it, compare instead.
            Err(_) => hash_check_then_copy(sh, job, w),
        },
        Action::HashCheck => hash_check_then_copy(sh, job, w),
        Action::Copy => copy_with_retries(sh, job, w),
    }
}

fn hash_check_then_copy(sh: &Shared, job: &CopyJob, w: &mut Worker) {
    match hash_both(sh, job, w) {
        Ok(Some(vf)) => {
            sh.progress.bytes(job.size);
            record(sh, &vf, VerifiedBy::Compared);
            sh.report.lock().unwrap().verified_by_hash.push(vf.clone());
            sh.announce(&vf);
            sh.progress.file_done(&job.name, true);
        }
        Ok(None) => {
            debug!("copy in place differs from its source; copying again");
            copy_with_retries(sh, job, w)
        }
        Err(CopyError::Cancelled) => sh.report.lock().unwrap().cancelled.push(job.name.clone()),
        Err(e) => fail(sh, job, 1, e),
    }
}

/// Hashes the source and the file in place; `Some` when they are equal.
fn hash_both(
    sh: &Shared,
    job: &CopyJob,
    w: &mut Worker,
) -> Result<Option<VerifiedFile>, CopyError> {
    let fin = sh.dest.join(&job.name);
    let cfg = sh.pump_cfg(sh.opts.throttle, w.index);
    let mut src = open_source(&job.source)?;
    sh.content_reads.fetch_add(1, Ordering::Relaxed);
    let (sn, sh_) = hash_file(&mut src, job.size, &cfg, &mut w.pool)
        .map_err(|e| pump_err(e, &job.source, &job.source))?;
    let mut dst = File::open(&fin).map_err(|source| CopyError::DestRead {
        path: fin.clone(),
        source,
    })?;
    sh.content_reads.fetch_add(1, Ordering::Relaxed);
    let (dn, dh) =
        hash_file(&mut dst, job.size, &cfg, &mut w.pool).map_err(|e| pump_err(e, &fin, &fin))?;
    if sn != dn || sh_ != dh || sn != job.size {
        return Ok(None);
    }
    Ok(Some(VerifiedFile {
        name: job.name.clone(),
        path: fin,
        size: sn,
        blake3: sh_,
        by: Some(VerifiedBy::Compared),
        stamp: None,
    }))
}

fn copy_with_retries(sh: &Shared, job: &CopyJob, w: &mut Worker) {
    let max = sh.opts.retries + 1;
    for attempt in 1..=max {
        match copy_once(sh, job, w) {
            Ok(vf) => {
                let by = vf.by.expect("a copy says how it was verified");
                record(sh, &vf, by);
                {
                    let mut r = sh.report.lock().unwrap();
                    r.bytes_copied += vf.size;
                    r.copied.push(vf.clone());
                }
                sh.announce(&vf);
                sh.progress.file_done(&job.name, true);
                return;
            }
            Err(CopyError::Cancelled) => {
                sh.report.lock().unwrap().cancelled.push(job.name.clone());
                return;
            }
            Err(e) if e.retryable() && attempt < max => {
                warn!(attempt, "{e}; trying again");
            }
            Err(e) => return fail(sh, job, attempt, e),
        }
    }
}

fn fail(sh: &Shared, job: &CopyJob, attempts: u32, error: CopyError) {
    warn!(attempts, "{error}: {}", error.source_chain());
    sh.progress.file_done(&job.name, false);
    sh.report.lock().unwrap().failed.push(FailedFile {
        name: job.name.clone(),
        source: job.source.clone(),
        attempts,
        error,
    });
}

/// Puts a verified file in the manifest and wakes the manifest writer.
fn record(sh: &Shared, vf: &VerifiedFile, by: VerifiedBy) {
    let mtime_ns = fs::metadata(&vf.path)
        .and_then(|m| m.modified())
        .map(to_ns)
        .unwrap_or(0);
    let entry = ManifestEntry {
        size: vf.size,
        mtime_ns,
        blake3: vf.blake3.to_hex().to_string(),
        verified_at: now_secs(),
        verify: by,
    };
    let mut st = sh.manifest.lock().unwrap();
    st.m.files.insert(vf.name.clone(), entry);
    st.dirty = true;
    drop(st);
    sh.manifest_cv.notify_all();
}

fn open_source(path: &Path) -> Result<File, CopyError> {
    File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => CopyError::SourceVanished {
            path: path.to_path_buf(),
            source,
        },
        _ => CopyError::SourceOpen {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn pump_err(e: PumpError, read_path: &Path, write_path: &Path) -> CopyError {
    match e {
        PumpError::Read(source) => CopyError::SourceRead {
            path: read_path.to_path_buf(),
            source,
        },
        PumpError::Sink(source) => CopyError::DestWrite {
            path: write_path.to_path_buf(),
            source,
        },
        PumpError::Cancelled => CopyError::Cancelled,
        PumpError::Stopped => WriteFail::Stopped.into_copy(write_path),
    }
}

/// One attempt: source → `.NAME.logship-part` (hashed while read) → fsync → verify → rename →
/// folder fsync. On any error the temporary file is removed; the final name is never touched.
fn copy_once(sh: &Shared, job: &CopyJob, w: &mut Worker) -> Result<VerifiedFile, CopyError> {
    let part = sh.dest.join(part_name(&job.name));
    let res = copy_to_part(sh, job, &part, w);
    if res.is_err() {
        let _ = fs::remove_file(&part);
    }
    res
}

fn copy_to_part(
    sh: &Shared,
    job: &CopyJob,
    part: &Path,
    w: &mut Worker,
) -> Result<VerifiedFile, CopyError> {
    let write_err = |source: io::Error| CopyError::DestWrite {
        path: part.to_path_buf(),
        source,
    };
    let mut src = open_source(&job.source)?;
    sh.content_reads.fetch_add(1, Ordering::Relaxed);
    let before = src.metadata().map_err(|source| CopyError::SourceRead {
        path: job.source.clone(),
        source,
    })?;
    if before.len() != job.size {
        return Err(changed(
            job,
            format!("listed at {} bytes, now {}", job.size, before.len()),
        ));
    }
    advise_sequential(&src);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(part)
        .map_err(write_err)?;
    let buf = sh.opts.buffer_size as u64;
    let src = (&mut src, &before);
    let (written, by) = if sh.opts.verify == VerifyMode::Inline {
        let ring = Ring::new(&mut w.pool, sh.opts.buffer_size, PUMP_BUFFERS);
        let done = write_part(sh, job, part, src, &mut out, (&ring, None), w);
        ring.into_pool(&mut w.pool);
        (done.map_err(|e| e.into_copy(part))?, VerifiedBy::Inline)
    } else if job.size > keep_buffers(buf) * buf {
        write_in_pieces(sh, job, part, src, &out, w)?
    } else {
        write_then_compare(sh, job, part, src, &mut out, w)?
    };
    // Clean after the fsync, so they go; a failure only leaves them cached. (Without fsync, a
    // benchmark-only mode, the pages are dirty and dropping them would start their write-back.)
    if !sh.opts.keep_cached && sh.opts.fsync {
        let _ = drop_cached_pages(&out);
    }
    drop(out);
    let fin = sh.dest.join(&job.name);
    fs::rename(part, &fin).map_err(|source| CopyError::DestWrite {
        path: fin.clone(),
        source,
    })?;
    if sh.opts.fsync {
        let dest = sh.dest;
        sh.dir_sync
            .sync_with(|| sync_dir(dest))
            .map_err(|source| CopyError::DestWrite {
                path: sh.dest.to_path_buf(),
                source,
            })?;
    }
    debug!(mode = %sh.opts.verify, "verified");
    let read_back = matches!(by, VerifiedBy::Reread | VerifiedBy::Disk);
    let stamp = (read_back && written.old_mtime)
        .then(|| crate::custody::stamp_now(&fin))
        .flatten();
    Ok(VerifiedFile {
        name: job.name.clone(),
        path: fin,
        size: written.len,
        blake3: written.hash,
        by: Some(by),
        stamp,
    })
}

fn changed(job: &CopyJob, detail: String) -> CopyError {
    CopyError::SourceChanged {
        path: job.source.clone(),
        detail,
    }
}

/// A temporary file written whole, its mtime set and fsynced.
struct Written {
    len: u64,
    hash: blake3::Hash,
    /// The source's mtime, kept by the copy, is older than a timestamp tick: any later write to
    /// the copy moves its mtime away from it, so a stamp taken after the rename vouches for the
    /// content the verification read.
    old_mtime: bool,
}

/// Why writing a temporary file stopped.
enum WriteFail {
    Copy(CopyError),
    /// Its read-back failed and closed the ring; the read-back says why.
    Stopped,
}

impl From<CopyError> for WriteFail {
    fn from(e: CopyError) -> Self {
        WriteFail::Copy(e)
    }
}

impl WriteFail {
    fn into_copy(self, part: &Path) -> CopyError {
        match self {
            WriteFail::Copy(e) => e,
            WriteFail::Stopped => CopyError::DestRead {
                path: part.to_path_buf(),
                source: io::Error::other("the read-back stopped"),
            },
        }
    }
}

/// Copies `src` into `out` while hashing it, checks the source did not change, keeps its mtime
/// and fsyncs. The buffers come from `ring`; with `keep`, each goes on to the read-back once
/// written and hashed.
fn write_part(
    sh: &Shared,
    job: &CopyJob,
    part: &Path,
    (src, before): (&mut File, &fs::Metadata),
    out: &mut File,
    (ring, keep): (&Ring, Option<Sender<Kept>>),
    w: &Worker,
) -> Result<Written, WriteFail> {
    let cfg = sh.pump_cfg(sh.opts.throttle, w.index);
    let mut unreported = 0u64;
    let (mut written, mut flushed) = (0u64, 0u64);
    let fsync = sh.opts.fsync;
    let pumped = pump(src, job.size, &cfg, ring, true, keep, |chunk| {
        out.write_all(chunk)?;
        written += chunk.len() as u64;
        if fsync && written - flushed >= WRITEBACK_STEP {
            start_writeback(out, flushed, written - flushed);
            flushed = written;
        }
        unreported += chunk.len() as u64;
        if unreported >= PROGRESS_BATCH {
            sh.progress.bytes(unreported);
            unreported = 0;
        }
        Ok(())
    });
    sh.progress.bytes(unreported);
    let (n, hash) = match pumped {
        Ok(p) => p,
        Err(PumpError::Stopped) => return Err(WriteFail::Stopped),
        Err(e) => return Err(pump_err(e, &job.source, part).into()),
    };
    let hash = hash.expect("hashed while copying");
    if n != job.size {
        return Err(changed(job, format!("read {n} bytes, listed at {}", job.size)).into());
    }
    let old_mtime = finish_part(sh, job, part, (src, before), out)?;
    Ok(Written {
        len: n,
        hash,
        old_mtime,
    })
}

/// Once the whole file is written: checks the source did not change meanwhile, gives the copy
/// the source's mtime and fsyncs it. Returns whether that mtime is old (see `Written`).
fn finish_part(
    sh: &Shared,
    job: &CopyJob,
    part: &Path,
    (src, before): (&File, &fs::Metadata),
    out: &File,
) -> Result<bool, CopyError> {
    let write_err = |source: io::Error| CopyError::DestWrite {
        path: part.to_path_buf(),
        source,
    };
    let after = src.metadata().map_err(|source| CopyError::SourceRead {
        path: job.source.clone(),
        source,
    })?;
    if after.len() != before.len() || after.modified().ok() != before.modified().ok() {
        return Err(changed(job, "modified while it was read".into()));
    }
    let old_mtime = before
        .modified()
        .ok()
        .is_some_and(|t| t.elapsed().is_ok_and(|age| age >= crate::custody::SETTLE));
    if let Ok(t) = before.modified() {
        out.set_modified(t).map_err(write_err)?;
    }
    if sh.opts.fsync {
        out.sync_all().map_err(write_err)?;
    }
    Ok(old_mtime)
}

/// How many buffers of `buf` bytes a worker keeps for the read-back at most (see `KEEP_BUFFERS`).
fn keep_buffers(buf: u64) -> u64 {
    (KEEP_BYTES / buf.max(1)).clamp(KEEP_MIN_BUFFERS, KEEP_BUFFERS)
}

/// A file of at most `keep_buffers` buffers: written whole with every buffer kept, fsynced, then
/// read back (from the device in disk mode) and compared with them.
fn write_then_compare(
    sh: &Shared,
    job: &CopyJob,
    part: &Path,
    src: (&mut File, &fs::Metadata),
    out: &mut File,
    w: &mut Worker,
) -> Result<(Written, VerifiedBy), CopyError> {
    let buf = sh.opts.buffer_size;
    // Every buffer of the file, one read past its end (the pump's check that it did not grow),
    // and the read-back's own.
    let max = job.size.div_ceil(buf as u64) as usize + 2;
    let ring = Ring::new(&mut w.pool, buf, max);
    let rbuf = ring.get().expect("a new ring has a buffer");
    let (tx, rx) = channel();
    let written = write_part(sh, job, part, src, out, (&ring, Some(tx)), w);
    let r = written.map_err(|e| e.into_copy(part)).and_then(|written| {
        let f = open_part(sh, part)?;
        let mode = read_mode(sh, &f);
        let n = read_back(sh, job, part, (f, rbuf), &ring, rx)?;
        check_length(job, part, n, written.len)?;
        Ok((written, mode.into()))
    });
    ring.into_pool(&mut w.pool);
    r
}

/// A large file, copied in pieces (see `pieces`): each thread reads, writes and hashes its
/// pieces on one core, and reads each back once an fsync covers it (in disk mode, from the
/// device). Its threads: one per core (up to `PIECE_THREADS`) when this worker's job spreads
/// (see `Shared::pump_cfg`), otherwise one.
fn write_in_pieces(
    sh: &Shared,
    job: &CopyJob,
    part: &Path,
    (src, before): (&mut File, &fs::Metadata),
    out: &File,
    w: &Worker,
) -> Result<(Written, VerifiedBy), CopyError> {
    let back = open_part(sh, part)?;
    let mode = read_mode(sh, &back);
    let cfg = sh.pump_cfg(sh.opts.throttle, w.index);
    let threads = if cfg.spread {
        sh.cores.min(PIECE_THREADS)
    } else {
        1
    };
    let pieces = Pieces {
        src,
        out,
        back: &back,
        len: job.size,
        piece: piece_size(sh.opts.buffer_size),
        threads,
        segment: (
            PIECE_SEGMENT,
            // A thread keeps up to two segments: a worker keeps at most `KEEP_BYTES`.
            (job.size / PIECE_SEGMENTS).min(KEEP_BYTES) / threads as u64 / 2,
        ),
        fsync: sh.opts.fsync,
        drop_pages: mode == VerifyMode::Disk,
        throttle: cfg.throttle,
        cancel: sh.cancel,
    };
    let progress = |n| sh.progress.bytes(n);
    let finish = || finish_part(sh, job, part, (src, before), out);
    let (hash, old_mtime) = copy_pieces(&pieces, &progress, finish).map_err(|e| match e {
        Fail::Read(source) => CopyError::SourceRead {
            path: job.source.clone(),
            source,
        },
        Fail::Ended(at) => changed(job, format!("read {at} bytes, listed at {}", job.size)),
        Fail::Grew => changed(job, format!("longer than the {} bytes listed", job.size)),
        Fail::Write(source) => CopyError::DestWrite {
            path: part.to_path_buf(),
            source,
        },
        Fail::ReadBack(source) => CopyError::DestRead {
            path: part.to_path_buf(),
            source,
        },
        Fail::Differs(detail) => CopyError::Mismatch {
            path: part.to_path_buf(),
            source_path: job.source.clone(),
            detail,
        },
        Fail::Cancelled => CopyError::Cancelled,
        Fail::Finish(e) => e,
        Fail::Stopped => WriteFail::Stopped.into_copy(part),
    })?;
    let written = Written {
        len: job.size,
        hash,
        old_mtime,
    };
    Ok((written, mode.into()))
}

fn open_part(sh: &Shared, part: &Path) -> Result<File, CopyError> {
    let f = File::open(part).map_err(|source| CopyError::DestRead {
        path: part.to_path_buf(),
        source,
    })?;
    sh.content_reads.fetch_add(1, Ordering::Relaxed);
    Ok(f)
}

/// Reads the copy back through `copy`, into `buf`, and compares it with the buffers it was
/// written from. Returns the bytes compared.
fn read_back<R: Read>(
    sh: &Shared,
    job: &CopyJob,
    part: &Path,
    (mut copy, mut buf): (R, Vec<u8>),
    ring: &Ring,
    kept: Receiver<Kept>,
) -> Result<u64, CopyError> {
    let r = compare_back(&mut copy, kept, ring, &mut buf, sh.cancel);
    ring.put(buf);
    r.map_err(|e| match e {
        Back::Cancelled => CopyError::Cancelled,
        Back::Read(source) => CopyError::DestRead {
            path: part.to_path_buf(),
            source,
        },
        Back::Differs(detail) => CopyError::Mismatch {
            path: part.to_path_buf(),
            source_path: job.source.clone(),
            detail,
        },
    })
}

/// The read-back compared every byte written (a shorter one would have failed on its own).
fn check_length(job: &CopyJob, part: &Path, compared: u64, written: u64) -> Result<(), CopyError> {
    if compared == written {
        return Ok(());
    }
    Err(CopyError::Mismatch {
        path: part.to_path_buf(),
        source_path: job.source.clone(),
        detail: format!("{compared} bytes compared, {written} written"),
    })
}

/// The read-back mode for `f`: disk mode drops the file's cached pages first, and falls back to
/// reread (noted once in the report) where it cannot.
fn read_mode(sh: &Shared, f: &File) -> VerifyMode {
    let mode = sh.opts.verify;
    if mode != VerifyMode::Disk {
        return mode;
    }
    match drop_cached_pages(f) {
        Ok(()) => mode,
        Err(e) => {
            let mut r = sh.report.lock().unwrap();
            if r.disk_fallback.is_none() {
                warn!("cannot drop cached pages ({e}); verify mode disk falls back to reread");
                r.disk_fallback = Some(format!(
                    "cannot drop cached pages ({e}); verified by reread"
                ));
            }
            VerifyMode::Reread
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_keeps_48_buffers_and_at_most_48_mib_unless_that_is_under_8() {
        assert_eq!(keep_buffers(64 << 10), 48);
        assert_eq!(keep_buffers(1 << 20), 48);
        assert_eq!(keep_buffers(4 << 20), 12);
        assert_eq!(keep_buffers(64 << 20), 8);
    }

    #[test]
    fn the_oldest_job_spreads_and_the_others_only_while_cores_are_free() {
        let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<usize>>();
        assert!(spread(&set(&[3]), 3, 2), "alone on two cores");
        assert!(spread(&set(&[3, 5]), 3, 2), "oldest in flight");
        assert!(!spread(&set(&[3, 5]), 5, 2), "a second job on two cores");
        assert!(spread(&set(&[3, 5]), 5, 4), "two jobs on four cores");
        assert!(!spread(&set(&[1, 3, 5]), 5, 4));
        assert!(
            spread(&set(&[7]), 7, 1),
            "one core, one job: its own threads still overlap I/O"
        );
    }
}
