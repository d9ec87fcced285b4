//! Pure planning: which logs to apply in LSN order, which files to copy, what to skip and why.
//!
//! No I/O and no clock: the planner takes the database's redo LSN and the headers the scans
//! found, and returns a [`Plan`]. Chain rules (FORMAT.md): consecutive logs meet
//! (`next.FirstLSN == prev.LastLSN`); a log is applied when `FirstLSN <= redo < LastLSN`;
//! empty logs are skipped; the same backup set under two names is one backup.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

use crate::backup::{BackupHeader, BackupType};
use crate::lsn::Lsn;
use crate::scan::{FileKind, ScannedFile};

/// What the planner is given.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    pub database: &'a str,
    /// `sys.master_files.redo_start_lsn`; `None` plans from the files alone, from the oldest log.
    pub redo_lsn: Option<Lsn>,
    /// The copy folder: where copies land and where the applier reads them.
    pub dest_dir: &'a Path,
    /// Files found in the primary's backup share.
    pub source: &'a [ScannedFile],
    /// Files found in the copy folder.
    pub dest: &'a [ScannedFile],
}

/// A log of the chain, in apply order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedLog {
    /// The file name in the copy folder.
    pub name: String,
    /// Where the applier reads it: the copy folder.
    pub path: PathBuf,
    /// The share's file, when the share has it.
    pub source: Option<PathBuf>,
    /// The backup set's position in its file (`WITH FILE = n`).
    pub position: u16,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub size: u64,
    pub backup_set_guid: Uuid,
    /// Already in the copy folder.
    pub copied: bool,
}

/// A file to copy from the share to the copy folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedCopy {
    pub name: String,
    pub source: PathBuf,
    pub dest: PathBuf,
    pub size: u64,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
}

/// Why a file (or one backup set of it) is not part of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `LastLSN <= redo_start_lsn`: the database already has it.
    AlreadyApplied,
    /// `FirstLSN == LastLSN`: carries no log records.
    Empty,
    /// The same backup set as another file.
    Duplicate,
    /// A backup of another database.
    OtherDatabase,
    /// A full, differential, file or partial backup: not part of a log chain.
    NotALog,
    /// No trailer: still being written, or truncated.
    Incomplete,
    /// Log shipping's in-flight `.wrk` copy.
    InFlight,
    /// The native reader could not read it.
    Unreadable,
    /// Comes after a gap in the chain: cannot be applied until the gap is filled.
    AfterGap,
    /// Overlaps the chain without continuing it (another branch or a stale copy).
    NotInChain,
    /// Another backup set already uses this file name in the copy folder.
    NameConflict,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub position: Option<u16>,
    pub reason: SkipReason,
    pub detail: String,
}

/// A hole in the chain: no log covers `from_lsn`; the next log starts at `to_lsn`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from_lsn: Lsn,
    pub to_lsn: Lsn,
    /// The last log before the gap (the last applied one is unknown to the planner).
    pub before: Option<String>,
    /// The first log after the gap.
    pub after: String,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GAP: no log covers LSN {} (after {}); the next log, {}, starts at {}",
            self.from_lsn,
            self.before.as_deref().unwrap_or("the database's redo LSN"),
            self.after,
            self.to_lsn
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub database: String,
    pub redo_lsn: Option<Lsn>,
    pub to_copy: Vec<PlannedCopy>,
    pub to_apply: Vec<PlannedLog>,
    pub skipped: Vec<Skipped>,
    pub gaps: Vec<Gap>,
    /// The redo LSN once every log of `to_apply` is in.
    pub final_lsn: Option<Lsn>,
}

impl Plan {
    /// A gap cuts the chain before the newest log: some logs cannot be applied.
    pub fn chain_broken(&self) -> bool {
        !self.gaps.is_empty()
    }

    pub fn bytes_to_copy(&self) -> u64 {
        self.to_copy.iter().map(|c| c.size).sum()
    }
}

/// One usable log backup set and where it is.
#[derive(Clone, Debug)]
struct Candidate<'a> {
    header: &'a BackupHeader,
    size: u64,
    name: String,
    source: Option<&'a Path>,
    dest: Option<&'a Path>,
}

/// SQL Server compares database names case-insensitively under the usual collations.
fn same_database(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

pub fn plan(input: &PlanInput) -> Plan {
    let mut skipped = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    // Backup set identity: the GUID, and the LSN range (the same set under two names).
    let mut by_guid: HashMap<Uuid, usize> = HashMap::new();
    let mut by_range: HashMap<(Lsn, Lsn), usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();

    // The copy folder first: a set present there is already copied.
    let files = input
        .dest
        .iter()
        .map(|f| (f, true))
        .chain(input.source.iter().map(|f| (f, false)));
    for (file, in_dest) in files {
        let skip = |reason, position, detail: String| Skipped {
            path: file.path.clone(),
            position,
            reason,
            detail,
        };
        match file.kind {
            FileKind::Internal => continue,
            FileKind::InFlight => {
                skipped.push(skip(
                    SkipReason::InFlight,
                    None,
                    "log shipping is still copying it (.wrk)".into(),
                ));
                continue;
            }
            FileKind::Backup => {}
        }
        let headers = match &file.headers {
            Ok(h) => h,
            Err(e) => {
                skipped.push(skip(SkipReason::Unreadable, None, e.kind.to_string()));
                continue;
            }
        };
        for h in headers {
            let pos = Some(h.position);
            if !same_database(&h.database_name, input.database) {
                skipped.push(skip(
                    SkipReason::OtherDatabase,
                    pos,
                    format!("database {}", h.database_name),
                ));
                continue;
            }
            if !h.complete {
                skipped.push(skip(
                    SkipReason::Incomplete,
                    pos,
                    "no trailer: being written or truncated".into(),
                ));
                continue;
            }
            if h.backup_type != BackupType::Log {
                skipped.push(skip(
                    SkipReason::NotALog,
                    pos,
                    format!("{} backup", h.backup_type),
                ));
                continue;
            }
            if h.is_empty_log() {
                skipped.push(skip(
                    SkipReason::Empty,
                    pos,
                    format!("FirstLSN = LastLSN = {}", h.first_lsn),
                ));
                continue;
            }
            let existing = by_guid
                .get(&h.backup_set_guid)
                .or_else(|| by_range.get(&(h.first_lsn, h.last_lsn)));
            if let Some(&i) = existing {
                let c = &mut candidates[i];
                // The same set in the share and the copy folder is one backup, found twice.
                if !in_dest && c.source.is_none() && c.name == file.name() {
                    c.source = Some(&file.path);
                    continue;
                }
                let of = c
                    .dest
                    .or(c.source)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                skipped.push(skip(
                    SkipReason::Duplicate,
                    pos,
                    format!("same backup set as {of}"),
                ));
                continue;
            }
            let name = file.name();
            if let Some(&i) = names.get(&name) {
                if !in_dest {
                    let other = &candidates[i];
                    skipped.push(skip(
                        SkipReason::NameConflict,
                        pos,
                        format!(
                            "{name} in the copy folder holds another backup set ({})",
                            other.header.backup_set_guid
                        ),
                    ));
                    continue;
                }
            }
            let idx = candidates.len();
            by_guid.insert(h.backup_set_guid, idx);
            by_range.insert((h.first_lsn, h.last_lsn), idx);
            names.entry(name.clone()).or_insert(idx);
            candidates.push(Candidate {
                header: h,
                size: file.size,
                name,
                source: (!in_dest).then_some(file.path.as_path()),
                dest: in_dest.then_some(file.path.as_path()),
            });
        }
    }

    let (to_apply, chain_skips, gaps) = build_chain(input, &candidates);
    skipped.extend(chain_skips);

    let to_copy = to_apply
        .iter()
        .filter(|l| !l.copied)
        .map(|l| PlannedCopy {
            name: l.name.clone(),
            source: l
                .source
                .clone()
                .expect("a log not in the copy folder comes from the share"),
            dest: l.path.clone(),
            size: l.size,
            first_lsn: l.first_lsn,
            last_lsn: l.last_lsn,
        })
        .collect();
    let final_lsn = to_apply.last().map(|l| l.last_lsn).or(input.redo_lsn);
    skipped.sort_by(|a, b| (&a.path, a.position).cmp(&(&b.path, b.position)));
    Plan {
        database: input.database.to_string(),
        redo_lsn: input.redo_lsn,
        to_copy,
        to_apply,
        skipped,
        gaps,
        final_lsn,
    }
}

/// Orders the candidates by LSN and follows the chain from the redo LSN.
fn build_chain(
    input: &PlanInput,
    candidates: &[Candidate],
) -> (Vec<PlannedLog>, Vec<Skipped>, Vec<Gap>) {
    let mut skipped = Vec::new();
    let mut gaps = Vec::new();
    let mut to_apply = Vec::new();
    let skip = |c: &Candidate, reason, detail: String| Skipped {
        path: c
            .dest
            .or(c.source)
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        position: Some(c.header.position),
        reason,
        detail,
    };

    // Sorted by FirstLSN, then LastLSN; BTreeMap keys are unique after deduplication.
    let mut pending: BTreeMap<(Lsn, Lsn), &Candidate> = BTreeMap::new();
    for c in candidates {
        pending.insert((c.header.first_lsn, c.header.last_lsn), c);
    }
    let mut current = match input.redo_lsn {
        Some(redo) => redo,
        None => match pending.keys().next() {
            Some(&(first, _)) => first,
            None => return (to_apply, skipped, gaps),
        },
    };
    if let Some(redo) = input.redo_lsn {
        pending.retain(|_, c| {
            if c.header.last_lsn <= redo {
                skipped.push(skip(
                    c,
                    SkipReason::AlreadyApplied,
                    format!("LastLSN {} <= redo LSN {redo}", c.header.last_lsn),
                ));
                false
            } else {
                true
            }
        });
    }

    let mut last_name: Option<String> = None;
    loop {
        // Every pending log with FirstLSN <= current either covers `current` (LastLSN > current)
        // or lies wholly behind the chain; each is looked at once, so the walk is O(n log n).
        let reachable: Vec<(Lsn, Lsn)> = pending
            .range(..=(current, Lsn::MAX))
            .map(|(k, _)| *k)
            .collect();
        if reachable.is_empty() {
            if let Some((&(first, _), c)) = pending.iter().next() {
                gaps.push(Gap {
                    from_lsn: current,
                    to_lsn: first,
                    before: last_name.clone(),
                    after: c.name.clone(),
                });
                for o in pending.values() {
                    skipped.push(skip(
                        o,
                        SkipReason::AfterGap,
                        format!("the chain stops at {current}: no log covers it"),
                    ));
                }
            }
            break;
        }
        // The covering log that reaches furthest continues the chain.
        let best = reachable
            .iter()
            .filter(|k| k.1 > current)
            .max_by_key(|k| k.1)
            .copied();
        let mut chosen = None;
        for key in reachable {
            let c = pending.remove(&key).expect("key from the map");
            if Some(key) == best {
                chosen = Some(c);
            } else {
                skipped.push(skip(
                    c,
                    SkipReason::NotInChain,
                    format!("overlaps the chain at {current} without continuing it"),
                ));
            }
        }
        let Some(c) = chosen else { continue };
        to_apply.push(PlannedLog {
            name: c.name.clone(),
            path: input.dest_dir.join(&c.name),
            source: c.source.map(Path::to_path_buf),
            position: c.header.position,
            first_lsn: c.header.first_lsn,
            last_lsn: c.header.last_lsn,
            size: c.size,
            backup_set_guid: c.header.backup_set_guid,
            copied: c.dest.is_some(),
        });
        current = c.header.last_lsn;
        last_name = Some(c.name.clone());
    }
    (to_apply, skipped, gaps)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
