//! Catch-up: copy what the secondary lacks and apply the log chain, pipelined (steps 2 and 3).
//!
//! The copy workers run on threads and announce each verified file at once; the applier restores
//! each log of the chain, in LSN order, as soon as its file is verified, while later files copy.
//! Wall time approaches max(copy, apply) rather than their sum.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::backup::BackupHeader;
use crate::copy::{self, CopyOptions, CopyReport};
use crate::custody;
use crate::journal::{Event, Journal, JournalError};
use crate::lsn::Lsn;
use crate::plan::{self, Gap, Plan, PlanInput};
use crate::progress::Progress;
use crate::report::TimeSpan;
use crate::scan;
use crate::sql::restore::{Applied, LogToRestore, ProgressFn, RestoreError, Restorer};
use crate::sql::snapshot::{self, Job};
use crate::sql::{server_path, RestoreMode, SqlError, Statement};

/// What catch-up needs, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database: String,
    pub source_dir: PathBuf,
    pub dest_dir: PathBuf,
    /// The copy folder as the SQL Server sees it.
    pub dest_on_server: String,
    /// The undo file of STANDBY restores, as the server sees it.
    pub standby_undo: String,
    /// Disable log shipping's copy and restore jobs for the run, and put them back after.
    pub pause_jobs: bool,
    pub copy: CopyOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum CatchupError {
    #[error("database {db} does not exist on the secondary")]
    NoDatabase { db: String },
    #[error("database {db} is {state}, not RESTORING or STANDBY: there is nothing to catch up")]
    NotRestoring { db: String, state: String },
    #[error("database {db} is restoring but SQL Server reports no redo_start_lsn")]
    NoRedoLsn { db: String },
    #[error(
        "log shipping's jobs are enabled for {db} ({jobs}): they would race the engine; \
         run with --pause-jobs, or remove log shipping first"
    )]
    JobsEnabled { db: String, jobs: String },
    #[error(
        "{name} changed while SQL Server restored it: the database may hold damaged log records. \
         Do not bring it online: restore it again from the last full backup and the log chain"
    )]
    ChangedDuringRestore { name: String },
    #[error("the copy of {name} failed, so the chain stops before it: {message}")]
    CopyFailed { name: String, message: String },
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
}

/// One log the applier dealt with.
#[derive(Clone, Debug, Serialize)]
pub struct AppliedLog {
    pub name: String,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub bytes: u64,
    /// The database already had it.
    pub already_in: bool,
    pub seconds: f64,
}

/// What a catch-up did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub database: String,
    pub redo_before: Option<Lsn>,
    pub redo_after: Option<Lsn>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub applied: Vec<AppliedLog>,
    pub files_copied: usize,
    pub files_already_verified: usize,
    pub bytes_copied: u64,
    pub copy_failed: Vec<String>,
    pub verify: String,
    pub skipped: usize,
    pub gaps: Vec<Gap>,
    pub seconds: f64,
    pub copy_seconds: f64,
    pub timeline: Vec<TimeSpan>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every log of the chain is in.
    Done,
    /// A gap cuts the chain: the logs before it are in.
    ChainBroken,
    /// Stopped on an error: the database is RESTORING at the last log applied.
    Failed,
    /// Stopped on request between two restores.
    Cancelled,
}

/// Reads the snapshot and journals it if no earlier run did (removing log shipping deletes it).
pub async fn snapshot_once(
    restorer: &mut Restorer,
    journal: &mut Journal,
) -> Result<(), CatchupError> {
    if journal.snapshot().is_some() {
        return Ok(());
    }
    let db = restorer.database().to_string();
    let snap = snapshot::take(restorer.query_conn().await?, &db).await?;
    journal.append(Event::Snapshot {
        snapshot: Box::new(snap),
    })?;
    Ok(())
}

/// Restores as log shipping did: STANDBY (read-only between restores) or NORECOVERY.
pub fn set_restore_mode(
    s: &Settings,
    restorer: &mut Restorer,
    snap: &crate::sql::snapshot::Snapshot,
) {
    let standby = snap.log_shipping.as_ref().is_some_and(|l| l.standby())
        || snap.database.as_ref().is_some_and(|d| d.is_in_standby);
    if standby {
        restorer.set_mode(RestoreMode::Standby(s.standby_undo.clone()));
    }
}

/// Disables this database's enabled log shipping jobs (journaled first), or refuses.
async fn pause_jobs(
    s: &Settings,
    restorer: &mut Restorer,
    journal: &mut Journal,
) -> Result<bool, CatchupError> {
    let db = s.database.clone();
    let ls = snapshot::log_shipping(restorer.query_conn().await?, &db).await?;
    let enabled: Vec<Job> = ls
        .map(|l| l.enabled_jobs().into_iter().cloned().collect())
        .unwrap_or_default();
    if enabled.is_empty() {
        return Ok(false);
    }
    if !s.pause_jobs {
        let jobs = enabled
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CatchupError::JobsEnabled { db, jobs });
    }
    journal.append(Event::JobsPaused {
        jobs: enabled.clone(),
    })?;
    let conn = restorer.query_conn().await?;
    for j in &enabled {
        conn.execute(&Statement::set_job_enabled(j.job_id, false))
            .await?;
        info!(job = %j.name, "paused log shipping job");
    }
    Ok(true)
}

/// Puts back jobs an earlier or this run paused, as they were.
pub async fn restore_jobs(
    restorer: &mut Restorer,
    journal: &mut Journal,
) -> Result<(), CatchupError> {
    let Some(jobs) = journal.paused_jobs() else {
        return Ok(());
    };
    let conn = restorer.query_conn().await?;
    for j in &jobs {
        match conn
            .execute(&Statement::set_job_enabled(j.job_id, j.enabled))
            .await
        {
            Ok(()) => {}
            // The server refused (the job is gone: log shipping was removed since): say so.
            Err(e) if e.number().is_some() => {
                warn!(job = %j.name, error = %e, "could not put the job back");
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        info!(job = %j.name, enabled = j.enabled, "put log shipping job back");
    }
    journal.append(Event::JobsRestored)?;
    Ok(())
}

/// Verified copies ready to restore, with the hash they were verified with and the copy engine's
/// stamp if it has one (None: log shipping's own copy that the manifest does not know; its
/// headers were read by the planner).
type Ready = HashMap<String, Option<Vouched>>;

#[derive(Clone, Copy)]
struct Vouched {
    hash: blake3::Hash,
    stamp: Option<custody::Stamp>,
}

/// Copies in place without a source on the share: ready when their content still has the
/// manifest's hash (or the manifest does not know them); otherwise the reason they are not.
/// A copy found good carries the stamp taken before its read, so it is not read again before
/// its restore.
fn check_orphan_copies(dest: &Path, names: Vec<String>) -> (Ready, HashMap<String, String>) {
    let manifest = copy::manifest::Manifest::load(dest).ok();
    let mut ready = HashMap::new();
    let mut damaged = HashMap::new();
    for name in names {
        let Some(entry) = manifest.as_ref().and_then(|m| m.files.get(&name)) else {
            ready.insert(name, None);
            continue;
        };
        let path = dest.join(&name);
        let no_longer = || {
            format!(
                "{} no longer matches the hash recorded when it was verified, and its source is \
                 gone from the share: restore it from another copy",
                path.display()
            )
        };
        // A manifest hash that is not one cannot match either.
        let Ok(hash) = blake3::Hash::from_hex(&entry.blake3) else {
            damaged.insert(name, no_longer());
            continue;
        };
        let checked = custody::settled_stamp(&path)
            .and_then(|stamp| Ok((stamp, custody::hash_matches(&path, &hash)?)));
        match checked {
            Ok((stamp, true)) => {
                ready.insert(name, Some(Vouched { hash, stamp }));
            }
            Ok((_, false)) => {
                damaged.insert(name, no_longer());
            }
            Err(e) => {
                damaged.insert(name, format!("reading {}: {e}", path.display()));
            }
        }
    }
    (ready, damaged)
}

/// The check before a restore, running on a blocking thread: the stamp to compare after it.
type Check = tokio::task::JoinHandle<Result<Option<custody::Stamp>, String>>;

/// Scans the share and the copy folder and plans from `redo`.
pub fn plan_now(s: &Settings, redo: Option<Lsn>) -> Plan {
    plan_folders(&s.database, redo, &s.source_dir, &s.dest_dir)
}

/// Scans the share and the copy folder and plans from `redo`.
pub fn plan_folders(database: &str, redo: Option<Lsn>, source: &Path, dest: &Path) -> Plan {
    let (src, dst) = scan::scan_share_and_copies(source, dest);
    plan::plan(&PlanInput {
        database,
        redo_lsn: redo,
        dest_dir: dest,
        source: &src,
        dest: &dst,
    })
}

/// The chain's files that the share has, in chain order: those already in the copy folder too,
/// so the copy engine verifies them (the manifest, or a hash of both sides) before they are used.
pub fn chain_jobs(p: &Plan) -> Vec<copy::CopyJob> {
    p.to_apply
        .iter()
        .filter_map(|l| {
            let source = l.source.clone()?;
            Some(copy::CopyJob {
                source,
                name: l.name.clone(),
                size: l.size,
            })
        })
        .collect()
}

/// Scans and plans; files the native reader cannot read but the server may (compressed,
/// encrypted, an unchecked version) are copied first and read with the server's
/// `RESTORE HEADERONLY`, on the path the server sees.
pub async fn plan_with_server_fallback(
    s: &Settings,
    redo: Lsn,
    restorer: &mut Restorer,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
) -> Result<Plan, CatchupError> {
    let (mut src, mut dst) = {
        let s = s.clone();
        tokio::task::spawn_blocking(move || scan::scan_share_and_copies(&s.source_dir, &s.dest_dir))
            .await
            .expect("scan thread")
    };
    let server_only: Vec<usize> = (0..src.len())
        .filter(|&i| src[i].kind == scan::FileKind::Backup)
        .filter(|&i| matches!(&src[i].headers, Err(e) if e.server_may_read()))
        .collect();
    if !server_only.is_empty() {
        info!(
            files = server_only.len(),
            "reading headers through the server (RESTORE HEADERONLY)"
        );
        std::fs::create_dir_all(&s.dest_dir).map_err(|source| copy::CopyError::DestWrite {
            path: s.dest_dir.clone(),
            source,
        })?;
        let jobs: Vec<copy::CopyJob> = server_only
            .iter()
            .map(|&i| copy::CopyJob {
                source: src[i].path.clone(),
                name: src[i].name(),
                size: src[i].size,
            })
            .collect();
        let report = {
            let (dest, opts) = (s.dest_dir.clone(), s.copy.clone());
            tokio::task::spawn_blocking(move || {
                copy::copy_files(
                    &jobs,
                    &dest,
                    &opts,
                    progress.as_ref(),
                    &|_: &copy::VerifiedFile| {},
                    &cancel,
                )
            })
            .await
            .expect("copy thread")?
        };
        let verified: HashSet<String> = report
            .copied
            .iter()
            .chain(&report.skipped)
            .chain(&report.verified_by_hash)
            .map(|v| v.name.clone())
            .collect();
        for i in server_only {
            let name = src[i].name();
            if !verified.contains(&name) {
                continue;
            }
            let on_server = server_path(&s.dest_on_server, &name);
            let conn = restorer.query_conn().await?;
            match crate::sql::headers::restore_headeronly(conn, &on_server, &src[i].path).await {
                Ok(headers) => {
                    for d in dst.iter_mut().filter(|d| d.name() == name) {
                        let here = d.path.clone();
                        d.headers = Ok(headers
                            .iter()
                            .cloned()
                            .map(|h| BackupHeader {
                                path: here.clone(),
                                ..h
                            })
                            .collect());
                    }
                    src[i].headers = Ok(headers);
                }
                Err(e) => {
                    warn!(file = %src[i].path.display(), error = %e, "the server could not read the headers either")
                }
            }
        }
    }
    Ok(plan::plan(&PlanInput {
        database: &s.database,
        redo_lsn: Some(redo),
        dest_dir: &s.dest_dir,
        source: &src,
        dest: &dst,
    }))
}

/// Runs a catch-up: snapshot, jobs, plan, then copy and apply pipelined. The database is left
/// RESTORING (or STANDBY) at the last log applied.
pub async fn run(
    s: &Settings,
    restorer: &mut Restorer,
    journal: &mut Journal,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
) -> Result<Report, CatchupError> {
    let paused = begin(s, restorer, journal).await?;
    let result = run_paused(s, restorer, journal, progress, cancel).await;
    end(restorer, journal, paused).await?;
    result
}

/// Before any restore: journals the snapshot, restores as log shipping did (STANDBY or
/// NORECOVERY) and pauses the jobs (or refuses). True when this call paused jobs.
pub async fn begin(
    s: &Settings,
    restorer: &mut Restorer,
    journal: &mut Journal,
) -> Result<bool, CatchupError> {
    snapshot_once(restorer, journal).await?;
    let snap = journal.snapshot().expect("journaled above");
    set_restore_mode(s, restorer, snap);
    pause_jobs(s, restorer, journal).await
}

/// After the last restore: jobs go back as they were, on failure too.
pub async fn end(
    restorer: &mut Restorer,
    journal: &mut Journal,
    paused: bool,
) -> Result<(), CatchupError> {
    if paused || journal.paused_jobs().is_some() {
        restore_jobs(restorer, journal).await?;
    }
    Ok(())
}

/// The database's redo LSN, after checking it is still RESTORING (or STANDBY).
pub async fn redo_now(s: &Settings, restorer: &mut Restorer) -> Result<Lsn, CatchupError> {
    let state = restorer
        .database_state()
        .await?
        .ok_or_else(|| CatchupError::NoDatabase {
            db: s.database.clone(),
        })?;
    if !state.is_restoring() {
        return Err(CatchupError::NotRestoring {
            db: s.database.clone(),
            state: state.state_desc,
        });
    }
    state.redo_start_lsn.ok_or_else(|| CatchupError::NoRedoLsn {
        db: s.database.clone(),
    })
}

async fn run_paused(
    s: &Settings,
    restorer: &mut Restorer,
    journal: &mut Journal,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
) -> Result<Report, CatchupError> {
    let started = progress.timeline.now();
    let redo = redo_now(s, restorer).await?;
    let plan =
        plan_with_server_fallback(s, redo, restorer, progress.clone(), cancel.clone()).await?;
    info!(
        database = %s.database, redo = %redo, to_apply = plan.to_apply.len(), to_copy = plan.to_copy.len(),
        bytes = plan.bytes_to_copy(), "planned"
    );
    for g in &plan.gaps {
        warn!(
            "gap in the chain: no log covers LSN {} (next log {} starts at {})",
            g.from_lsn, g.after, g.to_lsn
        );
    }
    let Pass {
        applied,
        outcome,
        error,
        copy_report,
    } = copy_and_apply(
        s,
        &plan,
        restorer,
        journal,
        progress.clone(),
        cancel,
        &mut |_| {},
    )
    .await?;
    let redo_after = restorer.redo_lsn().await.ok().flatten();
    let report = Report {
        database: s.database.clone(),
        redo_before: Some(redo),
        redo_after,
        outcome,
        error: error.as_ref().map(|e| error_chain(e)),
        applied,
        files_copied: copy_report.copied.len(),
        files_already_verified: copy_report.skipped.len() + copy_report.verified_by_hash.len(),
        bytes_copied: copy_report.bytes_copied,
        copy_failed: copy_report
            .failed
            .iter()
            .map(|f| error_chain(&f.error))
            .collect(),
        verify: copy_report.verify.to_string(),
        skipped: plan.skipped.len(),
        gaps: plan.gaps.clone(),
        seconds: progress.timeline.now() - started,
        copy_seconds: copy_report.elapsed.as_secs_f64(),
        timeline: progress.timeline.spans(),
    };
    Ok(report)
}

/// What one copy-and-apply pass did.
#[derive(Debug)]
pub struct Pass {
    pub applied: Vec<AppliedLog>,
    pub outcome: Outcome,
    /// Why the pass stopped early (`Failed`, or `ChainBroken` by a restore's gap error).
    pub error: Option<CatchupError>,
    pub copy_report: CopyReport,
}

/// Copies the plan's files and applies its chain, pipelined: each log is restored, in LSN order,
/// as soon as its copy is verified. `on_applied` hears of each log at once (the watch reports
/// latency from it). Catch-up calls this once; `catchup --watch` once per change on the share.
pub async fn copy_and_apply(
    s: &Settings,
    plan: &Plan,
    restorer: &mut Restorer,
    journal: &mut Journal,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
    on_applied: &mut (dyn FnMut(&AppliedLog) + Send),
) -> Result<Pass, CatchupError> {
    if !s.dest_dir.exists() {
        std::fs::create_dir_all(&s.dest_dir).map_err(|source| copy::CopyError::DestWrite {
            path: s.dest_dir.clone(),
            source,
        })?;
    }

    // The copy runs on its own threads and announces each verified file.
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Vouched)>();
    let jobs = chain_jobs(plan);
    let consumed = Arc::new(AtomicUsize::new(0));
    let copier = {
        let dest = s.dest_dir.clone();
        let opts = CopyOptions {
            low_priority: true,
            // The restore reads each copy next; its pages go after the restore.
            keep_cached: true,
            consumed: Some(consumed.clone()),
            ..s.copy.clone()
        };
        let progress = progress.clone();
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || -> Result<CopyReport, copy::CopyError> {
            let announce = move |v: &copy::VerifiedFile| {
                let vouched = Vouched {
                    hash: v.blake3,
                    stamp: v.stamp,
                };
                let _ = tx.send((v.name.clone(), vouched));
            };
            copy::copy_files(&jobs, &dest, &opts, progress.as_ref(), &announce, &cancel)
        })
    };

    // A copy in place whose source is still on the share waits for the copier's word (kept by
    // the manifest, compared, or copied again): a copy damaged since an earlier run is never
    // restored. A copy whose source is gone is checked against the manifest's hash, if any.
    let (mut ready, damaged) = {
        let dest = s.dest_dir.clone();
        let orphans: Vec<String> = plan
            .to_apply
            .iter()
            .filter(|l| l.copied && l.source.is_none())
            .map(|l| l.name.clone())
            .collect();
        tokio::task::spawn_blocking(move || check_orphan_copies(&dest, orphans))
            .await
            .expect("hashing thread")
    };
    let mut copy_done = false;
    let mut applied = Vec::new();
    let mut outcome = if plan.chain_broken() {
        Outcome::ChainBroken
    } else {
        Outcome::Done
    };
    let mut error: Option<CatchupError> = None;
    progress.apply_begin(
        plan.to_apply.len() as u64,
        plan.to_apply.iter().map(|l| l.size).sum(),
    );

    // The read that proves a copy before its restore runs for the next log while the server
    // restores this one; after a restore, the file's stamp shows nothing wrote to it since.
    let mut prefetch: Option<(String, Check)> = None;
    let start_check = |name: &str, vouched: Option<Vouched>| -> Check {
        let path = s.dest_dir.join(name);
        tokio::task::spawn_blocking(move || match vouched {
            Some(v) => custody::check_before_vouched(&path, &v.hash, v.stamp),
            None => Ok(None),
        })
    };
    for (i, log) in plan.to_apply.iter().enumerate() {
        while !ready.contains_key(&log.name) && !copy_done {
            match rx.recv().await {
                Some((name, vouched)) => {
                    ready.insert(name, Some(vouched));
                }
                None => copy_done = true,
            }
        }
        if cancel.load(Ordering::Relaxed) {
            outcome = Outcome::Cancelled;
            break;
        }
        let Some(vouched) = ready.get(&log.name).copied() else {
            error = Some(CatchupError::CopyFailed {
                name: log.name.clone(),
                message: damaged.get(&log.name).cloned().unwrap_or_default(),
            });
            outcome = Outcome::Failed;
            break;
        };
        let checked = match prefetch.take() {
            Some((name, task)) if name == log.name => task.await,
            _ => start_check(&log.name, vouched).await,
        };
        let stamp = match checked.expect("hashing thread") {
            Ok(stamp) => stamp,
            Err(message) => {
                error = Some(CatchupError::CopyFailed {
                    name: log.name.clone(),
                    message,
                });
                outcome = Outcome::Failed;
                break;
            }
        };
        let next = plan.to_apply.get(i + 1);
        let prefetch_next = |ready: &Ready, prefetch: &mut Option<(String, Check)>| {
            if let (None, Some(n)) = (prefetch.as_ref(), next) {
                if let Some(h) = ready.get(&n.name) {
                    *prefetch = Some((n.name.clone(), start_check(&n.name, *h)));
                }
            }
        };
        prefetch_next(&ready, &mut prefetch);
        let target = LogToRestore {
            name: log.name.clone(),
            path_on_server: server_path(&s.dest_on_server, &log.name),
            position: log.position,
            first_lsn: log.first_lsn,
            last_lsn: log.last_lsn,
        };
        let report_to = progress.clone();
        let name = log.name.clone();
        let on_percent: ProgressFn = Arc::new(move |p| report_to.apply_percent(&name, p));
        progress.timeline.start("apply", &log.name);
        let t0 = progress.timeline.now();
        let restored = {
            let restore = restorer.restore_log(&target, &on_percent);
            tokio::pin!(restore);
            loop {
                tokio::select! {
                    r = &mut restore => break r,
                    got = rx.recv(), if !copy_done => match got {
                        Some((name, vouched)) => {
                            ready.insert(name, Some(vouched));
                            prefetch_next(&ready, &mut prefetch);
                        }
                        None => copy_done = true,
                    },
                }
            }
        };
        match restored {
            Ok(how) => {
                let already_in = how == Applied::AlreadyIn;
                journal.append_relaxed(Event::LogApplied {
                    name: log.name.clone(),
                    first_lsn: log.first_lsn,
                    last_lsn: log.last_lsn,
                    already_in,
                })?;
                consumed.fetch_add(1, Ordering::Relaxed);
                // Bytes changed while the server read them are in the database.
                let path = s.dest_dir.join(&log.name);
                // A stamp that still matches is one stat, here, rather than a hop to a blocking
                // thread and back (two wake-ups, each of which can wait for a time slice while
                // the copy keeps the cores busy); without one, the content is read there.
                let changed = match (already_in, vouched) {
                    (false, Some(v)) if !custody::still_stamped(&path, stamp) => {
                        let path = path.clone();
                        !tokio::task::spawn_blocking(move || {
                            custody::hash_matches(&path, &v.hash).unwrap_or(false)
                        })
                        .await
                        .expect("hashing thread")
                    }
                    _ => false,
                };
                // Restored: nothing reads this copy again soon, so its pages make room for the
                // copies still to come. Off the restore path: nothing waits for it.
                if !already_in {
                    tokio::task::spawn_blocking(move || copy::forget_cached(&path));
                }
                if changed {
                    journal.append(Event::LogChangedDuringRestore {
                        name: log.name.clone(),
                    })?;
                    error = Some(CatchupError::ChangedDuringRestore {
                        name: log.name.clone(),
                    });
                    outcome = Outcome::Failed;
                    break;
                }
                progress.timeline.end(
                    "apply",
                    &log.name,
                    true,
                    if already_in { "already in" } else { "" },
                );
                progress.log_applied(&log.name, log.last_lsn, log.size);
                let done = AppliedLog {
                    name: log.name.clone(),
                    first_lsn: log.first_lsn,
                    last_lsn: log.last_lsn,
                    bytes: log.size,
                    already_in,
                    seconds: progress.timeline.now() - t0,
                };
                on_applied(&done);
                applied.push(done);
            }
            Err(e) => {
                progress
                    .timeline
                    .end("apply", &log.name, false, e.to_string());
                outcome = match e {
                    RestoreError::Gap { .. } => Outcome::ChainBroken,
                    _ => Outcome::Failed,
                };
                error = Some(e.into());
                break;
            }
        }
    }
    // The copy goes on to its end (later files are still worth having), unless cancelled.
    if outcome == Outcome::Cancelled {
        cancel.store(true, Ordering::Relaxed);
    }
    drop(rx);
    let copy_report = copier.await.expect("copy thread")?;
    progress.finish();
    if let Some(CatchupError::CopyFailed { name, message }) = &mut error {
        if let Some(f) = copy_report.failed.iter().find(|f| &f.name == name) {
            *message = error_chain(&f.error);
        }
    }
    Ok(Pass {
        applied,
        outcome,
        error,
        copy_report,
    })
}

/// An error and its causes on one line, as the report shows it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
