//! `logship plan`: what catch-up would do, changing nothing.

use std::io::Write;
use std::path::PathBuf;

use super::{usage, Status};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::lsn::Lsn;
use crate::plan::{self, Plan, PlanInput};
use crate::scan;

pub fn run(_g: &GlobalArgs, a: &PlanArgs) -> anyhow::Result<Status> {
    let (source, dest, database, redo) = match &a.config {
        Some(path) => from_config(path)?,
        None => from_flags(a)?,
    };
    let p = plan_dirs(&database, redo, &source, &dest);
    print_plan(&p, a.json)?;
    Ok(if p.chain_broken() {
        Status::ChainBroken
    } else {
        Status::Done
    })
}

/// The share, copy folder and database from the configuration; the redo LSN from the server.
fn from_config(path: &std::path::Path) -> anyhow::Result<(PathBuf, PathBuf, String, Option<Lsn>)> {
    let cfg = crate::config::Config::load(path)?;
    let connector = super::catchup::connector(&cfg)?;
    let rt = tokio::runtime::Runtime::new()?;
    let state = rt.block_on(async {
        let mut conn = connector
            .connect(Some(std::time::Duration::from_secs(60)))
            .await?;
        let st = crate::sql::snapshot::database_state(&mut conn, &cfg.database).await;
        conn.close().await;
        st
    })?;
    let state = state.ok_or_else(|| {
        anyhow::anyhow!(
            "database {} does not exist on {}",
            cfg.database,
            connector.addr
        )
    })?;
    if state.redo_start_lsn.is_none() {
        tracing::warn!(
            "database {} is {}: no redo LSN, planning from the oldest log",
            cfg.database,
            state.state_desc
        );
    }
    Ok((
        cfg.source_dir.clone(),
        cfg.dest_dir.clone(),
        cfg.database.clone(),
        state.redo_start_lsn,
    ))
}

fn from_flags(a: &PlanArgs) -> anyhow::Result<(PathBuf, PathBuf, String, Option<Lsn>)> {
    let source = a
        .source
        .clone()
        .ok_or_else(|| usage("--source is required (or --config)"))?;
    let dest = a
        .dest
        .clone()
        .ok_or_else(|| usage("--dest is required (or --config)"))?;
    let database = a
        .database
        .clone()
        .ok_or_else(|| usage("--database is required (or --config)"))?;
    let redo = match &a.redo_lsn {
        Some(s) => Some(
            s.parse::<Lsn>()
                .map_err(|e| usage(format!("--redo-lsn: {e}")))?,
        ),
        None => None,
    };
    Ok((source, dest, database, redo))
}

/// Scans the share and the copy folder and plans. A missing copy folder is an empty one.
pub fn plan_dirs(
    database: &str,
    redo: Option<Lsn>,
    source: &std::path::Path,
    dest: &std::path::Path,
) -> Plan {
    let src = scan::scan(&[source.to_path_buf()]);
    let dst = if dest.exists() {
        scan::scan(&[dest.to_path_buf()])
    } else {
        Vec::new()
    };
    plan::plan(&PlanInput {
        database,
        redo_lsn: redo,
        dest_dir: dest,
        source: &src,
        dest: &dst,
    })
}

pub fn print_plan(p: &Plan, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, p)?;
        writeln!(out)?;
        return Ok(());
    }
    let redo = p
        .redo_lsn
        .map(|l| l.to_string())
        .unwrap_or_else(|| "unknown (from the oldest log)".into());
    writeln!(out, "database {}  redo LSN {redo}", p.database)?;
    writeln!(
        out,
        "to copy: {} files, {} bytes; to apply: {} logs",
        p.to_copy.len(),
        p.bytes_to_copy(),
        p.to_apply.len()
    )?;
    for (i, l) in p.to_apply.iter().enumerate() {
        let state = if l.copied { "copied" } else { "to copy" };
        writeln!(
            out,
            "  {:>5}  {}  {} .. {}  ({state})",
            i + 1,
            l.name,
            l.first_lsn,
            l.last_lsn
        )?;
    }
    for s in &p.skipped {
        writeln!(
            out,
            "  skipped {}: {:?}: {}",
            s.path.display(),
            s.reason,
            s.detail
        )?;
    }
    for g in &p.gaps {
        writeln!(
            out,
            "GAP: no log covers LSN {} (after {}); the next log, {}, starts at {}",
            g.from_lsn,
            g.before.as_deref().unwrap_or("the database's redo LSN"),
            g.after,
            g.to_lsn
        )?;
    }
    if let Some(f) = p.final_lsn {
        writeln!(out, "final LSN {f}")?;
    }
    Ok(())
}
