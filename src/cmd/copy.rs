//! `logship copy`: pick the candidates, run the copy engine with a progress display, print the
//! summary (text or `--json`), exit 1 if any file failed.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::{CopyArgs, GlobalArgs};
use crate::config::{format_size, parse_size};
use crate::copy::{
    check_dest, copy_files, discover_backups, CopyError, CopyJob, CopyOptions, CopyProgress,
    CopyReport, RateMeter, VerifiedFile, VerifyMode, DEFAULT_BUFFER, DEFAULT_WORKERS,
};

use super::{usage, Status};

/// Test knob: milliseconds to pause after each buffer, so tests can interrupt a copy midway.
pub const THROTTLE_ENV: &str = "LOGSHIP_COPY_THROTTLE_MS";
/// How often the log-line progress speaks when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub fn run(g: &GlobalArgs, a: &CopyArgs) -> anyhow::Result<Status> {
    let opts = options(a)?;
    if !a.source.is_dir() {
        return Err(usage(format!(
            "source folder {} does not exist or is not a folder",
            a.source.display()
        )));
    }
    match check_dest(&a.dest) {
        Ok(()) => {}
        Err(e @ (CopyError::DestMissing { .. } | CopyError::DestNotDir { .. })) => {
            return Err(usage(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    }
    let jobs = candidates(a)?;
    tracing::debug!(files = jobs.len(), all = a.all, database = ?a.database, "candidates");
    let progress: Box<dyn CopyProgress> =
        if !g.no_progress && !g.quiet && std::io::stderr().is_terminal() {
            Box::new(BarProgress::new())
        } else {
            Box::new(LogProgress::new())
        };
    let cancel = AtomicBool::new(false);
    let report = copy_files(
        &jobs,
        &a.dest,
        &opts,
        progress.as_ref(),
        &|_: &VerifiedFile| {},
        &cancel,
    )
    .with_context(|| format!("copying {} into {}", a.source.display(), a.dest.display()))?;
    if a.json {
        println!("{}", summary_json(&report));
    } else {
        print_summary(&report);
    }
    Ok(if report.ok() {
        Status::Done
    } else {
        Status::Failed
    })
}

/// The files to consider, in copy order. The one place that decides the scope: today every backup
/// file in the share (`--all` and the default alike); the catch-up scope (the plan's `to_copy`, in
/// chain order) and `--database` filtering by header replace this function's body.
fn candidates(a: &CopyArgs) -> anyhow::Result<Vec<CopyJob>> {
    discover_backups(&a.source).with_context(|| format!("listing {}", a.source.display()))
}

fn options(a: &CopyArgs) -> anyhow::Result<CopyOptions> {
    let verify: VerifyMode = a.verify.parse().map_err(usage)?;
    let workers = a.workers.unwrap_or(DEFAULT_WORKERS);
    if workers == 0 {
        return Err(usage("--workers must be at least 1"));
    }
    let buffer_size = match &a.buffer_size {
        Some(s) => parse_size(s).map_err(|e| usage(format!("--buffer-size: {e}")))? as usize,
        None => DEFAULT_BUFFER,
    };
    if buffer_size < 4096 {
        return Err(usage("--buffer-size must be at least 4KiB"));
    }
    let throttle = match std::env::var(THROTTLE_ENV) {
        Ok(v) => {
            Some(Duration::from_millis(v.parse().map_err(|_| {
                usage(format!("{THROTTLE_ENV}: not a number"))
            })?))
        }
        Err(_) => None,
    };
    Ok(CopyOptions {
        workers,
        verify,
        buffer_size,
        retries: a.retries,
        throttle,
        fsync: true,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn names(files: &[VerifiedFile]) -> Vec<&str> {
    files.iter().map(|f| f.name.as_str()).collect()
}

fn summary_json(r: &CopyReport) -> serde_json::Value {
    let failed: Vec<_> = r
        .failed
        .iter()
        .map(|f| json!({"name": f.name, "path": f.source, "error": error_chain(&f.error), "attempts": f.attempts}))
        .collect();
    json!({
        "verify": r.verify.as_str(),
        "files_copied": r.copied.len(),
        "files_skipped": r.skipped.len(),
        "files_verified_by_hash": r.verified_by_hash.len(),
        "files_failed": r.failed.len(),
        "files_cancelled": r.cancelled.len(),
        "bytes": r.bytes_copied,
        "seconds": r.elapsed.as_secs_f64(),
        "mib_per_s": r.mib_per_s(),
        "content_reads": r.content_reads,
        "copied": names(&r.copied),
        "skipped": names(&r.skipped),
        "verified_by_hash": names(&r.verified_by_hash),
        "failed": failed,
        "manifest_error": r.manifest_error,
        "disk_fallback": r.disk_fallback,
    })
}

fn print_summary(r: &CopyReport) {
    println!(
        "copied {} files ({:.1} MiB) in {:.1} s, {:.0} MiB/s, verify {}; {} already verified, {} verified by hash, {} failed",
        r.copied.len(),
        r.bytes_copied as f64 / (1024.0 * 1024.0),
        r.elapsed.as_secs_f64(),
        r.mib_per_s(),
        r.verify,
        r.skipped.len(),
        r.verified_by_hash.len(),
        r.failed.len()
    );
    for f in &r.failed {
        eprintln!(
            "logship: failed: {} (after {} attempt(s))",
            error_chain(&f.error),
            f.attempts
        );
    }
    if let Some(e) = &r.manifest_error {
        eprintln!("logship: manifest not saved: {e}");
    }
    if let Some(e) = &r.disk_fallback {
        eprintln!("logship: {e}");
    }
}

/// indicatif bar on a terminal: bytes, throughput, ETA, files.
struct BarProgress {
    bar: ProgressBar,
    files: AtomicU64,
    total: AtomicU64,
}

impl BarProgress {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("a valid template"),
        );
        BarProgress {
            bar,
            files: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

impl CopyProgress for BarProgress {
    fn begin(&self, files: u64, bytes: u64) {
        self.total.store(files, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("0/{files} files"));
    }
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
    fn file_done(&self, _name: &str, _ok: bool) {
        let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.set_message(format!(
            "{done}/{} files",
            self.total.load(Ordering::Relaxed)
        ));
    }
    fn end(&self) {
        self.bar.finish_and_clear();
    }
}

/// Periodic tracing lines when stderr is not a terminal (logs, CI, services).
struct LogProgress {
    state: Mutex<LogState>,
}

struct LogState {
    start: Instant,
    last: Instant,
    meter: RateMeter,
    files: u64,
    files_done: u64,
}

impl LogProgress {
    fn new() -> Self {
        let now = Instant::now();
        LogProgress {
            state: Mutex::new(LogState {
                start: now,
                last: now,
                meter: RateMeter::default(),
                files: 0,
                files_done: 0,
            }),
        }
    }

    fn maybe_log(st: &mut LogState, force: bool) {
        let now = Instant::now();
        if !force && now.duration_since(st.last) < LOG_EVERY {
            return;
        }
        st.last = now;
        let el = now.duration_since(st.start);
        let eta = st
            .meter
            .eta(el)
            .map(|d| format!("{} s", d.as_secs()))
            .unwrap_or_else(|| "?".into());
        tracing::info!(
            "copy: {}/{} files, {}/{}, {:.0} MiB/s, ETA {eta}",
            st.files_done,
            st.files,
            format_size(st.meter.done_bytes),
            format_size(st.meter.total_bytes),
            st.meter.rate(el) / (1024.0 * 1024.0)
        );
    }
}

impl CopyProgress for LogProgress {
    fn begin(&self, files: u64, bytes: u64) {
        let mut st = self.state.lock().unwrap();
        st.files = files;
        st.meter.total_bytes = bytes;
    }
    fn bytes(&self, n: u64) {
        let mut st = self.state.lock().unwrap();
        st.meter.done_bytes += n;
        Self::maybe_log(&mut st, false);
    }
    fn file_done(&self, _name: &str, _ok: bool) {
        let mut st = self.state.lock().unwrap();
        st.files_done += 1;
        Self::maybe_log(&mut st, false);
    }
}
