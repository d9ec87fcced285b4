//! The Persistent Chat cmdlets of the simulated shell, over [`ChatShellState`]: parameters as
//! the real cmdlets declare them, effects on the pool, the fault knob, and the change log.

use std::path::{Path, PathBuf};

use super::error_chain;
use super::state::{ChatShellError, ChatShellState, LogEntry, Mirror, Pool};
use crate::chat::{PoolState, MIRRORING_NOT_ENABLED};
use crate::sim::ps_eval::{positional, switch, value, Bound, Failure, Host, ParamSpec, Value};

pub(super) struct PoolHost {
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
            unix_ms: crate::sim::state::unix_ms(),
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

impl PoolHost {
    pub(super) fn new(dir: &Path, state: ChatShellState) -> PoolHost {
        PoolHost {
            dir: dir.to_path_buf(),
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::chat_shell::{init, run_script};

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
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
}
