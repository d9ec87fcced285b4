//! `catchup --watch`: follows a live share and applies each log backup as soon as it is complete.
//!
//! Each pass is one catch-up pass ([`catchup::copy_and_apply`]) over the files that are ready
//! (see [`looks`]); passes run when the share changes (notify) and at every poll interval (network
//! shares often send no notifications). A gap while watching is waiting for a late file, not an
//! error; a log that overlaps the chain without continuing it (a new chain after a restore on the
//! primary), or that the server refuses as another recovery fork, or of another database, is
//! reported and never applied.

pub mod looks;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};
use uuid::Uuid;

use crate::backup::BackupType;
use crate::catchup::{self, CatchupError, Outcome, Settings};
use crate::journal::Journal;
use crate::lsn::Lsn;
use crate::plan::{self, PlanInput, SkipReason};
use crate::progress::Progress;
use crate::scan::ScannedFile;
use crate::sql::restore::{RestoreError, Restorer};
use looks::Folder;

/// SQL Server's error when a log belongs to another recovery fork than the database.
const FORK_MISMATCH: u32 = 4330;

/// The status is repeated, unchanged, at most this often (or every poll interval, if longer).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A file unchanged this long that is still not a complete backup is reported.
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

/// How to watch.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// No notifications: rescan at every poll interval only.
    pub poll_only: bool,
    /// Rescan at least this often, with notifications too.
    pub poll_interval: Duration,
    /// Look again this soon while a file is still changing (the second look of "size stable").
    pub settle: Duration,
    /// Stop when nothing new arrived on the share for this long.
    pub until_idle: Option<Duration>,
    /// Report a file that stays incomplete, unreadable or `.wrk` this long.
    pub stalled_after: Duration,
    /// The primary's offset from UTC: backup dates are the server's local time.
    pub server_utc_offset: Duration,
    /// Whether that offset is east (+) of UTC.
    pub server_utc_offset_east: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll_only: false,
            poll_interval: Duration::from_secs(10),
            settle: Duration::from_millis(200),
            until_idle: None,
            stalled_after: STALLED_AFTER,
            server_utc_offset: Duration::ZERO,
            server_utc_offset_east: true,
        }
    }
}

/// Where the secondary stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    pub redo_lsn: Lsn,
    pub last_applied: Option<String>,
    /// Logs of the database on the share past the redo LSN, complete or not.
    pub logs_behind: usize,
    pub bytes_behind: u64,
    /// Files new or changed less than the settle time ago (being written, or just arrived).
    pub pending: usize,
    /// Seconds since the newest log on the share was started (its BackupStartDate).
    pub newest_backup_age_s: Option<f64>,
}

/// What the watch reports as it goes (one JSON object per line with `--json`).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    Started {
        database: String,
        redo_lsn: Lsn,
        notifications: bool,
    },
    Applied {
        name: String,
        first_lsn: Lsn,
        last_lsn: Lsn,
        bytes: u64,
        already_in: bool,
        /// From the file's last write on the share to the restore's end.
        seconds_since_complete: Option<f64>,
        restore_seconds: f64,
        applied_unix: f64,
    },
    /// The chain stops at `from_lsn`: a later log is there, the one between is not (yet).
    Waiting {
        from_lsn: Lsn,
        next: String,
        next_first_lsn: Lsn,
    },
    /// A backup that is never applied, and why.
    NotApplied {
        path: PathBuf,
        reason: String,
        detail: String,
    },
    /// A copy failed; the next pass tries again.
    CopyRetry {
        message: String,
    },
    Status(Status),
    Stopped {
        reason: StopReason,
        applied: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Nothing new for `--until-idle` seconds.
    Idle,
    /// Ctrl-C or SIGTERM, between two statements.
    Cancelled,
}

/// The whole watch, for the caller's summary.
#[derive(Clone, Debug, Serialize)]
pub struct WatchReport {
    pub reason: StopReason,
    pub applied: usize,
    pub redo_lsn: Lsn,
}

/// Watches until idle or cancelled: pauses the jobs once, runs passes, puts the jobs back.
pub async fn watch(
    s: &Settings,
    restorer: &mut Restorer,
    journal: &mut Journal,
    cancel: Arc<AtomicBool>,
    opts: &WatchOptions,
    sink: &mut (dyn FnMut(&WatchEvent) + Send),
) -> Result<WatchReport, CatchupError> {
    let paused = catchup::begin(s, restorer, journal).await?;
    let result = Watcher::new(s, opts)
        .run(restorer, journal, cancel, sink)
        .await;
    catchup::end(restorer, journal, paused).await?;
    result
}

struct Watcher<'a> {
    s: &'a Settings,
    opts: &'a WatchOptions,
    source: Folder,
    dest: Folder,
    /// Files already reported as never applied (path and reason).
    reported: HashSet<(PathBuf, String)>,
    /// Backup sets the server refused as another fork: left out of every plan.
    refused: HashSet<Uuid>,
    last_gap: Option<(Lsn, String)>,
    /// The last status reported, and when.
    last_status: Option<(Status, Instant)>,
}

impl<'a> Watcher<'a> {
    fn new(s: &'a Settings, opts: &'a WatchOptions) -> Self {
        Watcher {
            s,
            opts,
            source: Folder::new(&s.source_dir, opts.settle),
            dest: Folder::new(&s.dest_dir, opts.settle),
            reported: HashSet::new(),
            refused: HashSet::new(),
            last_gap: None,
            last_status: None,
        }
    }

    async fn run(
        mut self,
        restorer: &mut Restorer,
        journal: &mut Journal,
        cancel: Arc<AtomicBool>,
        sink: &mut (dyn FnMut(&WatchEvent) + Send),
    ) -> Result<WatchReport, CatchupError> {
        let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<()>();
        let notifier = if self.opts.poll_only {
            None
        } else {
            notifier(&self.s.source_dir, wake_tx)
        };
        let mut redo = catchup::redo_now(self.s, restorer).await?;
        sink(&WatchEvent::Started {
            database: self.s.database.clone(),
            redo_lsn: redo,
            notifications: notifier.is_some(),
        });
        let mut applied_total = 0usize;
        let mut last_applied: Option<String> = None;
        let mut last_new = Instant::now();
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Ok(self.stop(StopReason::Cancelled, applied_total, redo, sink));
            }
            let (src, dst) = {
                let mut source = std::mem::replace(
                    &mut self.source,
                    Folder::new(&self.s.source_dir, self.opts.settle),
                );
                let mut dest = std::mem::replace(
                    &mut self.dest,
                    Folder::new(&self.s.dest_dir, self.opts.settle),
                );
                let (source, dest, src, dst) = tokio::task::spawn_blocking(move || {
                    let src = source.look();
                    let dst = dest.look();
                    (source, dest, src, dst)
                })
                .await
                .expect("scan thread");
                self.source = source;
                self.dest = dest;
                (src, dst)
            };
            if src.changed {
                last_new = Instant::now();
            }
            let ready: Vec<ScannedFile> = src
                .ready
                .iter()
                .filter(|f| !self.is_refused(f))
                .cloned()
                .collect();
            let dest_ready: Vec<ScannedFile> = dst
                .ready
                .iter()
                .filter(|f| !self.is_refused(f))
                .cloned()
                .collect();
            let plan = plan::plan(&PlanInput {
                database: &self.s.database,
                redo_lsn: Some(redo),
                dest_dir: &self.s.dest_dir,
                source: &ready,
                dest: &dest_ready,
            });
            self.report_skips(&plan, sink);
            self.report_stalled(&src, sink);
            self.report_gap(&plan, sink);

            let mut progressed = false;
            if !plan.to_apply.is_empty() {
                // Completion is the share's last write; a copy's time only when the share has
                // no such file any more (later entries win).
                let completed: std::collections::HashMap<String, SystemTime> = dst
                    .files
                    .iter()
                    .chain(src.files.iter())
                    .filter_map(|f| Some((f.name(), f.modified?)))
                    .collect();
                let progress = Arc::new(Progress::hidden());
                let mut on_applied = |a: &catchup::AppliedLog| {
                    let now = SystemTime::now();
                    let since = completed
                        .get(&a.name)
                        .and_then(|m| now.duration_since(*m).ok())
                        .map(|d| d.as_secs_f64());
                    sink(&WatchEvent::Applied {
                        name: a.name.clone(),
                        first_lsn: a.first_lsn,
                        last_lsn: a.last_lsn,
                        bytes: a.bytes,
                        already_in: a.already_in,
                        seconds_since_complete: since,
                        restore_seconds: a.seconds,
                        applied_unix: unix(now),
                    });
                };
                let pass = catchup::copy_and_apply(
                    self.s,
                    &plan,
                    restorer,
                    journal,
                    progress,
                    cancel.clone(),
                    &mut on_applied,
                )
                .await?;
                applied_total += pass.applied.len();
                if let Some(a) = pass.applied.last() {
                    redo = a.last_lsn;
                    last_applied = Some(a.name.clone());
                    progressed = true;
                    last_new = Instant::now();
                }
                match (pass.outcome, pass.error) {
                    (Outcome::Done, _) => {}
                    (Outcome::Cancelled, _) => {
                        return Ok(self.stop(StopReason::Cancelled, applied_total, redo, sink))
                    }
                    // The server saw a gap the files did not show: wait for the missing log.
                    (Outcome::ChainBroken, _) => {
                        redo = catchup::redo_now(self.s, restorer).await?;
                    }
                    (_, Some(CatchupError::CopyFailed { name, message })) => {
                        // A file retention removed, or a share that dropped: the next pass
                        // sees the share as it is then.
                        sink(&WatchEvent::CopyRetry {
                            message: format!("copying {name}: {message}"),
                        });
                    }
                    (_, Some(CatchupError::Restore(RestoreError::Failed { name, source, .. })))
                        if source.number() == Some(FORK_MISMATCH) =>
                    {
                        self.refuse(&plan, &name, catchup::error_chain(&source), sink);
                    }
                    (_, Some(e)) => return Err(e),
                    (_, None) => {}
                }
            }
            let status = self.status(redo, last_applied.clone(), &src);
            // On a change (the age aside: it always moves), and as a heartbeat.
            let due = self.last_status.as_ref().is_none_or(|(last, at)| {
                Status {
                    newest_backup_age_s: status.newest_backup_age_s,
                    ..last.clone()
                } != status
                    || at.elapsed() >= self.opts.poll_interval.max(HEARTBEAT)
            });
            if due {
                sink(&WatchEvent::Status(status.clone()));
                self.last_status = Some((status, Instant::now()));
            }
            if progressed {
                // More may have arrived while applying: look again at once.
                continue;
            }
            if let Some(idle) = self.opts.until_idle {
                if src.moving == 0 && last_new.elapsed() >= idle {
                    return Ok(self.stop(StopReason::Idle, applied_total, redo, sink));
                }
            }
            // While a file settles, look again when the first one may be called stable.
            let mut wait = src.settles_in.unwrap_or(self.opts.poll_interval);
            if let Some(idle) = self.opts.until_idle {
                wait = wait.min(idle.saturating_sub(last_new.elapsed()));
            }
            wait_for_change(&mut wake_rx, wait, &cancel).await;
        }
    }

    fn is_refused(&self, f: &ScannedFile) -> bool {
        !self.refused.is_empty()
            && f.headers
                .as_ref()
                .is_ok_and(|h| h.iter().any(|h| self.refused.contains(&h.backup_set_guid)))
    }

    fn refuse(
        &mut self,
        plan: &plan::Plan,
        name: &str,
        detail: String,
        sink: &mut (dyn FnMut(&WatchEvent) + Send),
    ) {
        if let Some(l) = plan.to_apply.iter().find(|l| l.name == name) {
            self.refused.insert(l.backup_set_guid);
            sink(&WatchEvent::NotApplied {
                path: l.source.clone().unwrap_or_else(|| l.path.clone()),
                reason: "new_chain".into(),
                detail: format!("SQL Server refused it as another recovery fork: {detail}"),
            });
        }
    }

    /// Reports, once per file, backups that will never be applied.
    fn report_skips(&mut self, plan: &plan::Plan, sink: &mut (dyn FnMut(&WatchEvent) + Send)) {
        for sk in &plan.skipped {
            let reason = match sk.reason {
                SkipReason::OtherDatabase => "other_database",
                // Overlaps the chain without continuing it: another branch of the database,
                // as after a restore on the primary.
                SkipReason::NotInChain => "new_chain",
                SkipReason::NameConflict => "name_conflict",
                SkipReason::Unreadable => "unreadable",
                _ => continue,
            };
            if self.reported.insert((sk.path.clone(), reason.to_string())) {
                warn!(path = %sk.path.display(), reason, detail = %sk.detail, "never applied");
                sink(&WatchEvent::NotApplied {
                    path: sk.path.clone(),
                    reason: reason.into(),
                    detail: sk.detail.clone(),
                });
            }
        }
    }

    /// Reports, once per file version, a file that stopped changing without becoming a whole
    /// backup; it is never applied as it is, and a gap behind it waits for it.
    fn report_stalled(&mut self, src: &looks::Look, sink: &mut (dyn FnMut(&WatchEvent) + Send)) {
        for (f, age) in &src.stalled {
            if *age < self.opts.stalled_after {
                continue;
            }
            let (reason, detail) = match (&f.headers, f.kind) {
                (_, crate::scan::FileKind::InFlight) => (
                    "in_flight",
                    "a .wrk copy that is no longer growing".to_string(),
                ),
                (Err(e), _) => ("unreadable", e.kind.to_string()),
                (Ok(_), _) => (
                    "incomplete",
                    "no trailer, and no longer growing".to_string(),
                ),
            };
            let key = format!("{reason} {} {:?}", f.size, f.modified);
            if self.reported.insert((f.path.clone(), key)) {
                warn!(path = %f.path.display(), reason, %detail, "stalled");
                sink(&WatchEvent::NotApplied {
                    path: f.path.clone(),
                    reason: reason.into(),
                    detail: format!("{detail} for {} s", age.as_secs()),
                });
            }
        }
    }

    fn report_gap(&mut self, plan: &plan::Plan, sink: &mut (dyn FnMut(&WatchEvent) + Send)) {
        let gap = plan.gaps.first().map(|g| (g.from_lsn, g.after.clone()));
        if gap != self.last_gap {
            if let Some(g) = plan.gaps.first() {
                info!(from = %g.from_lsn, next = %g.after, "waiting for the log that closes a gap");
                sink(&WatchEvent::Waiting {
                    from_lsn: g.from_lsn,
                    next: g.after.clone(),
                    next_first_lsn: g.to_lsn,
                });
            }
            self.last_gap = gap;
        }
    }

    fn status(&self, redo: Lsn, last_applied: Option<String>, src: &looks::Look) -> Status {
        let mut seen = HashSet::new();
        let (mut logs, mut bytes, mut newest) = (0usize, 0u64, None::<i64>);
        for f in &src.files {
            let Ok(headers) = &f.headers else { continue };
            for h in headers {
                if h.backup_type != BackupType::Log
                    || !h.database_name.eq_ignore_ascii_case(&self.s.database)
                {
                    continue;
                }
                if let Some(d) = h.backup_start_date {
                    newest = newest.max(Some(d.to_unix()));
                }
                if h.last_lsn > redo && seen.insert(h.backup_set_guid) {
                    logs += 1;
                    bytes += f.size;
                }
            }
        }
        let offset = self.opts.server_utc_offset.as_secs() as i64;
        let offset = if self.opts.server_utc_offset_east {
            offset
        } else {
            -offset
        };
        Status {
            redo_lsn: redo,
            last_applied,
            logs_behind: logs,
            bytes_behind: bytes,
            pending: src.moving,
            // Server-local date minus the server's offset is UTC.
            newest_backup_age_s: newest
                .map(|d| ((unix(SystemTime::now()) - (d - offset) as f64) * 10.0).round() / 10.0),
        }
    }

    fn stop(
        &self,
        reason: StopReason,
        applied: usize,
        redo: Lsn,
        sink: &mut (dyn FnMut(&WatchEvent) + Send),
    ) -> WatchReport {
        sink(&WatchEvent::Stopped { reason, applied });
        WatchReport {
            reason,
            applied,
            redo_lsn: redo,
        }
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Notifications of changes under `dir`; `None` (polling only) when they cannot be had.
fn notifier(
    dir: &std::path::Path,
    wake: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let handler = move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = wake.send(());
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "no file notifications: polling only");
            return None;
        }
    };
    match w.watch(dir, notify::RecursiveMode::Recursive) {
        Ok(()) => Some(w),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "no file notifications for the share: polling only");
            None
        }
    }
}

/// Sleeps until a notification, `wait`, or cancellation (checked every 100 ms). A burst of
/// notifications (one per write) wakes once.
async fn wait_for_change(
    rx: &mut mpsc::UnboundedReceiver<()>,
    wait: Duration,
    cancel: &AtomicBool,
) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return;
        }
        let tick = (deadline - now).min(Duration::from_millis(100));
        tokio::select! {
            got = rx.recv() => {
                if got.is_none() {
                    // No notifier: polling only.
                    tokio::time::sleep(tick).await;
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                while rx.try_recv().is_ok() {}
                return;
            }
            _ = tokio::time::sleep(tick) => {}
        }
    }
}
