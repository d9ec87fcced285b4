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
