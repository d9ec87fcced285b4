//! What is uncopied: which candidates need a copy, which only a hash check, which are already
//! verified; what counts as a backup file on the share; leftovers of a crashed run.

use std::fs;
use std::io;
use std::path::Path;

use super::manifest::{to_ns, Manifest, ManifestEntry};
use super::{CopyError, CopyJob, PART_SUFFIX};

/// What a job needs, judged from the copy folder's listing and the manifest (no content read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// In place, and the manifest vouches for it (same size and mtime): nothing to read.
    Skip(ManifestEntry),
    /// In place with the right size but no verified hash: hash both sides; copy if they differ.
    HashCheck,
    /// Absent, or present with another size.
    Copy,
}

/// A job and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub job: CopyJob,
    pub action: Action,
}

/// The decision for one job, from what the copy folder holds under its name (size and mtime in
/// nanoseconds, `None` when absent) and the manifest. Pure.
pub fn decide(job: &CopyJob, in_dest: Option<(u64, u64)>, manifest: &Manifest) -> Action {
    match in_dest {
        None => Action::Copy,
        Some((size, _)) if size != job.size => Action::Copy,
        Some((size, mtime)) => match manifest.verified(&job.name, size, mtime) {
            Some(e) => Action::Skip(e.clone()),
            None => Action::HashCheck,
        },
    }
}

/// Size and mtime of `dest/name` if it is a regular file.
pub(crate) fn dest_state(dest: &Path, name: &str) -> Option<(u64, u64)> {
    let meta = fs::symlink_metadata(dest.join(name)).ok()?;
    if !meta.is_file() {
        return None;
    }
    Some((meta.len(), meta.modified().map(to_ns).unwrap_or(0)))
}

/// The candidates that are not yet verified in `dest`, in the given order, each with what it needs
/// (`Action::Copy` or `Action::HashCheck`). Stats the copy folder; reads no content.
pub fn select_uncopied(candidates: &[CopyJob], dest: &Path, manifest: &Manifest) -> Vec<Pending> {
    candidates
        .iter()
        .filter_map(
            |job| match decide(job, dest_state(dest, &job.name), manifest) {
                Action::Skip(_) => None,
                action => Some(Pending {
                    job: job.clone(),
                    action,
                }),
            },
        )
        .collect()
}

/// Whether a file name on the share is a backup: `.trn`, `.bak`, `.dif` or `.log` (any case), not
/// hidden. Log shipping's in-flight `.wrk` files and our own `.logship-part` temps never are.
pub fn is_backup_name(name: &str) -> bool {
    if name.starts_with('.') {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    [".trn", ".bak", ".dif", ".log"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// Every backup file directly in `source` (log shipping writes a flat folder), sorted by name,
/// which for log shipping's `DB_YYYYMMDDhhmmss.trn` names is chronological.
pub fn discover_backups(source: &Path) -> Result<Vec<CopyJob>, walkdir::Error> {
    let mut jobs = Vec::new();
    for entry in walkdir::WalkDir::new(source)
        .min_depth(1)
        .max_depth(1)
        .sort_by_file_name()
    {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str() else {
            continue;
        };
        if !is_backup_name(name) {
            continue;
        }
        let size = entry.metadata()?.len();
        jobs.push(CopyJob {
            source: entry.path().to_path_buf(),
            name: name.to_string(),
            size,
        });
    }
    Ok(jobs)
}

/// Removes `.NAME.logship-part` files (and write probes) a crashed run left in the copy folder;
/// returns how many.
pub fn remove_leftovers(dest: &Path) -> Result<usize, CopyError> {
    let list = |source: io::Error| CopyError::DestList {
        path: dest.to_path_buf(),
        source,
    };
    let mut n = 0;
    for entry in fs::read_dir(dest).map_err(list)? {
        let entry = entry.map_err(list)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let probe = name.starts_with(".logship-probe-");
        if probe || (name.starts_with('.') && name.ends_with(PART_SUFFIX)) {
            match fs::remove_file(entry.path()) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CopyError::DestWrite {
                        path: entry.path(),
                        source,
                    })
                }
            }
        }
    }
    super::manifest::remove_leftover_tmp(dest);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::VerifiedBy;

    #[test]
    fn backup_names() {
        let cases = [
            ("mgc_20240101120000.trn", true),
            ("MGC_FULL.BAK", true),
            ("mgc.dif", true),
            ("mgc_tail.log", true),
            ("mgc_20240101120000.wrk", false),
            (".mgc_1.trn.logship-part", false),
            (".hidden.trn", false),
            ("readme.txt", false),
            (".trn", false),
            ("trn", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_backup_name(name), want, "{name}");
        }
    }

    #[test]
    fn decisions() {
        let job = CopyJob {
            source: "/s/a.trn".into(),
            name: "a.trn".into(),
            size: 100,
        };
        let mut m = Manifest::default();
        let e = ManifestEntry {
            size: 100,
            mtime_ns: 7,
            blake3: "00".into(),
            verified_at: 0,
            verify: VerifiedBy::Reread,
        };
        m.files.insert("a.trn".into(), e.clone());
        let empty = Manifest::default();
        type Case<'a> = (Option<(u64, u64)>, &'a Manifest, Action);
        let cases: [Case; 6] = [
            (None, &m, Action::Copy),
            (Some((99, 7)), &m, Action::Copy),
            (Some((100, 7)), &m, Action::Skip(e.clone())),
            (Some((100, 8)), &m, Action::HashCheck),
            (Some((100, 7)), &empty, Action::HashCheck),
            (Some((0, 7)), &empty, Action::Copy),
        ];
        for (state, man, want) in cases {
            assert_eq!(decide(&job, state, man), want, "{state:?}");
        }
    }
}
