//! `logship plan`: what catch-up would do, changing nothing.

use std::io::Write;
use std::path::PathBuf;

use super::{usage, Status};
use crate::bench::rates::{self, Estimate};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::lsn::Lsn;
use crate::plan::Plan;

pub fn run(_g: &GlobalArgs, a: &PlanArgs) -> anyhow::Result<Status> {
    let (source, dest, database, redo) = match &a.config {
        Some(path) => from_config(path)?,
        None => from_flags(a)?,
    };
    let p = crate::catchup::plan_folders(&database, redo, &source, &dest);
    let estimate = estimate_for(&p);
    print_plan(&p, &estimate, a.json)?;
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

/// The catch-up estimate from the rates the last `logship bench` saved, or why there is none.
pub fn estimate_for(p: &Plan) -> Result<Estimate, String> {
    let Some(path) = rates::default_path() else {
        return Err(
            "no estimate: no cache folder for the measured rates (set LOGSHIP_RATES)".into(),
        );
    };
    match rates::load(&path) {
        Ok(Some(r)) => Ok(rates::estimate(p, &r, Some(&path))),
        Ok(None) => Err(format!(
            "no estimate: no measured rates yet ({} is missing; run logship bench)",
            path.display()
        )),
        Err(e) => Err(format!("no estimate: {}", crate::catchup::error_chain(&e))),
    }
}

pub fn print_plan(p: &Plan, estimate: &Result<Estimate, String>, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        // The plan's fields, plus `estimate` (null when no rates were measured).
        let mut v = serde_json::to_value(p)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "estimate".into(),
                match estimate {
                    Ok(e) => serde_json::to_value(e)?,
                    Err(_) => serde_json::Value::Null,
                },
            );
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
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
        writeln!(out, "{g}")?;
    }
    if let Some(f) = p.final_lsn {
        writeln!(out, "final LSN {f}")?;
    }
    match estimate {
        Ok(e) => print_estimate(&mut out, e)?,
        Err(why) => writeln!(out, "{why}")?,
    }
    Ok(())
}

fn print_estimate(out: &mut impl Write, e: &Estimate) -> std::io::Result<()> {
    let apply = match (e.apply_mib_per_s, e.apply_seconds_per_log) {
        (Some(r), Some(per)) => format!(
            "apply {:.1} s at {r:.0} MiB/s + {:.0} ms/log",
            e.apply_seconds,
            per * 1000.0
        ),
        _ => "apply not estimated (no apply rate measured)".into(),
    };
    writeln!(
        out,
        "estimate (not a measurement): catch-up about {:.1} s (copy {:.1} s at {:.0} MiB/s, {apply})",
        e.seconds, e.copy_seconds, e.copy_mib_per_s
    )?;
    let from = e
        .rates_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let when = crate::backup::MtfDate::from_unix(e.measured_at);
    writeln!(out, "  rates from {from}, measured {when} UTC:")?;
    writeln!(out, "  copy: {}", e.copy_source)?;
    if let Some(a) = &e.apply_source {
        writeln!(out, "  apply: {a}")?;
    }
    Ok(())
}
