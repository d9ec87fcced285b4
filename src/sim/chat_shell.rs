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
use std::io::Write;
use std::path::{Path, PathBuf};

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
    let state = match ChatShellState::load(dir) {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                stderr: format!("{}\n", error_chain(&e)),
                exit_code: 1,
                ..Outcome::default()
            }
        }
    };
    let mut host = PoolHost {
        dir: dir.to_path_buf(),
        state,
    };
    ps_eval::run(&stmts, &mut host)
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
        if writes
            && b.get("Confirm").is_none_or(|v| *v != Value::Bool(false))
            && !b.switch("WhatIf")
        {
            return Err(Failure::terminating(format!(
                "PowerShell is in NonInteractive mode. Read and Prompt functionality is not available."
            )));
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
            return err(format!(
                "-ConfiguredDatabases is not supported by the simulator; use -DatabaseType."
            ));
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
                None => return Err(Failure::terminating(format!(
                    "Cannot process command because of one or more missing mandatory parameters: ActiveServers."
                ))),
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
