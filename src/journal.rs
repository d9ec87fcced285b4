//! The journal: an append-only JSON-lines record of every state change, fsynced per record.
//!
//! Each record is one line, written with one `write` and an fsync before the engine makes the
//! next change, so a crash leaves at most a torn last line, which reading ignores. Appending
//! keeps a long catch-up (thousands of logs) linear, where rewriting one JSON document per log
//! would not be.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::lsn::Lsn;
use crate::sql::snapshot::{Job, Snapshot};

/// One journal record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        command: String,
    },
    /// The facts read before any change; only the first run's snapshot is kept.
    Snapshot {
        snapshot: Box<Snapshot>,
    },
    /// Log shipping jobs disabled for the run, with their state before.
    JobsPaused {
        jobs: Vec<Job>,
    },
    /// The paused jobs were put back as they were.
    JobsRestored,
    LogApplied {
        name: String,
        first_lsn: Lsn,
        last_lsn: Lsn,
        already_in: bool,
    },
    /// The copy of a log changed while SQL Server restored it: the database may hold damaged
    /// log records, so it must not be brought online.
    LogChangedDuringRestore {
        name: String,
    },
    StepStarted {
        step: String,
    },
    StepDone {
        step: String,
        detail: String,
    },
    StepFailed {
        step: String,
        error: String,
    },
    RunFinished {
        outcome: String,
    },
}

/// A record with its time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Seconds since the Unix epoch, UTC.
    pub at: f64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {} line {line}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// An open journal: what earlier runs recorded, and the file to append to.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// `None` for a journal kept in memory only (`--what-if` changes nothing, not even this).
    file: Option<File>,
    records: Vec<Record>,
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads what it holds.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut records = Vec::new();
        // Bytes of whole, parsed records; a torn last record is cut off before appending.
        let mut good_len = 0u64;
        if path.exists() {
            let bytes = std::fs::read(path).map_err(io)?;
            let mut lines = bytes.split_inclusive(|&b| b == b'\n').peekable();
            let mut n = 0;
            while let Some(line) = lines.next() {
                n += 1;
                let last = lines.peek().is_none();
                let text = String::from_utf8_lossy(line);
                if text.trim().is_empty() {
                    good_len += line.len() as u64;
                    continue;
                }
                match serde_json::from_str::<Record>(text.trim_end()) {
                    Ok(r) if line.ends_with(b"\n") => {
                        records.push(r);
                        good_len += line.len() as u64;
                    }
                    // A crash mid-append: that record never happened.
                    Ok(_) | Err(_) if last => {}
                    Ok(_) => unreachable!("only the last line can lack its newline"),
                    Err(e) => {
                        return Err(JournalError::Corrupt {
                            path: path.to_path_buf(),
                            line: n,
                            message: e.to_string(),
                        })
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() != good_len {
            file.set_len(good_len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file: Some(file),
            records,
        })
    }

    /// A journal that records in memory only, starting from what `from` holds.
    pub fn in_memory(from: Option<&Journal>) -> Journal {
        Journal {
            path: from.map(|j| j.path.clone()).unwrap_or_default(),
            file: None,
            records: from.map(|j| j.records.clone()).unwrap_or_default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Appends a record and makes it durable before returning.
    pub fn append(&mut self, event: Event) -> Result<(), JournalError> {
        self.write(event, true)
    }

    /// Appends a record that restates what the server itself keeps durably (a log applied: the
    /// database's redo LSN is the truth). It is written before the next change, so it survives
    /// the engine being killed, but not fsynced: one fsync per log would tie every restore to the
    /// copy's writeback on the same filesystem. The next [`Journal::append`] makes it durable.
    pub fn append_relaxed(&mut self, event: Event) -> Result<(), JournalError> {
        self.write(event, false)
    }

    fn write(&mut self, event: Event, durable: bool) -> Result<(), JournalError> {
        let rec = Record { at: now(), event };
        let mut line = serde_json::to_vec(&rec).expect("journal records serialize");
        line.push(b'\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(file) = &mut self.file {
            file.write_all(&line).map_err(io)?;
            if durable {
                file.sync_data().map_err(io)?;
            }
        }
        self.records.push(rec);
        Ok(())
    }

    /// The first snapshot recorded: the facts as they were before any run changed them.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.records.iter().find_map(|r| match &r.event {
            Event::Snapshot { snapshot } => Some(snapshot.as_ref()),
            _ => None,
        })
    }

    /// Jobs paused by a run and not yet put back.
    pub fn paused_jobs(&self) -> Option<Vec<Job>> {
        let mut paused = None;
        for r in &self.records {
            match &r.event {
                Event::JobsPaused { jobs } => paused = Some(jobs.clone()),
                Event::JobsRestored => paused = None,
                _ => {}
            }
        }
        paused
    }

    /// Logs whose copy changed while SQL Server restored them.
    pub fn changed_during_restore(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| match &r.event {
                Event::LogChangedDuringRestore { name } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether a step finished in an earlier run.
    pub fn step_done(&self, step: &str) -> bool {
        self.records
            .iter()
            .any(|r| matches!(&r.event, Event::StepDone { step: s, .. } if s == step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Event::RunStarted {
            command: "catchup".into(),
        })
        .unwrap();
        j.append(Event::StepDone {
            step: "remove_log_shipping".into(),
            detail: String::new(),
        })
        .unwrap();
        drop(j);
        // A crash in the middle of an append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"at\":1.0,\"event\":\"step_do").unwrap();
        drop(f);
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.records().len(), 2);
        assert!(j.step_done("remove_log_shipping"));
        assert!(!j.step_done("catch_up"));
        j.append(Event::RunFinished {
            outcome: "done".into(),
        })
        .unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.records().len(), 3);
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "garbage\n{\"at\":1.0,\"event\":\"jobs_restored\"}\n").unwrap();
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn paused_jobs_until_restored() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j")).unwrap();
        let job = Job {
            job_id: uuid::Uuid::from_u128(1),
            name: "LSCopy".into(),
            enabled: true,
        };
        j.append(Event::JobsPaused {
            jobs: vec![job.clone()],
        })
        .unwrap();
        assert_eq!(j.paused_jobs(), Some(vec![job]));
        j.append(Event::JobsRestored).unwrap();
        assert_eq!(j.paused_jobs(), None);
    }
}
