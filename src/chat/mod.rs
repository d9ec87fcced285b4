//! The Persistent Chat finishing steps (RUNBOOK steps 5-7) as cmdlets run through a PowerShell
//! shell: the [`ChatPool`] trait, its shell implementation and its what-if wrapper.
//!
//! Layers: [`quote`] (literals and validation), [`script`] (pure script text and read-back
//! parsing), [`runner`] (the child process: timeout, exit status, error stream), [`ShellPool`]
//! (the trait over a runner), [`WhatIf`] (records the scripts it would run, changes nothing).
//! The trait is synchronous: an async caller runs it under `tokio::task::spawn_blocking`.

pub mod quote;
pub mod runner;
pub mod script;
mod shell_pool;
mod what_if;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ChatConfig, ConfigError};

pub use quote::ps_quote;
pub use runner::{Shell, ShellOutput};
pub use script::{Script, Scripts};
pub use shell_pool::ShellPool;
pub use what_if::WhatIf;

/// The module that holds the cmdlets on Lync Server 2013 (`SkypeForBusiness` on 2015).
pub const DEFAULT_MODULE: &str = "Lync";

/// A failure of a chat pool operation. Each names the cmdlet and keeps what the shell said.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the shell {program:?} for {cmdlet}")]
    Spawn {
        cmdlet: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{cmdlet}: the shell's output could not be read")]
    Io {
        cmdlet: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{cmdlet} did not finish within {secs} s; the shell was killed{}",
        tail(stderr)
    )]
    Timeout {
        cmdlet: String,
        secs: u64,
        stderr: String,
    },
    #[error("{cmdlet} failed ({status}){}", tail(stderr))]
    Failed {
        cmdlet: String,
        status: String,
        stderr: String,
    },
    #[error("{cmdlet} gave output that cannot be read: {message} (stdout: {stdout:?})")]
    Output {
        cmdlet: String,
        message: String,
        stdout: String,
    },
}

fn tail(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// `-PoolState` of `Set-CsPersistentChatState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolState {
    Normal,
    FailedOver,
}

impl PoolState {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Normal => "Normal",
            PoolState::FailedOver => "FailedOver",
        }
    }

    /// Case-insensitive, as PowerShell binds enum values.
    pub fn parse(s: &str) -> Option<PoolState> {
        [PoolState::Normal, PoolState::FailedOver]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for PoolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The arguments of `Install-CsMirrorDatabase -DatabaseType PersistentChat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorSpec {
    pub sql_server_fqdn: String,
    pub sql_instance_name: Option<String>,
    pub file_share: String,
    pub drop_existing_databases_on_mirror: bool,
}

/// What `Get-CsDatabaseMirrorState` says: one `StateOnPrimary` value per database of the type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorState {
    pub states_on_primary: Vec<String>,
}

/// The value Get-CsDatabaseMirrorState reports for a database with no mirror.
pub const MIRRORING_NOT_ENABLED: &str = "DatabaseInaccessibleOrMirroringNotEnabled";

impl MirrorState {
    /// Mirroring is in place when every database reports a real state (e.g. `Principal`).
    pub fn installed(&self) -> bool {
        !self.states_on_primary.is_empty()
            && self
                .states_on_primary
                .iter()
                .all(|s| !s.is_empty() && !s.eq_ignore_ascii_case(MIRRORING_NOT_ENABLED))
    }
}

/// Two active-server lists name the same servers (order and case of host names do not matter).
pub fn same_servers(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// The chat settings, validated: every value that reaches a script has been checked here.
#[derive(Clone, Debug)]
pub struct ChatSettings {
    pub pool_fqdn: String,
    pub active_servers: Vec<String>,
    pub mirror: MirrorSpec,
    pub module: String,
    pub shell: Vec<String>,
    pub timeout: Duration,
    /// The data center of the new primary database, and of each server (RUNBOOK step 7).
    pub database_site: Option<String>,
    pub server_sites: BTreeMap<String, String>,
}

impl ChatSettings {
    /// Validates the `[chat]` section; the error names the setting at fault.
    pub fn from_config(c: &ChatConfig) -> Result<ChatSettings, ConfigError> {
        quote::validate_fqdn("chat.pool_fqdn", &c.pool_fqdn)?;
        quote::validate_servers("chat.active_servers", &c.active_servers)?;
        quote::validate_fqdn("chat.mirror.sql_server_fqdn", &c.mirror.sql_server_fqdn)?;
        if let Some(i) = &c.mirror.sql_instance_name {
            quote::validate_instance("chat.mirror.sql_instance_name", i)?;
        }
        quote::validate_unc("chat.mirror.file_share", &c.mirror.file_share)?;
        quote::validate_module("chat.module", &c.module)?;
        if c.shell.is_empty() || c.shell[0].trim().is_empty() {
            return Err(ConfigError::invalid("chat.shell", "must name a program"));
        }
        if c.timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "chat.timeout_secs",
                "must be at least 1",
            ));
        }
        Ok(ChatSettings {
            pool_fqdn: c.pool_fqdn.clone(),
            active_servers: c.active_servers.clone(),
            mirror: MirrorSpec {
                sql_server_fqdn: c.mirror.sql_server_fqdn.clone(),
                sql_instance_name: c.mirror.sql_instance_name.clone(),
                file_share: c.mirror.file_share.clone(),
                drop_existing_databases_on_mirror: c.mirror.drop_existing_databases_on_mirror,
            },
            module: c.module.clone(),
            shell: c.shell.clone(),
            timeout: Duration::from_secs(c.timeout_secs),
            database_site: c.database_site.clone(),
            server_sites: c.server_sites.clone(),
        })
    }

    /// Active servers not known to be in the database's data center, with their site (`None`:
    /// not listed in `server_sites`). Preflight refuses these unless the operator vouches for a
    /// low-latency link. Empty when no `database_site` is configured.
    pub fn servers_outside_database_site(&self) -> Vec<(String, Option<String>)> {
        let Some(db_site) = &self.database_site else {
            return Vec::new();
        };
        self.active_servers
            .iter()
            .filter_map(|s| {
                let site = self
                    .server_sites
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(s))
                    .map(|(_, v)| v);
                match site {
                    Some(site) if site.eq_ignore_ascii_case(db_site) => None,
                    other => Some((s.clone(), other.cloned())),
                }
            })
            .collect()
    }

    /// The scripts for this pool.
    pub fn scripts(&self) -> Scripts {
        Scripts::new(&self.module, &self.pool_fqdn)
    }

    /// The production implementation: the configured shell running the cmdlets.
    pub fn shell_pool(&self) -> ShellPool {
        ShellPool::new(Shell::new(self.shell.clone(), self.timeout), self.scripts())
    }
}

/// The Persistent Chat pool, as the failover steps see it. Each write has a read that tells
/// whether it is already in effect, so a step can check before acting and confirm after.
pub trait ChatPool {
    /// `Get-CsPersistentChatState`: the pool's state.
    fn pool_state(&self) -> Result<PoolState, ChatError>;
    /// Step 5: `Set-CsPersistentChatState -PoolState`.
    fn set_pool_state(&self, state: PoolState) -> Result<(), ChatError>;
    /// `Get-CsDatabaseMirrorState -DatabaseType PersistentChat`.
    fn mirror_state(&self) -> Result<MirrorState, ChatError>;
    /// Step 6: `Install-CsMirrorDatabase -DatabaseType PersistentChat`.
    fn install_mirror(&self, mirror: &MirrorSpec) -> Result<(), ChatError>;
    /// `Get-CsPersistentChatActiveServer`: the active servers.
    fn active_servers(&self) -> Result<Vec<String>, ChatError>;
    /// Step 7: `Set-CsPersistentChatActiveServer -ActiveServers` with the whole list.
    fn set_active_servers(&self, servers: &[String]) -> Result<(), ChatError>;
}

/// Pointers to a pool are pools (so a step can take `&dyn ChatPool`, a `Box` or an `Arc`).
macro_rules! delegate_pool {
    ($($ty:ty),*) => {$(
        impl<P: ChatPool + ?Sized> ChatPool for $ty {
            fn pool_state(&self) -> Result<PoolState, ChatError> {
                (**self).pool_state()
            }
            fn set_pool_state(&self, state: PoolState) -> Result<(), ChatError> {
                (**self).set_pool_state(state)
            }
            fn mirror_state(&self) -> Result<MirrorState, ChatError> {
                (**self).mirror_state()
            }
            fn install_mirror(&self, mirror: &MirrorSpec) -> Result<(), ChatError> {
                (**self).install_mirror(mirror)
            }
            fn active_servers(&self) -> Result<Vec<String>, ChatError> {
                (**self).active_servers()
            }
            fn set_active_servers(&self, servers: &[String]) -> Result<(), ChatError> {
                (**self).set_active_servers(servers)
            }
        }
    )*};
}

delegate_pool!(&P, Box<P>, std::sync::Arc<P>);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ChatConfig {
        let text = include_str!("../../fixtures/config.example.toml");
        let cfg: crate::config::Config = toml::from_str(text).unwrap();
        cfg.chat.unwrap()
    }

    #[test]
    fn settings_from_the_example_config() {
        let s = ChatSettings::from_config(&config()).unwrap();
        assert_eq!(s.pool_fqdn, "atl-cs-001.litwareinc.com");
        assert_eq!(s.module, "Lync");
        assert_eq!(s.mirror.file_share, "\\\\atl-fs-01\\mirror");
    }

    #[test]
    fn settings_refuse_bad_values_naming_the_setting() {
        type Edit = fn(&mut ChatConfig);
        let cases: [(Edit, &str); 7] = [
            (
                |c| c.pool_fqdn = "x'; Remove-Item C:\\ -Recurse; '".into(),
                "chat.pool_fqdn",
            ),
            (|c| c.pool_fqdn = "atl cs 001".into(), "chat.pool_fqdn"),
            (|c| c.active_servers.clear(), "chat.active_servers"),
            (
                |c| c.active_servers.push("a\"b".into()),
                "chat.active_servers[2]",
            ),
            (
                |c| c.mirror.sql_instance_name = Some("PC HAT".into()),
                "chat.mirror.sql_instance_name",
            ),
            (
                |c| c.mirror.file_share = "D:\\mirror".into(),
                "chat.mirror.file_share",
            ),
            (|c| c.shell.clear(), "chat.shell"),
        ];
        for (edit, setting) in cases {
            let mut c = config();
            edit(&mut c);
            let err = ChatSettings::from_config(&c).unwrap_err().to_string();
            assert!(err.contains(&format!("`{setting}`")), "{setting}: {err}");
        }
    }

    #[test]
    fn servers_outside_the_database_site() {
        let mut c = config();
        assert!(ChatSettings::from_config(&c)
            .unwrap()
            .servers_outside_database_site()
            .is_empty());
        c.active_servers.push("atl-pc-103.litwareinc.com".into());
        c.active_servers.push("dal-pc-201.litwareinc.com".into());
        c.server_sites
            .insert("DAL-PC-201.litwareinc.com".into(), "DAL".into());
        let out = ChatSettings::from_config(&c)
            .unwrap()
            .servers_outside_database_site();
        assert_eq!(
            out,
            vec![
                ("atl-pc-103.litwareinc.com".to_string(), None),
                (
                    "dal-pc-201.litwareinc.com".to_string(),
                    Some("DAL".to_string())
                )
            ]
        );
        c.database_site = None;
        assert!(ChatSettings::from_config(&c)
            .unwrap()
            .servers_outside_database_site()
            .is_empty());
    }

    #[test]
    fn mirror_state_and_server_sets() {
        let st = |v: &[&str]| MirrorState {
            states_on_primary: v.iter().map(|s| s.to_string()).collect(),
        };
        assert!(st(&["Principal"]).installed());
        assert!(!st(&[]).installed());
        assert!(!st(&[MIRRORING_NOT_ENABLED]).installed());
        assert!(!st(&["Principal", MIRRORING_NOT_ENABLED]).installed());
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(same_servers(&v(&["A.x", "b.x"]), &v(&["b.x", "a.X"])));
        assert!(!same_servers(&v(&["a.x"]), &v(&["a.x", "b.x"])));
        assert_eq!(
            PoolState::parse(" failedover\r"),
            Some(PoolState::FailedOver)
        );
        assert_eq!(PoolState::parse("Failed"), None);
    }
}
