//! Walking folders, parallel header reads, file identity.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;
use serde::Serialize;

use crate::backup::{self, BackupHeader, ReadError, ReadErrorKind};
pub use crate::copy::{MANIFEST_NAME, PART_SUFFIX};

/// The journal's default name, in the copy folder.
pub const JOURNAL_NAME: &str = ".logship-journal.jsonl";

/// What a file found in a folder is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A file to read as a backup.
    Backup,
    /// Log shipping's in-flight copy (`.wrk`): renamed when complete, never a backup yet.
    InFlight,
    /// logship's own bookkeeping (manifest, temporary copies): not a backup.
    Internal,
}

impl FileKind {
    pub fn of(path: &Path) -> FileKind {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with(".logship-")
            || name.ends_with(PART_SUFFIX)
            || name.ends_with(".logship-tmp")
        {
            FileKind::Internal
        } else if name.to_ascii_lowercase().ends_with(".wrk") {
            FileKind::InFlight
        } else {
            FileKind::Backup
        }
    }
}

/// One file found by a scan, with its headers or the reason they could not be read.
#[derive(Clone, Debug)]
pub struct ScannedFile {
    pub path: PathBuf,
    pub kind: FileKind,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub headers: Result<Vec<BackupHeader>, ReadError>,
}

impl ScannedFile {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Walks `paths` (files are taken as given, folders walked, following links with loop detection)
/// and reads every backup's headers in parallel. Results are sorted by path.
///
/// A file that vanishes between listing and reading (retention cleanup on a live share) is left
/// out, not reported: it is no longer there to copy. Walk errors (a link loop, an unreadable
/// folder) become entries whose `headers` is the error, so one bad entry never stops a scan.
pub fn scan(paths: &[PathBuf]) -> Vec<ScannedFile> {
    let mut found: Vec<(PathBuf, Option<ReadError>)> = Vec::new();
    for root in paths {
        if root.is_file() {
            found.push((root.clone(), None));
            continue;
        }
        for entry in walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    if e.depth() == 0 || FileKind::of(e.path()) != FileKind::Internal {
                        found.push((e.into_path(), None));
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    let path = err
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    if is_not_found(&err) && path != *root {
                        continue;
                    }
                    let kind = ReadErrorKind::Io(walk_message(&err));
                    found.push((path.clone(), Some(ReadError { path, kind })));
                }
            }
        }
    }
    let mut out: Vec<ScannedFile> = found
        .into_par_iter()
        .filter_map(|(path, walk_err)| match walk_err {
            Some(e) => Some(ScannedFile {
                kind: FileKind::Backup,
                size: 0,
                modified: None,
                headers: Err(e),
                path,
            }),
            None => read_one(path),
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Scans the primary's share and the copy folder; a copy folder that does not exist yet is empty.
pub fn scan_share_and_copies(source: &Path, dest: &Path) -> (Vec<ScannedFile>, Vec<ScannedFile>) {
    let src = scan(&[source.to_path_buf()]);
    let dst = if dest.exists() {
        scan(&[dest.to_path_buf()])
    } else {
        Vec::new()
    };
    (src, dst)
}

/// Reads one file; `None` when it vanished before it could be opened.
fn read_one(path: PathBuf) -> Option<ScannedFile> {
    let kind = FileKind::of(&path);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            let err = ReadError {
                path: path.clone(),
                kind: ReadErrorKind::Io(e.to_string()),
            };
            return Some(ScannedFile {
                path,
                kind,
                size: 0,
                modified: None,
                headers: Err(err),
            });
        }
    };
    let headers = backup::read_file(&path);
    if let Err(ReadError {
        kind: ReadErrorKind::Io(_),
        ..
    }) = &headers
    {
        if !path.exists() {
            return None;
        }
    }
    Some(ScannedFile {
        kind,
        size: meta.len(),
        modified: meta.modified().ok(),
        headers,
        path,
    })
}

fn is_not_found(err: &walkdir::Error) -> bool {
    err.io_error()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

fn walk_message(err: &walkdir::Error) -> String {
    if let Some(ancestor) = err.loop_ancestor() {
        return format!("folder link loop back to {}", ancestor.display());
    }
    match err.io_error() {
        Some(io) => io.to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        let cases = [
            ("mgc_20240101000000.trn", FileKind::Backup),
            ("mgc_20240101000000.wrk", FileKind::InFlight),
            ("MGC_20240101000000.WRK", FileKind::InFlight),
            (".mgc_20240101000000.trn.logship-part", FileKind::Internal),
            (MANIFEST_NAME, FileKind::Internal),
            ("full.bak", FileKind::Backup),
        ];
        for (name, want) in cases {
            assert_eq!(FileKind::of(Path::new(name)), want, "{name}");
        }
    }
}
