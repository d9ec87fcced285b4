//! `logship sim chat-shell`: the stand-in for `powershell.exe` with the Lync module. It reads
//! powershell.exe's arguments, parses the script (`ps_parse`), runs it (`ps_eval`) against the
//! Persistent Chat cmdlets implemented here, over pool state kept in a JSON file in the state
//! folder, rewritten atomically after every change.
//!
//! The cmdlets fail the way the real ones do on bad input: unknown identity or pool, an invalid
//! `-PoolState`, an unknown `-DatabaseType`, an active server that is not a server of the pool,
//! a mirror that already exists without `-DropExistingDatabasesOnMirror`. Error texts of
//! PowerShell itself (binding, unknown command) are PowerShell's; texts of the Lync cmdlets are
//! the simulator's own wording. Stricter than the real cmdlets: the writes refuse to run without
//! `-Confirm:$false` (a non-interactive shell cannot prompt), so a runner that forgets it fails.
//! A fault knob fails the next N Lync cmdlets, before or after they take effect.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::ps_eval::{
    self, positional, switch, value, Bound, Failure, Host, Outcome, ParamSpec, Value,
};
use super::ps_parse;
use crate::chat::quote::decode_command;
use crate::chat::{PoolState, MIRRORING_NOT_ENABLED};

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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub cmdlet: String,
    pub target: String,
    pub detail: serde_json::Value,
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

/// The `chat.shell` setting that makes the runner use this simulator: `exe` is the logship
/// binary, `state_dir` the state folder; the script follows `-Command`.
pub fn shell_command(exe: &Path, state_dir: &Path) -> Vec<String> {
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        "sim".into(),
        "chat-shell".into(),
        "--state".into(),
    ];
    argv.push(state_dir.to_string_lossy().into_owned());
    argv.extend(["-NoProfile", "-NonInteractive", "-Command"].map(String::from));
    argv
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

/// The script in powershell.exe-style arguments: `-NoProfile`, `-NonInteractive`, `-NoLogo`,
/// `-ExecutionPolicy X`, `-InputFormat X`, `-OutputFormat X` are accepted and ignored; `-Command`
/// takes the rest of the line (joined by spaces, as powershell.exe does); `-EncodedCommand` takes
/// base64 of UTF-16LE. Parameter names match by prefix, ignoring case.
pub fn script_from_args(args: &[String]) -> Result<String, String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let Some(name) = a.strip_prefix('-').or_else(|| a.strip_prefix('/')) else {
            return Err(format!(
                "unexpected argument {:?}: expected -Command or -EncodedCommand",
                args[i]
            ));
        };
        let is = |full: &str, min: usize| name.len() >= min && full.starts_with(name);
        if is("encodedcommand", 1) || name == "ec" {
            let b64 = args.get(i + 1).ok_or("-EncodedCommand needs an argument")?;
            return decode_command(b64)
                .ok_or_else(|| "-EncodedCommand: not base64 of UTF-16LE text".to_string());
        } else if is("command", 1) {
            return Ok(args[i + 1..].join(" "));
        } else if is("noprofile", 3) || is("noninteractive", 4) || is("nologo", 3) {
            i += 1;
        } else if is("executionpolicy", 2) || is("inputformat", 2) || is("outputformat", 1) {
            i += 2;
        } else {
            return Err(format!("unsupported powershell.exe argument {:?}", args[i]));
        }
    }
    Err("no -Command or -EncodedCommand given".to_string())
}

/// Runs a script against the state in `dir`. A script that cannot be parsed or a state that
/// cannot be read fail like powershell.exe: message on stderr, exit status 1.
pub fn run_script(dir: &Path, text: &str) -> Outcome {
    let failed = |e: &dyn std::error::Error| Outcome {
        stderr: format!("{}\n", error_chain(e)),
        exit_code: 1,
        ..Outcome::default()
    };
    let stmts = match ps_parse::parse(text) {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                stderr: format!("ParserError: {e}\n"),
                exit_code: 1,
                ..Outcome::default()
            }
        }
    };
    let lock = match StateLock::acquire(dir) {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    let mut out = match ChatShellState::load(dir) {
        Ok(state) => {
            let mut host = PoolHost {
                dir: dir.to_path_buf(),
                state,
            };
            ps_eval::run(&stmts, &mut host)
        }
        Err(e) => failed(&e),
    };
    if let Err(e) = lock.release() {
        out.stderr.push_str(&format!("{}\n", error_chain(&e)));
        out.exit_code = 1;
    }
    out
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

struct PoolHost {
    dir: PathBuf,
    state: ChatShellState,
}

const DATABASE_TYPES: [&str; 13] = [
    "ActiveMonitoring",
    "Application",
    "Archiving",
    "CentralMgmt",
    "Edge",
    "Lyss",
    "Monitoring",
    "PersistentChat",
    "PersistentChatCompliance",
    "Provision",
    "Registrar",
    "SigninTelemetry",
    "User",
];

const CMDLETS: [(&str, &[ParamSpec]); 7] = [
    (
        "Import-Module",
        &[
            positional("Name", 0),
            switch("Force"),
            switch("Global"),
            switch("DisableNameChecking"),
        ],
    ),
    ("Get-CsPersistentChatState", &[positional("Identity", 0)]),
    (
        "Set-CsPersistentChatState",
        &[
            positional("Identity", 0),
            value("PoolState"),
            switch("Force"),
            value("Instance"),
        ],
    ),
    (
        "Get-CsDatabaseMirrorState",
        &[
            value("PoolFqdn"),
            value("DatabaseType"),
            switch("LocalStore"),
            value("Report"),
        ],
    ),
    (
        "Install-CsMirrorDatabase",
        &[
            value("DatabaseType"),
            value("SqlServerFqdn"),
            value("SqlInstanceName"),
            value("FileShare"),
            switch("DropExistingDatabasesOnMirror"),
            value("DatabasePathMap"),
            value("ExcludeDatabaseList"),
            value("Report"),
            switch("ConfiguredDatabases"),
        ],
    ),
    (
        "Get-CsPersistentChatActiveServer",
        &[positional("Identity", 0)],
    ),
    (
        "Set-CsPersistentChatActiveServer",
        &[
            positional("Identity", 0),
            value("ActiveServers"),
            switch("Swap"),
            switch("Force"),
        ],
    ),
];

/// An error and its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn err<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::error(msg))
}

fn io_failure(e: ChatShellError) -> Failure {
    Failure::terminating(error_chain(&e))
}

impl Host for PoolHost {
    fn params(&self, name: &str) -> Option<(&'static str, &'static [ParamSpec])> {
        CMDLETS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .copied()
    }

    fn invoke(
        &mut self,
        name: &'static str,
        b: &Bound,
        _input: Vec<Value>,
    ) -> Result<Vec<Value>, Failure> {
        if name == "Import-Module" {
            let module = b.required("Name")?;
            if !self
                .state
                .modules
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&module))
            {
                return err(format!(
                    "The specified module '{module}' was not loaded because no valid module file was found in any module directory."
                ));
            }
            return Ok(Vec::new());
        }
        let writes = name.starts_with("Set-") || name.starts_with("Install-");
        let confirm_off = b.get("Confirm").is_some() && !b.switch("Confirm");
        if writes && !confirm_off && !b.switch("WhatIf") {
            return Err(Failure::terminating(
                "PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
            ));
        }
        let mut fault = false;
        if self.state.fault.fail_next > 0 {
            self.state.fault.fail_next -= 1;
            fault = true;
            if !self.state.fault.after {
                self.state.save(&self.dir).map_err(io_failure)?;
                return err(format!(
                    "Simulated fault: {name} failed before taking effect."
                ));
            }
        }
        let before = self.state.clone();
        let res = self.cmdlet(name, b);
        if self.state != before || fault {
            self.state.save(&self.dir).map_err(io_failure)?;
        }
        let out = res?;
        if fault {
            return err(format!(
                "Simulated fault: {name} failed after taking effect."
            ));
        }
        Ok(out)
    }
}

/// `service:fqdn` or `PersistentChatServer:fqdn`.
fn pool_fqdn_of(identity: &str) -> Option<&str> {
    let (kind, fqdn) = identity.split_once(':')?;
    (kind.eq_ignore_ascii_case("service") || kind.eq_ignore_ascii_case("PersistentChatServer"))
        .then_some(fqdn)
}

impl PoolHost {
    fn pool_index(&self, identity: &str) -> Result<usize, Failure> {
        pool_fqdn_of(identity)
            .and_then(|fqdn| self.state.pools.iter().position(|p| p.fqdn.eq_ignore_ascii_case(fqdn)))
            .ok_or_else(|| {
                Failure::error(format!(
                    "Cannot find a Persistent Chat pool with identity \"{identity}\". Check the Identity and try again."
                ))
            })
    }

    fn log(&mut self, cmdlet: &str, target: &str, detail: serde_json::Value) {
        let seq = self.state.log.len() as u64 + 1;
        self.state.log.push(LogEntry {
            seq,
            cmdlet: cmdlet.to_string(),
            target: target.to_string(),
            detail,
        });
    }

    fn cmdlet(&mut self, name: &'static str, b: &Bound) -> Result<Vec<Value>, Failure> {
        let what_if = b.switch("WhatIf");
        match name {
            "Get-CsPersistentChatState" => {
                let pools: Vec<&Pool> = match b.string("Identity")? {
                    Some(id) => vec![&self.state.pools[self.pool_index(&id)?]],
                    None => self.state.pools.iter().collect(),
                };
                Ok(pools
                    .into_iter()
                    .map(|p| {
                        Value::Obj(vec![
                            ("Identity".into(), Value::Str(format!("service:{}", p.fqdn))),
                            ("PoolState".into(), Value::Str(p.state.to_string())),
                        ])
                    })
                    .collect())
            }
            "Set-CsPersistentChatState" => {
                // Parameters bind before the cmdlet looks anything up, as in PowerShell.
                let raw = b.string("PoolState")?;
                let parsed = raw.as_deref().map(PoolState::parse);
                if let (Some(raw), Some(None)) = (&raw, parsed) {
                    return Err(Failure::terminating(format!(
                        "Cannot bind parameter 'PoolState'. Cannot convert value \"{raw}\" to type \
                         \"Microsoft.Rtc.Management.WritableConfig.Settings.PersistentChat.PoolState\". Error: \"Unable to match \
                         the identifier name {raw} to a valid enumerator name. Specify one of the following enumerator names and \
                         try again: Normal, FailedOver\""
                    )));
                }
                let id = b.required("Identity")?;
                let i = self.pool_index(&id)?;
                let Some(Some(state)) = parsed else {
                    return Ok(Vec::new());
                };
                if what_if {
                    return Ok(vec![Value::Str(format!(
                        "What if: Setting PoolState of \"{id}\" to {state}."
                    ))]);
                }
                self.state.pools[i].state = state;
                let target = format!("service:{}", self.state.pools[i].fqdn);
                self.log(name, &target, serde_json::json!({ "PoolState": state }));
                Ok(Vec::new())
            }
            "Get-CsDatabaseMirrorState" => {
                let pool = b.required("PoolFqdn")?;
                if !self
                    .state
                    .pools
                    .iter()
                    .any(|p| p.fqdn.eq_ignore_ascii_case(&pool))
                {
                    return err(format!("Cannot find pool \"{pool}\" in the topology."));
                }
                let types = match b.string("DatabaseType")? {
                    Some(t) => vec![database_type(&t)?],
                    None => vec!["PersistentChat", "PersistentChatCompliance"],
                };
                Ok(types.into_iter().map(|t| self.mirror_state(t)).collect())
            }
            "Install-CsMirrorDatabase" => self.install_mirror(name, b, what_if),
            "Get-CsPersistentChatActiveServer" => {
                let id = b.required("Identity")?;
                let p = &self.state.pools[self.pool_index(&id)?];
                let servers = p
                    .active_servers
                    .iter()
                    .map(|s| Value::Str(s.clone()))
                    .collect();
                Ok(vec![Value::Obj(vec![
                    ("Identity".into(), Value::Str(format!("service:{}", p.fqdn))),
                    ("ActiveServers".into(), Value::Array(servers)),
                ])])
            }
            "Set-CsPersistentChatActiveServer" => self.set_active_servers(name, b, what_if),
            _ => err(format!("{name} is not implemented by the simulator")),
        }
    }

    fn mirror_state(&self, db_type: &str) -> Value {
        let db = match db_type {
            "PersistentChat" => "mgc",
            "PersistentChatCompliance" => "mgccomp",
            other => other,
        };
        let (primary, mirror, status) = match self.state.mirrors.get(db_type) {
            Some(_) => ("Principal", "Mirror", Value::Str("Synchronized".into())),
            None => (MIRRORING_NOT_ENABLED, MIRRORING_NOT_ENABLED, Value::Null),
        };
        Value::Obj(vec![
            ("DatabaseName".into(), Value::Str(db.into())),
            ("StateOnPrimary".into(), Value::Str(primary.into())),
            ("StateOnMirror".into(), Value::Str(mirror.into())),
            ("MirroringStatusOnPrimary".into(), status.clone()),
            ("MirroringStatusOnSecondary".into(), status),
        ])
    }

    fn install_mirror(
        &mut self,
        name: &'static str,
        b: &Bound,
        what_if: bool,
    ) -> Result<Vec<Value>, Failure> {
        if b.switch("ConfiguredDatabases") {
            return err(
                "-ConfiguredDatabases is not supported by the simulator; use -DatabaseType.",
            );
        }
        let db_type = database_type(&b.required("DatabaseType")?)?;
        let sql = b.required("SqlServerFqdn")?;
        let share = b.required("FileShare")?;
        let instance = b.string("SqlInstanceName")?;
        let known = &self.state.sql_servers;
        if !known.is_empty() && !known.iter().any(|s| s.eq_ignore_ascii_case(&sql)) {
            return err(format!(
                "SQL Server \"{sql}\" is not a SQL store in the topology."
            ));
        }
        let unc = share
            .strip_prefix("\\\\")
            .and_then(|r| r.split_once('\\'))
            .is_some_and(|(s, h)| !s.is_empty() && !h.is_empty());
        if !unc {
            return err(format!(
                "The file share \"{share}\" is not a UNC path (\\\\server\\share)."
            ));
        }
        let drop = b.switch("DropExistingDatabasesOnMirror");
        if self.state.mirrors.contains_key(db_type) && !drop {
            return err(format!(
                "The database for {db_type} already exists on the mirror. Use -DropExistingDatabasesOnMirror to replace it."
            ));
        }
        if what_if {
            return Ok(vec![Value::Str(format!(
                "What if: Installing the {db_type} mirror database on \"{sql}\"."
            ))]);
        }
        let mirror = Mirror {
            sql_server_fqdn: sql.clone(),
            sql_instance_name: instance.clone(),
            file_share: share.clone(),
        };
        self.state.mirrors.insert(db_type.to_string(), mirror);
        let detail = serde_json::json!({
            "DatabaseType": db_type, "SqlServerFqdn": sql, "SqlInstanceName": instance,
            "FileShare": share, "DropExistingDatabasesOnMirror": drop,
        });
        self.log(name, &sql, detail);
        Ok(Vec::new())
    }

    fn set_active_servers(
        &mut self,
        name: &'static str,
        b: &Bound,
        what_if: bool,
    ) -> Result<Vec<Value>, Failure> {
        let id = b.required("Identity")?;
        let i = self.pool_index(&id)?;
        let pool = &self.state.pools[i];
        let strings = |v: &Value| -> Vec<String> {
            match v {
                Value::Array(items) => items.iter().map(Value::text).collect(),
                Value::Null => Vec::new(),
                one => vec![one.text()],
            }
        };
        let mut next = pool.active_servers.clone();
        if b.switch("Swap") {
            next = pool
                .servers
                .iter()
                .filter(|s| {
                    !pool
                        .active_servers
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(s))
                })
                .cloned()
                .collect();
        } else {
            match b.get("ActiveServers") {
                None => {
                    return Err(Failure::terminating(
                        "Cannot process command because of one or more missing mandatory parameters: ActiveServers.",
                    ))
                }
                Some(Value::Hash(pairs)) => {
                    for (k, v) in pairs {
                        let list = strings(v);
                        if k.eq_ignore_ascii_case("Add") {
                            next.extend(list.into_iter().filter(|s| !next.iter().any(|a| a.eq_ignore_ascii_case(s))).collect::<Vec<_>>());
                        } else if k.eq_ignore_ascii_case("Remove") {
                            next.retain(|a| !list.iter().any(|s| s.eq_ignore_ascii_case(a)));
                        } else if k.eq_ignore_ascii_case("Replace") {
                            next = list;
                        } else {
                            return Err(Failure::terminating(format!(
                                "Cannot bind parameter 'ActiveServers'. The hash table key \"{k}\" is not valid: use Add, Remove or Replace."
                            )));
                        }
                    }
                }
                Some(v) => next = strings(v),
            }
        }
        for s in &next {
            if !pool.servers.iter().any(|p| p.eq_ignore_ascii_case(s)) {
                return err(format!(
                    "\"{s}\" is not a Persistent Chat server of pool \"{}\"; only servers of the pool can be active.",
                    pool.fqdn
                ));
            }
        }
        if what_if {
            return Ok(vec![Value::Str(format!(
                "What if: Setting the active servers of \"{id}\" to {}.",
                next.join(", ")
            ))]);
        }
        let target = format!("service:{}", pool.fqdn);
        self.state.pools[i].active_servers = next.clone();
        self.log(name, &target, serde_json::json!({ "ActiveServers": next }));
        Ok(Vec::new())
    }
}

fn database_type(raw: &str) -> Result<&'static str, Failure> {
    DATABASE_TYPES.iter().find(|t| t.eq_ignore_ascii_case(raw)).copied().ok_or_else(|| {
        Failure::terminating(format!(
            "Cannot bind parameter 'DatabaseType'. Cannot convert value \"{raw}\" to type \
             \"Microsoft.Rtc.Management.Deployment.DatabaseNameType\". Error: \"Unable to match the identifier name {raw} \
             to a valid enumerator name. Specify one of the following enumerator names and try again: {}\"",
            DATABASE_TYPES.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn powershell_exe_arguments() {
        let enc = crate::chat::quote::encode_command("Get-X 'a'");
        let cases: Vec<(Vec<String>, Result<&str, &str>)> = vec![
            (
                args(&["-NoProfile", "-NonInteractive", "-Command", "Get-X", "'a'"]),
                Ok("Get-X 'a'"),
            ),
            (args(&["-nop", "-noni", "-c", "Get-X"]), Ok("Get-X")),
            (
                args(&["-ExecutionPolicy", "Bypass", "-Command", "x"]),
                Ok("x"),
            ),
            (
                args(&["-NoProfile", "-EncodedCommand", &enc]),
                Ok("Get-X 'a'"),
            ),
            (args(&["-ec", &enc]), Ok("Get-X 'a'")),
            (args(&["-EncodedCommand", "not base64!"]), Err("not base64")),
            (args(&["-EncodedCommand"]), Err("needs an argument")),
            (args(&["-NoProfile"]), Err("no -Command")),
            (args(&["-File", "x.ps1"]), Err("unsupported")),
            (args(&["Get-X"]), Err("unexpected argument")),
        ];
        for (argv, want) in cases {
            let got = script_from_args(&argv);
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{argv:?}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{argv:?}: {g}"),
                (w, g) => panic!("{argv:?}: want {w:?}, got {g:?}"),
            }
        }
    }

    /// (script, exit code, stdout, stderr contains)
    fn check(dir: &Path, cases: &[(&str, i32, &str, &str)]) {
        for (script, code, stdout, stderr) in cases {
            let o = run_script(dir, script);
            assert_eq!(o.exit_code, *code, "{script}: {}", o.stderr);
            assert_eq!(o.stdout, *stdout, "{script}");
            assert!(o.stderr.contains(stderr), "{script}: {}", o.stderr);
        }
    }

    #[test]
    fn cmdlet_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let servers = args(&["a.x", "b.x", "c.x"]);
        init(
            dir.path(),
            &ChatShellState::new_pool("p.x", &servers, &args(&["sql.x"])),
            false,
        )
        .unwrap();
        assert!(matches!(
            init(dir.path(), &ChatShellState::default(), false),
            Err(ChatShellError::Exists(_))
        ));
        let id = "-Identity 'service:p.x'";
        check(
            dir.path(),
            &[
                (&format!("Set-CsPersistentChatState {id} -PoolState FailedOver"), 1, "", "NonInteractive mode"),
                (&format!("Set-CsPersistentChatState {id} -PoolState FailedOver -Confirm:0 -WhatIf"), 0, "What if: Setting PoolState of \"service:p.x\" to FailedOver.\n", ""),
                (&format!("Get-CsPersistentChatState {id} | Select-Object -ExpandProperty PoolState"), 0, "Normal\n", ""),
                ("Set-CsPersistentChatState 'PersistentChatServer:P.X' -PoolState failedover -Confirm:$false", 0, "", ""),
                ("Get-CsPersistentChatState | Select-Object -ExpandProperty PoolState", 0, "FailedOver\n", ""),
                (&format!("Set-CsPersistentChatActiveServer {id} -ActiveServers @{{Add='a.x','b.x'}} -Confirm:$false"), 0, "", ""),
                (&format!("Set-CsPersistentChatActiveServer {id} -ActiveServers @{{Remove='A.X'}} -Confirm:$false"), 0, "", ""),
                (&format!("Get-CsPersistentChatActiveServer {id} | Select-Object -ExpandProperty ActiveServers"), 0, "b.x\n", ""),
                (&format!("Set-CsPersistentChatActiveServer {id} -Swap -Confirm:$false"), 0, "", ""),
                (&format!("Get-CsPersistentChatActiveServer {id} | Select-Object -ExpandProperty ActiveServers"), 0, "a.x\nc.x\n", ""),
                (&format!("Set-CsPersistentChatActiveServer {id} -ActiveServers $null -Confirm:$false"), 0, "", ""),
                (&format!("Set-CsPersistentChatActiveServer {id} -ActiveServers 'd.x' -Confirm:$false"), 1, "", "\"d.x\" is not a Persistent Chat server of pool \"p.x\""),
                (&format!("Set-CsPersistentChatActiveServer {id} -ActiveServers @{{Keep='a.x'}} -Confirm:$false"), 1, "", "hash table key \"Keep\""),
                ("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'other.x' -FileShare '\\\\f\\s' -Confirm:$false", 1, "", "not a SQL store"),
                ("Install-CsMirrorDatabase -DatabaseType Chat -SqlServerFqdn 'sql.x' -FileShare '\\\\f\\s' -Confirm:$false", 1, "", "Cannot bind parameter 'DatabaseType'"),
                ("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql.x' -Confirm:$false", 1, "", "missing mandatory parameters: FileShare"),
                ("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql.x' -FileShare '\\\\f\\s' -Confirm:$false", 0, "", ""),
                ("Get-CsDatabaseMirrorState -PoolFqdn 'p.x' | Select-Object -ExpandProperty StateOnPrimary", 0, "Principal\nDatabaseInaccessibleOrMirroringNotEnabled\n", ""),
                ("Get-CsDatabaseMirrorState -PoolFqdn 'q.x'", 1, "", "Cannot find pool \"q.x\""),
                ("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql.x' -FileShare '\\\\f\\s' -Confirm:$false", 1, "", "already exists"),
                ("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql.x' -FileShare '\\\\f\\t' -DropExistingDatabasesOnMirror -Confirm:$false", 0, "", ""),
                ("Import-Module -Name 'SkypeForBusiness'; Import-Module Nope", 1, "", "The specified module 'Nope' was not loaded"),
                ("Get-CsPersistentChatState -Identity 'pool:p.x'", 1, "", "Cannot find a Persistent Chat pool with identity \"pool:p.x\""),
                ("Get-CsPersistentChatState 'service:p.x' 'extra'", 1, "", "A positional parameter cannot be found that accepts argument 'extra'."),
                ("Set-CsPersistentChatState (", 1, "", "ParserError"),
            ],
        );
        let st = ChatShellState::load(dir.path()).unwrap();
        assert_eq!(st.applied("Set-CsPersistentChatState"), 1);
        assert_eq!(st.applied("Set-CsPersistentChatActiveServer"), 4);
        assert_eq!(st.applied("Install-CsMirrorDatabase"), 2);
        assert_eq!(st.mirrors["PersistentChat"].file_share, "\\\\f\\t");
        assert_eq!(
            st.log.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>()
        );
    }

    #[test]
    fn concurrent_shells_lose_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<String> = (0..8).map(|i| format!("s{i}.x")).collect();
        init(
            dir.path(),
            &ChatShellState::new_pool("p.x", &servers, &[]),
            false,
        )
        .unwrap();
        std::thread::scope(|scope| {
            for s in &servers {
                let dir = dir.path();
                scope.spawn(move || {
                    let script = format!(
                        "Set-CsPersistentChatActiveServer -Identity 'service:p.x' -ActiveServers @{{Add='{s}'}} -Confirm:$false"
                    );
                    let out = run_script(dir, &script);
                    assert_eq!(out.exit_code, 0, "{}", out.stderr);
                });
            }
        });
        let st = ChatShellState::load(dir.path()).unwrap();
        let mut active = st.pools[0].active_servers.clone();
        active.sort();
        assert_eq!(active, servers);
        assert_eq!(st.log.len(), 8);
        assert!(!dir.path().join(".chat-pool.json.lock").exists());
    }

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

    #[test]
    fn reads_leave_the_state_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        init(
            dir.path(),
            &ChatShellState::new_pool("p.x", &[], &[]),
            false,
        )
        .unwrap();
        let before = std::fs::read(ChatShellState::path(dir.path())).unwrap();
        for script in [
            "Get-CsPersistentChatState -Identity 'service:p.x'",
            "Get-CsPersistentChatActiveServer -Identity 'service:p.x' | ConvertTo-Json -Compress",
            "Get-CsDatabaseMirrorState -PoolFqdn 'p.x' -DatabaseType PersistentChat",
            "Set-CsPersistentChatState -Identity 'service:p.x' -PoolState FailedOver -WhatIf",
            "Set-CsPersistentChatState -Identity 'service:nope' -PoolState FailedOver -Confirm:$false",
        ] {
            run_script(dir.path(), script);
        }
        assert_eq!(
            std::fs::read(ChatShellState::path(dir.path())).unwrap(),
            before
        );
    }
}
