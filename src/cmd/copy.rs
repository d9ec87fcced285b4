//! `logship copy`: pick the candidates, run the copy engine with a progress display, print the
//! summary (text or `--json`), exit 1 if any file failed.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::cli::{CopyArgs, GlobalArgs};
use crate::config::parse_size;
use crate::copy::{
    check_dest, copy_files, is_backup_name, CopyError, CopyJob, CopyOptions, CopyReport,
    VerifiedFile, VerifyMode, DEFAULT_BUFFER, DEFAULT_WORKERS,
};
use crate::plan::{self, PlanInput};
use crate::progress::Progress;
use crate::scan::{self, FileKind};

use super::{usage, Status};

/// Test knob: milliseconds to pause after each buffer, so tests can interrupt a copy midway.
pub const THROTTLE_ENV: &str = "LOGSHIP_COPY_THROTTLE_MS";

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
    let progress = if g.quiet {
        Progress::hidden()
    } else {
        Progress::copy_only(!g.no_progress)
    };
    let cancel = AtomicBool::new(false);
    let report = copy_files(
        &jobs,
        &a.dest,
        &opts,
        &progress,
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

/// The files to consider, in copy order, from the backups' own headers.
///
/// Default: what the log chain still needs (the plan's chain, in chain order; with no server
/// to ask, the chain runs from the oldest log found). `--all`: every complete backup of the
/// database, as the runbook's step 2 literally says, logs in LSN order first. `--database` may be
/// left out when the share holds backups of one database only.
fn candidates(a: &CopyArgs) -> anyhow::Result<Vec<CopyJob>> {
    let source = scan::scan(std::slice::from_ref(&a.source));
    let database = match &a.database {
        Some(d) => d.clone(),
        None => only_database(&source)?,
    };
    if a.all {
        let mut sets: Vec<(&crate::backup::BackupHeader, &scan::ScannedFile)> = source
            .iter()
            .filter(|f| f.kind == FileKind::Backup)
            .filter_map(|f| f.headers.as_ref().ok().map(|h| (h, f)))
            .flat_map(|(hs, f)| hs.iter().map(move |h| (h, f)))
            .filter(|(h, _)| h.complete && h.database_name.eq_ignore_ascii_case(&database))
            .collect();
        sets.sort_by_key(|(h, _)| {
            (
                h.backup_type != crate::backup::BackupType::Log,
                h.first_lsn,
                h.last_lsn,
            )
        });
        let mut jobs: Vec<CopyJob> = Vec::new();
        for (_, f) in sets {
            if !jobs.iter().any(|j| j.source == f.path) {
                jobs.push(CopyJob {
                    source: f.path.clone(),
                    name: f.name(),
                    size: f.size,
                });
            }
        }
        // A backup the native reader cannot read (compressed, encrypted, or not readable by this
        // user) may still be one of the database's: copy it too, so the server can read it or
        // the failure is reported by name.
        for f in source
            .iter()
            .filter(|f| f.kind == FileKind::Backup && is_backup_name(&f.name()))
        {
            if let Err(e) = &f.headers {
                if e.server_may_read() || matches!(e.kind, crate::backup::ReadErrorKind::Io(_)) {
                    jobs.push(CopyJob {
                        source: f.path.clone(),
                        name: f.name(),
                        size: f.size,
                    });
                }
            }
        }
        return Ok(jobs);
    }
    let dest = if a.dest.exists() {
        scan::scan(std::slice::from_ref(&a.dest))
    } else {
        Vec::new()
    };
    let p = plan::plan(&PlanInput {
        database: &database,
        redo_lsn: None,
        dest_dir: &a.dest,
        source: &source,
        dest: &dest,
    });
    for g in &p.gaps {
        tracing::warn!(
            "gap in the chain after {}: no log covers LSN {}",
            g.before.as_deref().unwrap_or("-"),
            g.from_lsn
        );
    }
    Ok(crate::catchup::chain_jobs(&p))
}

/// The one database whose backups the share holds, when `--database` is not given.
fn only_database(files: &[scan::ScannedFile]) -> anyhow::Result<String> {
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| f.headers.as_ref().ok())
        .flatten()
        .map(|h| h.database_name.clone())
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(usage("no readable backup in the source folder")),
        many => Err(usage(format!(
            "the share holds backups of several databases ({}): pass --database",
            many.join(", ")
        ))),
    }
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
        low_priority: false,
        keep_cached: false,
        consumed: None,
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
