//! Progress of copy and apply: indicatif bars on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use crate::copy::CopyProgress;
use crate::lsn::Lsn;
use crate::report::Timeline;

/// How often a line is logged when there is no terminal to draw on.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Copy and apply progress of a catch-up, shared by the copy workers and the applier.
pub struct Progress {
    /// When each copy and restore ran, for the report.
    pub timeline: Timeline,
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    started: Instant,
    last_line: Mutex<Instant>,
    copy_bytes_total: AtomicU64,
    copy_bytes_done: AtomicU64,
    copy_files_done: AtomicU64,
    logs_total: AtomicU64,
    logs_done: AtomicU64,
    apply_bytes_total: AtomicU64,
    apply_bytes_done: AtomicU64,
    lsn: Mutex<Option<Lsn>>,
}

impl Progress {
    /// Bars when stderr is a terminal and `enabled`, log lines otherwise.
    pub fn new(enabled: bool) -> Progress {
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
            let apply = multi.add(ProgressBar::new(0));
            apply.set_style(
                ProgressStyle::with_template("apply [{bar:30}] {pos}/{len} logs {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            (multi, copy, apply)
        });
        Progress {
            timeline: Timeline::new(),
            bars,
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            copy_bytes_total: AtomicU64::new(0),
            copy_bytes_done: AtomicU64::new(0),
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
        if let Some((_, _, apply)) = &self.bars {
            apply.set_length(logs);
        }
    }

    /// The running restore reached `percent`.
    pub fn apply_percent(&self, name: &str, percent: f32) {
        if let Some((_, _, apply)) = &self.bars {
            apply.set_message(format!("{name} {percent:.0}%"));
        }
        self.maybe_log();
    }

    pub fn log_applied(&self, name: &str, lsn: Lsn, bytes: u64) {
        self.logs_done.fetch_add(1, Ordering::Relaxed);
        self.apply_bytes_done.fetch_add(bytes, Ordering::Relaxed);
        *self.lsn.lock().expect("progress lock") = Some(lsn);
        if let Some((_, _, apply)) = &self.bars {
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
        if let Some((_, copy, apply)) = &self.bars {
            copy.finish();
            apply.finish();
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
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let done = self.copy_bytes_done.load(Ordering::Relaxed);
        let total = self.copy_bytes_total.load(Ordering::Relaxed);
        let lsn = self
            .lsn
            .lock()
            .expect("progress lock")
            .map(|l| l.to_string())
            .unwrap_or_else(|| "-".into());
        info!(
            "progress: copied {} of {} MiB ({:.0} MiB/s, {} files); applied {} of {} logs; LSN {lsn}; eta {}",
            done >> 20,
            total >> 20,
            done as f64 / 1048576.0 / secs,
            self.copy_files_done.load(Ordering::Relaxed),
            self.logs_done.load(Ordering::Relaxed),
            self.logs_total.load(Ordering::Relaxed),
            self.apply_eta().map(|s| format!("{s:.0}s")).unwrap_or_else(|| "-".into()),
        );
    }
}

impl CopyProgress for Progress {
    fn begin(&self, _files: u64, bytes: u64) {
        self.copy_bytes_total.store(bytes, Ordering::Relaxed);
        if let Some((_, copy, _)) = &self.bars {
            copy.set_length(bytes);
        }
    }

    fn bytes(&self, n: u64) {
        self.copy_bytes_done.fetch_add(n, Ordering::Relaxed);
        if let Some((_, copy, _)) = &self.bars {
            copy.inc(n);
        }
        self.maybe_log();
    }

    fn file_started(&self, name: &str) {
        self.timeline.start("copy", name);
    }

    fn file_done(&self, name: &str, ok: bool) {
        self.timeline.end("copy", name, ok, "");
        self.copy_files_done.fetch_add(1, Ordering::Relaxed);
        if let Some((_, copy, _)) = &self.bars {
            copy.set_message(name.to_string());
        }
    }
}
