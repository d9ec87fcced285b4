//! Repeated looks at a folder: headers read once per file version, and which files are ready.
//!
//! A backup counts only when it is complete: not log shipping's `.wrk`, every backup set has its
//! trailer, and its size and modification time were the same at two looks in a row. A file the
//! primary is still writing (under its final name, as the backup job does) fails one of these.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rayon::prelude::*;

use crate::backup::{self, ReadError, ReadErrorKind};
use crate::scan::{FileKind, ScannedFile};

/// What one look saw of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Version {
    size: u64,
    modified: Option<SystemTime>,
}

#[derive(Clone, Debug)]
struct Entry {
    version: Version,
    /// Consecutive looks, after the first, that saw the same version.
    same_looks: u32,
    /// When a look first saw this version.
    since: Instant,
    file: ScannedFile,
}

/// The result of a look.
#[derive(Clone, Debug, Default)]
pub struct Look {
    /// Every file, as a scan would report it.
    pub files: Vec<ScannedFile>,
    /// Files that may be applied: complete, and the same at two looks.
    pub ready: Vec<ScannedFile>,
    /// Files that changed less than the settle time ago (look again soon).
    pub moving: usize,
    /// When the first of those may be called stable.
    pub settles_in: Option<Duration>,
    /// Something appeared, changed or disappeared since the previous look.
    pub changed: bool,
    /// Files that stopped changing but are not ready (no trailer, unreadable, `.wrk`), with how
    /// long they have been the same: a truncated backup or a copy that died.
    pub stalled: Vec<(ScannedFile, Duration)>,
}

/// A folder looked at again and again; headers are reread only for files that changed.
#[derive(Debug)]
pub struct Folder {
    root: PathBuf,
    /// How long a version must stay the same, over two looks, to count as stable.
    settle: Duration,
    entries: HashMap<PathBuf, Entry>,
}

/// Whether a file may be applied: a backup (not `.wrk`, not ours), readable, every set complete,
/// and `stable` (the same size and time at two looks at least the settle time apart).
pub fn is_ready(
    kind: FileKind,
    headers: &Result<Vec<crate::backup::BackupHeader>, ReadError>,
    stable: bool,
) -> bool {
    kind == FileKind::Backup
        && stable
        && headers
            .as_ref()
            .is_ok_and(|h| !h.is_empty() && h.iter().all(|h| h.complete))
}

impl Folder {
    pub fn new(root: &Path, settle: Duration) -> Folder {
        Folder {
            root: root.to_path_buf(),
            settle,
            entries: HashMap::new(),
        }
    }

    /// Lists the folder, rereads what changed, and says what is ready. A file that vanishes
    /// (retention cleanup) simply leaves the listing; a folder that cannot be listed looks empty
    /// for this look (a share that drops for a moment is not a failure while watching).
    pub fn look(&mut self) -> Look {
        let mut now: Vec<(PathBuf, Version)> = Vec::new();
        for e in walkdir::WalkDir::new(&self.root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .flatten()
        {
            if !e.file_type().is_file() || FileKind::of(e.path()) == FileKind::Internal {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let version = Version {
                size: meta.len(),
                modified: meta.modified().ok(),
            };
            now.push((e.into_path(), version));
        }
        let mut changed = now.len() != self.entries.len();
        let to_read: Vec<(PathBuf, Version)> = now
            .iter()
            .filter(|(p, v)| self.entries.get(p).is_none_or(|e| e.version != *v))
            .cloned()
            .collect();
        let read: Vec<(PathBuf, Version, ScannedFile)> = to_read
            .into_par_iter()
            .map(|(path, version)| {
                let file = read_one(&path, version);
                (path, version, file)
            })
            .collect();
        let mut fresh: HashMap<PathBuf, Entry> = HashMap::with_capacity(now.len());
        for (path, version, file) in read {
            changed = true;
            fresh.insert(
                path,
                Entry {
                    version,
                    same_looks: 0,
                    since: Instant::now(),
                    file,
                },
            );
        }
        for (path, _) in &now {
            if fresh.contains_key(path) {
                continue;
            }
            if let Some(mut e) = self.entries.remove(path) {
                e.same_looks = e.same_looks.saturating_add(1);
                // A file read at its first look is read again once: its headers may have been
                // read while the last bytes were being written.
                if e.same_looks == 1 {
                    e.file = read_one(path, e.version);
                }
                fresh.insert(path.clone(), e);
            }
        }
        self.entries = fresh;
        let mut files: Vec<&Entry> = self.entries.values().collect();
        files.sort_by(|a, b| a.file.path.cmp(&b.file.path));
        let stable = |e: &Entry| e.same_looks >= 1 && e.since.elapsed() >= self.settle;
        Look {
            ready: files
                .iter()
                .filter(|e| is_ready(e.file.kind, &e.file.headers, stable(e)))
                .map(|e| e.file.clone())
                .collect(),
            moving: files.iter().filter(|e| !stable(e)).count(),
            settles_in: files
                .iter()
                .filter(|e| !stable(e))
                .map(|e| {
                    // Seen once: the second look must come at least the settle time later.
                    self.settle
                        .saturating_sub(e.since.elapsed())
                        .max(Duration::from_millis(10))
                })
                .min(),
            stalled: files
                .iter()
                .filter(|e| {
                    stable(e)
                        && e.file.kind != FileKind::Internal
                        && !is_ready(e.file.kind, &e.file.headers, true)
                })
                .map(|e| (e.file.clone(), e.since.elapsed()))
                .collect(),
            files: files.iter().map(|e| e.file.clone()).collect(),
            changed,
        }
    }
}

fn read_one(path: &Path, v: Version) -> ScannedFile {
    let kind = FileKind::of(path);
    let headers = if kind == FileKind::Internal {
        Err(ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::Io("internal file".into()),
        })
    } else {
        backup::read_file(path)
    };
    ScannedFile {
        path: path.to_path_buf(),
        kind,
        size: v.size,
        modified: v.modified,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::synth::SynthBackup;
    use crate::backup::MtfDate;
    use crate::lsn::Lsn;

    fn header(complete: bool) -> crate::backup::BackupHeader {
        let mut b = SynthBackup::log(
            "db",
            Lsn::new(10, 16, 1),
            Lsn::new(10, 50, 1),
            MtfDate::from_unix(1_767_571_200),
            1,
        );
        b.complete = complete;
        b.header(Path::new("db_1.trn"))
    }

    #[test]
    fn readiness_table() {
        let unreadable = Err(ReadError {
            path: "x".into(),
            kind: ReadErrorKind::Io("gone".into()),
        });
        let cases = [
            (FileKind::Backup, Ok(vec![header(true)]), true, true),
            // Not yet the same at two looks: the size may still grow.
            (FileKind::Backup, Ok(vec![header(true)]), false, false),
            // No trailer yet.
            (FileKind::Backup, Ok(vec![header(false)]), true, false),
            (
                FileKind::Backup,
                Ok(vec![header(true), header(false)]),
                true,
                false,
            ),
            (FileKind::Backup, Ok(vec![]), true, false),
            (FileKind::InFlight, Ok(vec![header(true)]), true, false),
            (FileKind::Internal, Ok(vec![header(true)]), true, false),
            (FileKind::Backup, unreadable, true, false),
        ];
        for (i, (kind, headers, stable, want)) in cases.into_iter().enumerate() {
            assert_eq!(is_ready(kind, &headers, stable), want, "case {i}");
        }
    }

    #[test]
    fn a_growing_file_is_ready_only_after_two_same_looks() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = SynthBackup::log(
            "db",
            Lsn::new(10, 16, 1),
            Lsn::new(10, 50, 1),
            MtfDate::from_unix(1_767_571_200),
            1,
        );
        b.log_bytes = 8192;
        let mut bytes = Vec::new();
        b.write_to(&mut bytes).unwrap();
        let path = dir.path().join("db_1.trn");
        let mut folder = Folder::new(dir.path(), Duration::from_millis(30));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let l = folder.look();
        assert!(l.changed && l.moving == 1 && l.ready.is_empty());
        let l = folder.look();
        assert!(l.ready.is_empty(), "half a file has no trailer");
        assert!(l.stalled.is_empty(), "too soon to call it stalled");
        std::thread::sleep(Duration::from_millis(40));
        let l = folder.look();
        assert_eq!(l.stalled.len(), 1, "half a file, unchanged: stalled");
        std::fs::write(&path, &bytes).unwrap();
        let l = folder.look();
        assert!(l.changed && l.ready.is_empty(), "complete but seen once");
        let l = folder.look();
        assert!(l.ready.is_empty(), "seen twice, but too soon");
        assert_eq!(l.moving, 1);
        std::thread::sleep(Duration::from_millis(40));
        let l = folder.look();
        assert_eq!(l.ready.len(), 1);
        assert_eq!(l.moving, 0);
        assert!(!l.changed);
        std::fs::remove_file(&path).unwrap();
        let l = folder.look();
        assert!(l.changed && l.files.is_empty(), "retention removed it");
    }
}
