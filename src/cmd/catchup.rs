//! `logship catchup`: copy and apply the chain against the configured secondary.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use super::{usage, Status};
use crate::catchup::{self, Outcome, Report, Settings};
use crate::cli::{CatchupArgs, GlobalArgs};
use crate::config::{Config, SqlAuth};
use crate::copy::{CopyOptions, VerifyMode, DEFAULT_WORKERS};
use crate::journal::{Event, Journal};
use crate::progress::Progress;
use crate::sql::restore::{Restorer, RetryPolicy};
use crate::sql::{read_password, server_path, Connector, RestoreMode};

pub fn run(g: &GlobalArgs, a: &CatchupArgs) -> anyhow::Result<Status> {
    if a.watch {
        return super::watch::run(g, a);
    }
    let cfg = Config::load(&a.config)?;
    let settings = settings(&cfg, a.pause_jobs, a.run.workers, a.run.verify.as_deref())?;
    let connector = connector(&cfg)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(async {
        let cancel = cancel_on_ctrl_c();
        let mut journal = Journal::open(&cfg.journal_path())?;
        journal.append(Event::RunStarted {
            command: "catchup".into(),
        })?;
        let mut restorer = restorer(&connector, &cfg);
        let progress = Arc::new(if a.run.json || g.quiet {
            Progress::hidden()
        } else {
            Progress::new(!g.no_progress)
        });
        let report = catchup::run(&settings, &mut restorer, &mut journal, progress, cancel).await;
        let outcome = match &report {
            Ok(r) => format!("{:?}", r.outcome).to_lowercase(),
            Err(e) => format!("failed: {}", catchup::error_chain(e)),
        };
        journal.append(Event::RunFinished { outcome })?;
        restorer.close().await;
        anyhow::Ok(report?)
    })?;
    finish(&report, a.run.json, a.run.report.as_deref())
}

/// Prints the report and maps its outcome to an exit status.
pub(crate) fn finish(
    report: &Report,
    json: bool,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<Status> {
    if let Some(dir) = dir {
        crate::report::write_catchup(dir, report)?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        print_summary(&mut out, report)?;
    }
    Ok(match report.outcome {
        Outcome::Done => Status::Done,
        Outcome::ChainBroken => Status::ChainBroken,
        Outcome::Failed | Outcome::Cancelled => Status::Failed,
    })
}

fn print_summary(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let lsn = |l: Option<crate::lsn::Lsn>| l.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
    writeln!(out, "catch-up of {}: {:?}", r.database, r.outcome)?;
    writeln!(
        out,
        "  redo LSN {} -> {}",
        lsn(r.redo_before),
        lsn(r.redo_after)
    )?;
    let restored = r.applied.iter().filter(|l| !l.already_in).count();
    writeln!(
        out,
        "  logs applied: {restored} (already in: {})",
        r.applied.len() - restored
    )?;
    writeln!(
        out,
        "  files copied: {} ({} MiB, verify {}), already verified: {}",
        r.files_copied,
        r.bytes_copied >> 20,
        r.verify,
        r.files_already_verified
    )?;
    writeln!(
        out,
        "  time: {:.1} s (copy {:.1} s)",
        r.seconds, r.copy_seconds
    )?;
    for f in &r.copy_failed {
        writeln!(out, "  copy failed: {f}")?;
    }
    for g in &r.gaps {
        writeln!(out, "  {g}")?;
    }
    if let Some(e) = &r.error {
        writeln!(out, "  error: {e}")?;
    }
    Ok(())
}

/// Catch-up settings from the configuration and the flags.
pub(crate) fn settings(
    cfg: &Config,
    pause_jobs: bool,
    workers: Option<usize>,
    verify: Option<&str>,
) -> anyhow::Result<Settings> {
    let verify: VerifyMode = verify.unwrap_or(&cfg.copy.verify).parse().map_err(usage)?;
    let workers = workers.or(cfg.copy.workers).unwrap_or(DEFAULT_WORKERS);
    if workers == 0 {
        return Err(usage("workers must be at least 1"));
    }
    Ok(Settings {
        database: cfg.database.clone(),
        source_dir: cfg.source_dir.clone(),
        dest_dir: cfg.dest_dir.clone(),
        dest_on_server: cfg.dest_on_server(),
        standby_undo: standby_undo(cfg),
        pause_jobs,
        copy: CopyOptions {
            workers,
            verify,
            ..CopyOptions::default()
        },
    })
}

/// The undo file for STANDBY restores: in the copy folder, next to the copies (RUNBOOK.md: it
/// must survive until the next restore).
fn standby_undo(cfg: &Config) -> String {
    let safe: String = cfg
        .database
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    server_path(&cfg.dest_on_server(), &format!("{safe}_undo.tuf"))
}

/// The connector, with the password from the environment or a prompt.
pub(crate) fn connector(cfg: &Config) -> anyhow::Result<Connector> {
    let password = match cfg.sql.auth {
        SqlAuth::Sql | SqlAuth::Windows => Some(read_password(&cfg.sql)?),
        SqlAuth::Integrated => None,
    };
    Ok(Connector::new(&cfg.sql, password)?)
}

/// The restorer; its mode (NORECOVERY or STANDBY) is set from the snapshot by catch-up.
pub(crate) fn restorer(connector: &Connector, cfg: &Config) -> Restorer {
    Restorer::new(
        connector.clone(),
        &cfg.database,
        RestoreMode::NoRecovery,
        RetryPolicy::default(),
    )
}

/// A flag set by Ctrl-C (and SIGTERM): the engine stops between statements.
pub(crate) fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted: stopping after the current statement");
            flag.store(true, Ordering::Relaxed);
        }
    });
    #[cfg(unix)]
    {
        let flag = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                term.recv().await;
                tracing::warn!("terminated: stopping after the current statement");
                flag.store(true, Ordering::Relaxed);
            }
        });
    }
    cancel
}
