//! Reports: the timeline of a run, JSON and a self-contained HTML page.

pub mod html;
mod timeline;

use std::path::Path;

use anyhow::Context;

pub use timeline::{TimeSpan, Timeline};

use crate::catchup::Report as CatchupReport;

/// Writes `value` as pretty JSON to `path` atomically (temporary name, then rename).
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    write_atomic(path, &bytes)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("logship-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// `catchup.json` and `catchup.html` in `dir`.
pub fn write_catchup(dir: &Path, r: &CatchupReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating report folder {}", dir.display()))?;
    write_json_atomic(&dir.join("catchup.json"), r)?;
    let lsn = |l: Option<crate::lsn::Lsn>| l.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
    let facts = vec![
        ("database".to_string(), r.database.clone()),
        ("outcome".to_string(), format!("{:?}", r.outcome)),
        (
            "redo LSN".to_string(),
            format!("{} to {}", lsn(r.redo_before), lsn(r.redo_after)),
        ),
        ("logs applied".to_string(), r.applied.len().to_string()),
        ("bytes copied".to_string(), r.bytes_copied.to_string()),
        ("seconds".to_string(), format!("{:.2}", r.seconds)),
    ];
    write_atomic(
        &dir.join("catchup.html"),
        html::page("logship catch-up", &facts, &r.timeline).as_bytes(),
    )
}

/// `failover.json` and `failover.html` in `dir`.
pub fn write_failover(dir: &Path, r: &crate::failover::Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating report folder {}", dir.display()))?;
    write_json_atomic(&dir.join("failover.json"), r)?;
    let f = &r.final_state;
    let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let mut facts = vec![
        ("database".to_string(), r.database.clone()),
        ("outcome".to_string(), r.outcome.clone()),
        ("database state".to_string(), or_dash(&f.database_state)),
        ("pool state".to_string(), or_dash(&f.pool_state)),
        (
            "mirror installed".to_string(),
            f.mirror_installed
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "active servers".to_string(),
            f.active_servers
                .as_ref()
                .map(|v| v.join(", "))
                .unwrap_or_else(|| "-".into()),
        ),
        ("seconds".to_string(), format!("{:.2}", r.seconds)),
    ];
    if let Some(c) = &r.catchup {
        facts.push(("logs applied".to_string(), c.applied.len().to_string()));
        facts.push(("bytes copied".to_string(), c.bytes_copied.to_string()));
    }
    for s in &r.steps {
        facts.push((s.title.to_string(), format!("{} {}", s.outcome, s.detail)));
    }
    if let Some(e) = &r.error {
        facts.push(("error".to_string(), e.clone()));
    }
    write_atomic(
        &dir.join("failover.html"),
        html::page("logship failover", &facts, &r.timeline).as_bytes(),
    )
}

/// The terminal summary of a failover.
pub fn print_failover(
    out: &mut impl std::io::Write,
    r: &crate::failover::Report,
) -> std::io::Result<()> {
    writeln!(out, "failover of {}: {}", r.database, r.outcome)?;
    for s in &r.steps {
        writeln!(
            out,
            "  {:<55} {:<12} {:>7.2}s  {}",
            s.title,
            s.outcome,
            s.seconds,
            s.detail.lines().next().unwrap_or("")
        )?;
    }
    let f = &r.final_state;
    writeln!(
        out,
        "  database {}, pool {}, mirror installed {}, active servers {}",
        f.database_state.as_deref().unwrap_or("?"),
        f.pool_state.as_deref().unwrap_or("?"),
        f.mirror_installed
            .map(|b| b.to_string())
            .unwrap_or_else(|| "?".into()),
        f.active_servers
            .as_ref()
            .map(|v| v.join(", "))
            .unwrap_or_else(|| "?".into())
    )?;
    if let Some(c) = &r.catchup {
        writeln!(
            out,
            "  catch-up: {} logs applied, {} files ({} MiB) copied in {:.1}s",
            c.applied.len(),
            c.files_copied,
            c.bytes_copied >> 20,
            c.seconds
        )?;
    }
    if let Some(e) = &r.error {
        writeln!(out, "  error: {e}")?;
    }
    writeln!(out, "  total {:.1}s", r.seconds)
}
