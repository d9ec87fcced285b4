//! `logship headers`: the native RESTORE HEADERONLY over files and folders.

use std::io::Write;

use serde::Serialize;

use super::Status;
use crate::backup::BackupHeader;
use crate::cli::{GlobalArgs, HeadersArgs};
use crate::scan;

/// A file the reader could not read: one row naming it and the reason.
#[derive(Serialize)]
struct ErrorRow<'a> {
    path: &'a std::path::Path,
    error: String,
}

pub fn run(_g: &GlobalArgs, a: &HeadersArgs) -> anyhow::Result<Status> {
    let files = scan::scan(&a.paths);
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    if !a.json {
        writeln!(out, "{}", table_header())?;
    }
    for f in &files {
        match &f.headers {
            Ok(sets) => {
                for h in sets {
                    if a.json {
                        serde_json::to_writer(&mut out, h)?;
                        writeln!(out)?;
                    } else {
                        writeln!(out, "{}", table_row(h))?;
                    }
                }
            }
            Err(e) => {
                failed += 1;
                if a.json {
                    serde_json::to_writer(
                        &mut out,
                        &ErrorRow {
                            path: &f.path,
                            error: e.kind.to_string(),
                        },
                    )?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{}: error: {}", f.path.display(), e.kind)?;
                }
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        tracing::warn!(
            files = files.len(),
            unreadable = failed,
            "some files could not be read"
        );
        return Ok(Status::Failed);
    }
    Ok(Status::Done)
}

fn table_header() -> String {
    format!(
        "{:<40} {:>3} {:<12} {:<16} {:>20} {:>20} {:<19} {:>12} {}",
        "FILE", "POS", "TYPE", "DATABASE", "FIRST_LSN", "LAST_LSN", "STARTED", "SIZE", "COMPLETE"
    )
}

fn table_row(h: &BackupHeader) -> String {
    let name = h
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = h
        .backup_start_date
        .map(|d| d.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{:<40} {:>3} {:<12} {:<16} {:>20} {:>20} {:<19} {:>12} {}",
        name,
        h.position,
        h.backup_type.as_str(),
        h.database_name,
        h.first_lsn.to_string(),
        h.last_lsn.to_string(),
        started,
        h.backup_size,
        if h.complete { "yes" } else { "no" }
    )
}
