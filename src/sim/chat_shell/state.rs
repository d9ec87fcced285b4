//! The simulated pool's state: the JSON file in the state folder, written atomically, and the
//! lock that lets one shell at a time read, check and write it.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::chat::PoolState;

/// The state file inside the state folder.
pub const STATE_FILE: &str = "chat-pool.json";

#[derive(Debug, thiserror::Error)]
pub enum ChatShellError {
    #[error("chat shell state {path} cannot be read (create it with `logship sim chat-shell --state DIR init --pool FQDN`)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("chat shell state {path} is not valid: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("chat shell state {path} cannot be written")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("chat shell state already exists in {0} (use --force to replace it)")]
    Exists(PathBuf),
}

/// Everything the simulated pool knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatShellState {
    pub pools: Vec<Pool>,
    /// SQL servers Install-CsMirrorDatabase accepts (empty: any).
    pub sql_servers: Vec<String>,
    /// Modules Import-Module finds.
    pub modules: Vec<String>,
    /// Installed mirrors by database type (`PersistentChat`, ...).
    pub mirrors: BTreeMap<String, Mirror>,
    pub fault: Fault,
    /// Every change applied, in order.
    pub log: Vec<LogEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub fqdn: String,
    pub state: PoolState,
    /// The Persistent Chat servers of the pool (from the topology).
    pub servers: Vec<String>,
    pub active_servers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mirror {
    pub sql_server_fqdn: String,
    pub sql_instance_name: Option<String>,
    pub file_share: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Fail the next N Lync cmdlets.
    pub fail_next: u32,
    /// Fail them after their change took effect (a lost reply), not before.
    pub after: bool,
    /// The next shell run sleeps this long before running its script (a hung cmdlet).
    #[serde(default)]
    pub hang_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub cmdlet: String,
    pub target: String,
    pub detail: serde_json::Value,
    /// Milliseconds since the Unix epoch when the change took effect: tests compare it with the
    /// simulated secondary's recovery time to prove the order across the two systems.
    #[serde(default)]
    pub unix_ms: u64,
}

impl ChatShellState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    pub fn load(dir: &Path) -> Result<ChatShellState, ChatShellError> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| ChatShellError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ChatShellError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Writes the state atomically: a temporary file, fsync, rename over the old one.
    pub fn save(&self, dir: &Path) -> Result<(), ChatShellError> {
        let path = Self::path(dir);
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| ChatShellError::Write { path, source })
    }

    /// A new state with one pool in the Normal state and no active server.
    pub fn new_pool(fqdn: &str, servers: &[String], sql_servers: &[String]) -> ChatShellState {
        ChatShellState {
            pools: vec![Pool {
                fqdn: fqdn.to_string(),
                state: PoolState::Normal,
                servers: servers.to_vec(),
                active_servers: Vec::new(),
            }],
            sql_servers: sql_servers.to_vec(),
            modules: vec!["Lync".into(), "SkypeForBusiness".into()],
            ..ChatShellState::default()
        }
    }

    /// The number of times `cmdlet` took effect.
    pub fn applied(&self, cmdlet: &str) -> usize {
        self.log.iter().filter(|e| e.cmdlet == cmdlet).count()
    }
}

/// `logship sim chat-shell --state DIR init`: refuses to replace a state unless `force`.
pub fn init(dir: &Path, state: &ChatShellState, force: bool) -> Result<(), ChatShellError> {
    std::fs::create_dir_all(dir).map_err(|source| ChatShellError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    if !force && ChatShellState::path(dir).exists() {
        return Err(ChatShellError::Exists(dir.to_path_buf()));
    }
    state.save(dir)
}

/// How long a lock file may stand before it is taken for the leftover of a killed shell.
const STALE_LOCK: Duration = Duration::from_secs(10);

/// One shell at a time per state folder: a read-check-write by one script must not interleave
/// with another's (an engine killed and restarted while its last shell still runs). A lock file
/// created exclusively, so it works on every platform; one older than [`STALE_LOCK`] is the
/// leftover of a shell killed while holding it, and is taken over.
pub struct StateLock {
    path: PathBuf,
}

impl StateLock {
    pub fn acquire(dir: &Path) -> Result<StateLock, ChatShellError> {
        let path = dir.join(format!(".{STATE_FILE}.lock"));
        let fail = |source| ChatShellError::Write {
            path: path.clone(),
            source,
        };
        let started = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(StateLock { path }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|a| a > STALE_LOCK) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > 2 * STALE_LOCK {
                        return Err(fail(std::io::Error::new(
                            ErrorKind::TimedOut,
                            "the state stayed locked",
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(ChatShellError::Read {
                        path: ChatShellState::path(dir),
                        source: e,
                    })
                }
                Err(e) => return Err(fail(e)),
            }
        }
    }

    pub fn release(self) -> Result<(), ChatShellError> {
        std::fs::remove_file(&self.path).map_err(|source| ChatShellError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::chat_shell::run_script;

    #[test]
    fn a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        init(
            dir.path(),
            &ChatShellState::new_pool("p.x", &[], &[]),
            false,
        )
        .unwrap();
        let lock = dir.path().join(".chat-pool.json.lock");
        let f = std::fs::File::create(&lock).unwrap();
        f.set_modified(SystemTime::now() - 2 * STALE_LOCK).unwrap();
        drop(f);
        let out = run_script(
            dir.path(),
            "Get-CsPersistentChatState 'service:p.x' | Select-Object -ExpandProperty PoolState",
        );
        assert_eq!(out.stdout, "Normal\n", "{}", out.stderr);
        assert!(!lock.exists());
    }
}
