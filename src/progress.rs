//! Progress of copy and apply (`logship copy`, catch-up, failover): indicatif bars on a terminal,
//! periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use crate::copy::{CopyProgress, RateMeter};
use crate::lsn::Lsn;
use crate::report::Timeline;

/// How often a line is logged when there is no terminal to draw on.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The bars on a terminal: copy, and apply unless the run only copies.
struct Bars {
    _multi: MultiProgress,
    copy: ProgressBar,
    apply: Option<ProgressBar>,
}

/// Copy and apply progress, shared by the copy workers and the applier.
pub struct Progress {
    /// When each copy and restore ran, for the report.
    pub timeline: Timeline,
    bars: Option<Bars>,
    /// False for `logship copy`: no apply bar, no apply figures in the log lines.
    applies: bool,
    started: Instant,
    last_line: Mutex<Instant>,
    copy_bytes_total: AtomicU64,
    copy_bytes_done: AtomicU64,
    copy_files_total: AtomicU64,
    copy_files_done: AtomicU64,
    logs_total: AtomicU64,
    logs_done: AtomicU64,
    apply_bytes_total: AtomicU64,
    apply_bytes_done: AtomicU64,
    lsn: Mutex<Option<Lsn>>,
}

impl Progress {
    /// Copy and apply: bars when stderr is a terminal and `enabled`, log lines otherwise.
    pub fn new(enabled: bool) -> Progress {
        Progress::with_lanes(enabled, true)
    }

    /// Copy only (`logship copy`).
    pub fn copy_only(enabled: bool) -> Progress {
        Progress::with_lanes(enabled, false)
    }

    fn with_lanes(enabled: bool, applies: bool) -> Progress {
        let bars = (enabled && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let copy = multi.add(ProgressBar::new(0));
            copy.set_style(
                ProgressStyle::with_template(
                    "copy  [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            let apply = applies.then(|| {
                let apply = multi.add(ProgressBar::new(0));
                apply.set_style(
                    ProgressStyle::with_template("apply [{bar:30}] {pos}/{len} logs {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                apply
            });
            Bars {
                _multi: multi,
                copy,
                apply,
            }
        });
        Progress {
            timeline: Timeline::new(),
            bars,
            applies,
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            copy_bytes_total: AtomicU64::new(0),
            copy_bytes_done: AtomicU64::new(0),
            copy_files_total: AtomicU64::new(0),
            copy_files_done: AtomicU64::new(0),
            logs_total: AtomicU64::new(0),
            logs_done: AtomicU64::new(0),
            apply_bytes_total: AtomicU64::new(0),
            apply_bytes_done: AtomicU64::new(0),
            lsn: Mutex::new(None),
        }
    }

    /// A progress that draws and logs nothing (tests, `--json`).
    pub fn hidden() -> Progress {
        let mut p = Progress::new(false);
        *p.last_line.get_mut().expect("fresh mutex") =
            Instant::now() + Duration::from_secs(u32::MAX as u64);
        p
    }

    pub fn apply_begin(&self, logs: u64, bytes: u64) {
        self.logs_total.store(logs, Ordering::Relaxed);
        self.apply_bytes_total.store(bytes, Ordering::Relaxed);
        if let Some(apply) = self.bars.as_ref().and_then(|b| b.apply.as_ref()) {
            apply.set_length(logs);
        }
    }

    /// The running restore reached `percent`.
    pub fn apply_percent(&self, name: &str, percent: f32) {
        if let Some(apply) = self.bars.as_ref().and_then(|b| b.apply.as_ref()) {
            apply.set_message(format!("{name} {percent:.0}%"));
        }
        self.maybe_log();
    }

    pub fn log_applied(&self, name: &str, lsn: Lsn, bytes: u64) {
        self.logs_done.fetch_add(1, Ordering::Relaxed);
        self.apply_bytes_done.fetch_add(bytes, Ordering::Relaxed);
        *self.lsn.lock().expect("progress lock") = Some(lsn);
        if let Some(apply) = self.bars.as_ref().and_then(|b| b.apply.as_ref()) {
            apply.inc(1);
            let eta = self
                .apply_eta()
                .map(|s| format!(", eta {s:.0}s"))
                .unwrap_or_default();
            apply.set_message(format!("{name} done, LSN {lsn}{eta}"));
        }
        self.maybe_log();
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.copy.finish();
            if let Some(apply) = &b.apply {
                apply.finish();
            }
        }
    }

    /// Seconds until every log is in, at the rate restores have gone so far.
    pub fn apply_eta(&self) -> Option<f64> {
        let done = self.apply_bytes_done.load(Ordering::Relaxed);
        let total = self.apply_bytes_total.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        (done > 0 && total >= done).then(|| (total - done) as f64 * secs / done as f64)
    }

    fn maybe_log(&self) {
        if self.bars.is_some() {
            return;
        }
        let mut last = self.last_line.lock().expect("progress lock");
        if last.elapsed() < LOG_EVERY {
            return;
        }
        *last = Instant::now();
        let elapsed = self.started.elapsed();
        let meter = RateMeter {
            total_bytes: self.copy_bytes_total.load(Ordering::Relaxed),
            done_bytes: self.copy_bytes_done.load(Ordering::Relaxed),
        };
        let copy_eta = meter
            .eta(elapsed)
            .map(|d| format!("{} s", d.as_secs()))
            .unwrap_or_else(|| "?".into());
        let copy = format!(
            "copied {}/{} files, {} of {} MiB, {:.0} MiB/s, eta {copy_eta}",
            self.copy_files_done.load(Ordering::Relaxed),
            self.copy_files_total.load(Ordering::Relaxed),
            meter.done_bytes >> 20,
            meter.total_bytes >> 20,
            meter.rate(elapsed) / 1048576.0,
        );
        if !self.applies {
            info!("progress: {copy}");
            return;
        }
        let lsn = self
            .lsn
            .lock()
            .expect("progress lock")
            .map(|l| l.to_string())
            .unwrap_or_else(|| "-".into());
        info!(
            "progress: {copy}; applied {} of {} logs, LSN {lsn}, eta {}",
            self.logs_done.load(Ordering::Relaxed),
            self.logs_total.load(Ordering::Relaxed),
            self.apply_eta()
                .map(|s| format!("{s:.0} s"))
                .unwrap_or_else(|| "-".into()),
        );
    }
}

impl CopyProgress for Progress {
    fn begin(&self, files: u64, bytes: u64) {
        self.copy_files_total.store(files, Ordering::Relaxed);
        self.copy_bytes_total.store(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bars {
            b.copy.set_length(bytes);
        }
    }

    fn bytes(&self, n: u64) {
        self.copy_bytes_done.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bars {
            b.copy.inc(n);
        }
        self.maybe_log();
    }

    fn file_started(&self, name: &str) {
        self.timeline.start("copy", name);
    }

    fn file_done(&self, name: &str, ok: bool) {
        self.timeline.end("copy", name, ok, "");
        let done = self.copy_files_done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bars {
            let total = self.copy_files_total.load(Ordering::Relaxed);
            b.copy.set_message(format!("{done}/{total} files, {name}"));
        }
        self.maybe_log();
    }

    fn end(&self) {
        // `logship copy` ends with its summary; catch-up keeps its bars until the applier ends.
        if let (false, Some(b)) = (self.applies, &self.bars) {
            b.copy.finish_and_clear();
        }
    }
}
