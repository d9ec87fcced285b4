//! The simulator's persistent state (`state.json` in the state folder): databases, msdb
//! log-shipping rows and jobs, user sessions, faults; and the restore history, appended to
//! `history.jsonl`. Written atomically after every change: new history lines first, then
//! `state.json` (temp file, rename) with the count of history lines it commits.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lsn::Lsn;

pub const STATE_FILE: &str = "state.json";
/// The restore history, one JSON line per restore; only the first `history_len` lines count.
pub const HISTORY_FILE: &str = "history.jsonl";
/// The environment variable `logship sim init` reads the login's password from.
pub const PASSWORD_ENV: &str = "LOGSHIP_SIM_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a simulator state: {source}", path = .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DbState {
    Online,
    Restoring,
    /// RESTORING with a STANDBY undo file: read-only and readable (`is_in_standby` = 1).
    Standby,
}

impl DbState {
    pub fn desc(self) -> &'static str {
        match self {
            DbState::Online => "ONLINE",
            DbState::Restoring | DbState::Standby => "RESTORING",
        }
    }
    pub fn code(self) -> i64 {
        match self {
            DbState::Online => 0,
            DbState::Restoring | DbState::Standby => 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    pub id: i64,
    pub state: DbState,
    pub redo_start_lsn: Option<Lsn>,
    pub redo_start_fork_guid: Option<Uuid>,
    pub standby_file: Option<String>,
    /// A RESTORE LOG was cut off while it ran (client gone, simulator killed): the file it was
    /// restoring. The next RESTORE LOG without RESTART gets error 4319.
    pub interrupted: Option<String>,
    /// Milliseconds since the Unix epoch when RESTORE WITH RECOVERY brought it ONLINE.
    #[serde(default)]
    pub recovered_unix_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LsSecondary {
    pub secondary_id: Uuid,
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub file_retention_period: i32,
    pub last_copied_file: Option<String>,
    pub copy_job_id: Uuid,
    pub restore_job_id: Uuid,
    pub monitor_server: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LsSecondaryDb {
    pub secondary_database: String,
    pub secondary_id: Uuid,
    /// 0 = NORECOVERY, 1 = STANDBY.
    pub restore_mode: u8,
    pub disconnect_users: bool,
    pub last_restored_file: Option<String>,
    pub restore_delay: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: Uuid,
    pub name: String,
    pub enabled: bool,
}

/// A killed session on its way back: it reconnects to `database` at `due_unix_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returning {
    pub database: String,
    pub due_unix_ms: u64,
}

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A user connected to a database (simulated: no socket behind it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSession {
    pub spid: u16,
    pub database: String,
    /// Comes back under a new session id after KILL (an application pool reconnecting).
    pub reconnect: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Drop the connection when the next RESTORE LOG reaches this percent.
    pub drop_at_percent: Option<u8>,
    /// Fail the next K RESTORE statements with 3101 (exclusive access).
    pub fail_restores_3101: u32,
    /// Delay every response by this many milliseconds.
    pub slow_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub database: String,
    pub path: String,
    pub backup_set_guid: Uuid,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    /// Seconds since the Unix epoch when the restore finished.
    pub finished_unix: u64,
    pub pages: u64,
    /// BLAKE3 of the file as the restore read it: tests compare it with the source backup.
    #[serde(default)]
    pub blake3: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    pub server_name: String,
    pub login: String,
    /// BLAKE3 of salt + password, hex; the password itself is never stored.
    pub password_hash: String,
    pub salt: String,
    pub databases: Vec<Database>,
    pub log_shipping_secondary: Vec<LsSecondary>,
    pub log_shipping_secondary_databases: Vec<LsSecondaryDb>,
    pub jobs: Vec<Job>,
    pub sessions: Vec<UserSession>,
    pub next_spid: u16,
    pub faults: Faults,
    /// Restore throughput in MiB/s; None = as fast as the disk reads.
    pub restore_mib_per_s: Option<f64>,
    /// Whether each restore hashes what it reads into its history entry (see
    /// [`Scenario::hash_restores`]).
    #[serde(default = "yes")]
    pub hash_restores: bool,
    /// How long a reconnecting session stays away after KILL.
    pub reconnect_after_ms: u64,
    /// Killed sessions that will reconnect (kept across restarts of the simulator).
    #[serde(default)]
    pub returning: Vec<Returning>,
    /// Every restore, oldest first. Kept in `history.jsonl`, not in `state.json` (a state from
    /// before that split holds it inline and is read as it is), so that a restore appends one
    /// line instead of rewriting the whole history.
    #[serde(default, skip_serializing)]
    pub history: Vec<HistoryEntry>,
    /// How many lines of `history.jsonl` this state commits; later lines are from a save cut short.
    #[serde(default)]
    pub history_len: usize,
    /// Entries of `history` in the history file, and the bytes they take there.
    #[serde(skip)]
    history_saved: (usize, u64),
}

impl SimState {
    pub fn password_ok(&self, password: &str) -> bool {
        hash_password(&self.salt, password) == self.password_hash
    }

    pub fn db(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    pub fn db_mut(&mut self, name: &str) -> Option<&mut Database> {
        self.databases
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// A fresh session id (51 and up, as SQL Server gives user sessions), not in `taken`.
    pub fn alloc_spid(&mut self, taken: &dyn Fn(u16) -> bool) -> u16 {
        loop {
            let id = self.next_spid;
            self.next_spid = if id >= 32000 { 51 } else { id + 1 };
            if !taken(id) && !self.sessions.iter().any(|s| s.spid == id) {
                return id;
            }
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn yes() -> bool {
    true
}

pub fn hash_password(salt: &str, password: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(salt.as_bytes());
    h.update(password.as_bytes());
    h.finalize().to_hex().to_string()
}

/// What `logship sim init` (and tests) set up.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub server_name: String,
    pub database: String,
    pub standby: bool,
    pub redo_lsn: Lsn,
    pub fork_guid: Uuid,
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub file_retention_period: i32,
    pub last_copied_file: Option<String>,
    pub last_restored_file: Option<String>,
    pub disconnect_users: bool,
    pub restore_delay: i32,
    /// Without log shipping rows (already removed).
    pub no_log_shipping: bool,
    pub jobs_enabled: bool,
    pub login: String,
    pub password: String,
    pub sessions: u16,
    pub reconnecting_sessions: u16,
    pub reconnect_after_ms: u64,
    pub faults: Faults,
    pub restore_mib_per_s: Option<f64>,
    /// BLAKE3 what each restore reads, for tests to compare with the source (on by default).
    /// A SQL Server does not hash what it restores: off, the stand-in spends on a restore what
    /// its rate models and no more, which the pipeline benchmark needs, since the simulator
    /// shares the machine's cores with the engine it measures (the hash alone is about
    /// 0.2 CPU-seconds per GiB here).
    pub hash_restores: bool,
}

impl Scenario {
    /// A RESTORING `mgc` at `redo_lsn`, log shipping from `source` to `dest`, jobs enabled.
    pub fn new(
        database: &str,
        redo_lsn: Lsn,
        source: &str,
        dest: &str,
        password: &str,
    ) -> Scenario {
        Scenario {
            server_name: "ATL-SQL-002".into(),
            database: database.into(),
            standby: false,
            redo_lsn,
            fork_guid: Uuid::from_u128(0x6f1e_2b3a_4c5d_4e6f_8a9b_0c1d_2e3f_4a5b),
            primary_server: "ATL-SQL-001".into(),
            primary_database: database.into(),
            backup_source_directory: source.into(),
            backup_destination_directory: dest.into(),
            file_retention_period: 4320,
            last_copied_file: None,
            last_restored_file: None,
            disconnect_users: false,
            restore_delay: 0,
            no_log_shipping: false,
            jobs_enabled: true,
            login: "failover".into(),
            password: password.into(),
            sessions: 0,
            reconnecting_sessions: 0,
            reconnect_after_ms: 200,
            faults: Faults::default(),
            restore_mib_per_s: None,
            hash_restores: true,
        }
    }

    pub fn build(&self) -> SimState {
        let name_seed = blake3::hash(self.database.as_bytes());
        let id = |k: u8| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&name_seed.as_bytes()[..16]);
            b[0] ^= k;
            uuid::Builder::from_random_bytes(b).into_uuid()
        };
        let salt = {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            blake3::hash(format!("{}-{}", t.as_nanos(), std::process::id()).as_bytes()).to_hex()
                [..16]
                .to_string()
        };
        let (secondary_id, copy_job, restore_job) = (id(1), id(2), id(3));
        let mut st = SimState {
            server_name: self.server_name.clone(),
            login: self.login.clone(),
            password_hash: hash_password(&salt, &self.password),
            salt,
            databases: vec![
                sysdb("master", 1),
                sysdb("tempdb", 2),
                sysdb("model", 3),
                sysdb("msdb", 4),
                Database {
                    name: self.database.clone(),
                    id: 5,
                    state: if self.standby {
                        DbState::Standby
                    } else {
                        DbState::Restoring
                    },
                    redo_start_lsn: Some(self.redo_lsn),
                    redo_start_fork_guid: Some(self.fork_guid),
                    standby_file: None,
                    interrupted: None,
                    recovered_unix_ms: None,
                },
            ],
            log_shipping_secondary: Vec::new(),
            log_shipping_secondary_databases: Vec::new(),
            jobs: Vec::new(),
            sessions: Vec::new(),
            next_spid: 51,
            faults: self.faults.clone(),
            restore_mib_per_s: self.restore_mib_per_s,
            hash_restores: self.hash_restores,
            reconnect_after_ms: self.reconnect_after_ms,
            returning: Vec::new(),
            history: Vec::new(),
            history_len: 0,
            history_saved: (0, 0),
        };
        if !self.no_log_shipping {
            let tag = format!("{}_{}", self.primary_server, self.primary_database);
            st.log_shipping_secondary.push(LsSecondary {
                secondary_id,
                primary_server: self.primary_server.clone(),
                primary_database: self.primary_database.clone(),
                backup_source_directory: self.backup_source_directory.clone(),
                backup_destination_directory: self.backup_destination_directory.clone(),
                file_retention_period: self.file_retention_period,
                last_copied_file: self.last_copied_file.clone(),
                copy_job_id: copy_job,
                restore_job_id: restore_job,
                monitor_server: self.server_name.clone(),
            });
            st.log_shipping_secondary_databases.push(LsSecondaryDb {
                secondary_database: self.database.clone(),
                secondary_id,
                restore_mode: self.standby as u8,
                disconnect_users: self.disconnect_users,
                last_restored_file: self.last_restored_file.clone(),
                restore_delay: self.restore_delay,
            });
            st.jobs.push(Job {
                job_id: copy_job,
                name: format!("LSCopy_{tag}"),
                enabled: self.jobs_enabled,
            });
            st.jobs.push(Job {
                job_id: restore_job,
                name: format!("LSRestore_{tag}"),
                enabled: self.jobs_enabled,
            });
        }
        for k in 0..self.sessions {
            let spid = st.alloc_spid(&|_| false);
            st.sessions.push(UserSession {
                spid,
                database: self.database.clone(),
                reconnect: k < self.reconnecting_sessions,
            });
        }
        st
    }
}

fn sysdb(name: &str, id: i64) -> Database {
    Database {
        name: name.into(),
        id,
        state: DbState::Online,
        redo_start_lsn: None,
        redo_start_fork_guid: None,
        standby_file: None,
        interrupted: None,
        recovered_unix_ms: None,
    }
}

/// Writes the scenario's state into `dir` (created if missing).
pub fn init(dir: &Path, scenario: &Scenario) -> Result<SimState, StateError> {
    fs::create_dir_all(dir).map_err(|source| StateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut st = scenario.build();
    save(dir, &mut st)?;
    Ok(st)
}

pub fn load(dir: &Path) -> Result<SimState, StateError> {
    let path = dir.join(STATE_FILE);
    let bytes = fs::read(&path).map_err(|source| StateError::Io {
        path: path.clone(),
        source,
    })?;
    let mut st: SimState =
        serde_json::from_slice(&bytes).map_err(|source| StateError::Parse { path, source })?;
    if st.history.is_empty() {
        load_history(dir, &mut st)?;
    }
    Ok(st)
}

/// Reads the first `history_len` lines of the history file into `st.history`.
fn load_history(dir: &Path, st: &mut SimState) -> Result<(), StateError> {
    let path = dir.join(HISTORY_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && st.history_len == 0 => return Ok(()),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let mut used = 0u64;
    for line in bytes.split_inclusive(|b| *b == b'\n').take(st.history_len) {
        if line.last() != Some(&b'\n') {
            break; // a torn line is past the committed ones
        }
        let e = serde_json::from_slice(line).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        st.history.push(e);
        used += line.len() as u64;
    }
    if st.history.len() != st.history_len {
        return Err(StateError::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} restores in the history, {} committed by {STATE_FILE}",
                    st.history.len(),
                    st.history_len
                ),
            ),
        });
    }
    st.history_saved = (st.history.len(), used);
    Ok(())
}

/// Atomic save: temp file, fsync, rename over `state.json`, fsync of the folder.
/// Set to `1` to fsync the simulator's state at every change (durable across power loss).
pub const FSYNC_ENV: &str = "LOGSHIP_SIM_FSYNC";

/// Whether saves are fsynced. Without it a save is still atomic (temporary file, rename), which is
/// what killing the simulator needs; the fsyncs are off by default because they would make the
/// stand-in's own bookkeeping, not the engine, the cost that benchmarks measure.
fn fsync_state() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var(FSYNC_ENV).is_ok_and(|v| v == "1"))
}

/// Writes the state atomically: new history lines appended, then a temporary file renamed over
/// `state.json`, which commits them.
pub fn save(dir: &Path, st: &mut SimState) -> Result<(), StateError> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(".state.json.tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StateError::Io { path: p, source }
    };
    append_history(dir, st)?;
    st.history_len = st.history.len();
    let bytes = serde_json::to_vec_pretty(&*st).expect("state serializes");
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&bytes).map_err(io(&tmp))?;
    let durable = fsync_state();
    if durable {
        f.sync_all().map_err(io(&tmp))?;
    }
    drop(f);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    if durable {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Appends the entries of `st.history` not yet in the history file, over any lines past the
/// committed ones (left by a save cut short).
fn append_history(dir: &Path, st: &mut SimState) -> Result<(), StateError> {
    let (mut saved, mut bytes) = st.history_saved;
    if saved == st.history.len() {
        return Ok(());
    }
    if saved > st.history.len() {
        (saved, bytes) = (0, 0); // history was cut in memory: write it again
    }
    let path = dir.join(HISTORY_FILE);
    let io = |source| StateError::Io {
        path: path.clone(),
        source,
    };
    let mut buf = Vec::new();
    for e in &st.history[saved..] {
        serde_json::to_writer(&mut buf, e).expect("history serializes");
        buf.push(b'\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    f.set_len(bytes).map_err(io)?;
    f.seek(SeekFrom::Start(bytes)).map_err(io)?;
    f.write_all(&buf).map_err(io)?;
    if fsync_state() {
        f.sync_data().map_err(io)?;
    }
    st.history_saved = (st.history.len(), bytes + buf.len() as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new("mgc", Lsn::new(39, 488, 71), "/share", "/copy", "pw");
        sc.sessions = 3;
        sc.reconnecting_sessions = 1;
        let st = init(dir.path(), &sc).unwrap();
        let back = load(dir.path()).unwrap();
        assert_eq!(st, back);
        assert!(back.password_ok("pw") && !back.password_ok("PW"));
        assert!(
            !String::from_utf8(fs::read(dir.path().join(STATE_FILE)).unwrap())
                .unwrap()
                .contains("\"pw\"")
        );
        assert_eq!(
            back.sessions.iter().map(|s| s.spid).collect::<Vec<_>>(),
            vec![51, 52, 53]
        );
        assert_eq!(back.jobs.len(), 2);
    }

    #[test]
    fn a_state_written_before_hash_restores_existed_still_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new("mgc", Lsn::new(39, 488, 71), "/share", "/copy", "pw");
        sc.hash_restores = false;
        init(dir.path(), &sc).unwrap();
        assert!(!load(dir.path()).unwrap().hash_restores);
        let path = dir.path().join(STATE_FILE);
        let mut json: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        json.as_object_mut()
            .unwrap()
            .remove("hash_restores")
            .unwrap();
        fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        assert!(load(dir.path()).unwrap().hash_restores);
    }

    fn entry(n: u64) -> HistoryEntry {
        HistoryEntry {
            blake3: None,
            database: "mgc".into(),
            path: format!("/copy/mgc_{n}.trn"),
            backup_set_guid: Uuid::nil(),
            first_lsn: Lsn::new(39, n as u32, 1),
            last_lsn: Lsn::new(39, n as u32 + 1, 1),
            finished_unix: n,
            pages: n,
        }
    }

    #[test]
    fn history_is_appended_and_only_committed_lines_count() {
        let dir = tempfile::tempdir().unwrap();
        let sc = Scenario::new("mgc", Lsn::new(39, 488, 71), "/share", "/copy", "pw");
        let mut st = init(dir.path(), &sc).unwrap();
        for n in 1..=3 {
            st.history.push(entry(n));
            save(dir.path(), &mut st).unwrap();
        }
        let hist = dir.path().join(HISTORY_FILE);
        let lines = |p: &Path| fs::read_to_string(p).unwrap().lines().count();
        assert_eq!(lines(&hist), 3, "one line per restore, none written twice");
        assert!(!fs::read_to_string(dir.path().join(STATE_FILE))
            .unwrap()
            .contains("mgc_1.trn"));
        assert_eq!(load(dir.path()).unwrap().history, st.history);

        // A save cut between its history line and its state file: the line is not committed,
        // and the next save writes over it (and over a torn line after it).
        let mut f = OpenOptions::new().append(true).open(&hist).unwrap();
        f.write_all(b"{\"torn\": ").unwrap();
        let mut back = load(dir.path()).unwrap();
        assert_eq!(back.history.len(), 3);
        back.history.push(entry(4));
        save(dir.path(), &mut back).unwrap();
        assert_eq!(lines(&hist), 4);
        assert_eq!(load(dir.path()).unwrap().history.len(), 4);

        // A history file missing committed lines is an error, not a shorter history.
        fs::write(&hist, b"").unwrap();
        assert!(load(dir.path()).is_err());
    }
}
