//! The TOML configuration (serde), validated once into a `Config`; sizes like `8MiB`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A configuration or usage error: names the file, the setting and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting `{setting}`: {message}")]
    Invalid { setting: String, message: String },
}

impl ConfigError {
    pub fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: setting.to_string(),
            message: message.into(),
        }
    }
}

/// Parses `64KiB`, `8MiB`, `2GiB`, `1TiB` or plain bytes (`KB`/`MB`/`GB` are read as binary too).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 64KiB, 8MiB, 2GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?}: use B, KiB, MiB, GiB or TiB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Writes a size the way [`parse_size`] reads it, with the largest exact unit.
pub fn format_size(n: u64) -> String {
    for (unit, m) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if n >= m && n % m == 0 {
            return format!("{}{unit}", n / m);
        }
    }
    n.to_string()
}

/// The configuration file as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: String,
    pub source_dir: PathBuf,
    pub dest_dir: PathBuf,
    /// The copy folder as the SQL Server sees it (default: `dest_dir`).
    #[serde(default)]
    pub dest_dir_on_server: Option<String>,
    pub sql: SqlConfig,
    #[serde(default)]
    pub chat: Option<ChatConfig>,
    #[serde(default)]
    pub copy: CopyConfig,
    /// The journal (default: `.logship-journal.jsonl` in `dest_dir`).
    #[serde(default)]
    pub journal: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub auth: SqlAuth,
    #[serde(default)]
    pub user: Option<String>,
    /// The environment variable holding the password; never the password itself.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    #[serde(default)]
    pub encrypt: Encrypt,
    #[serde(default)]
    pub trust_server_certificate: bool,
    /// Seconds allowed for connecting and logging in.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_password_env() -> String {
    "LOGSHIP_SQL_PASSWORD".to_string()
}

fn default_connect_timeout() -> u64 {
    15
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqlAuth {
    #[default]
    Sql,
    Windows,
    Integrated,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encrypt {
    #[default]
    Required,
    Off,
    NotSupported,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    pub pool_fqdn: String,
    pub active_servers: Vec<String>,
    #[serde(default)]
    pub database_site: Option<String>,
    #[serde(default)]
    pub server_sites: BTreeMap<String, String>,
    pub mirror: MirrorConfig,
    #[serde(default = "default_shell")]
    pub shell: Vec<String>,
    /// The PowerShell module holding the cmdlets: `Lync` (2013) or `SkypeForBusiness` (2015).
    #[serde(default = "default_chat_module")]
    pub module: String,
    /// Seconds one cmdlet may run.
    #[serde(default = "default_cmdlet_timeout")]
    pub timeout_secs: u64,
}

pub fn default_shell() -> Vec<String> {
    [
        "powershell.exe",
        "-NoProfile",
        "-NonInteractive",
        "-Command",
    ]
    .map(String::from)
    .to_vec()
}

fn default_chat_module() -> String {
    "Lync".to_string()
}

fn default_cmdlet_timeout() -> u64 {
    1800
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    pub sql_server_fqdn: String,
    #[serde(default)]
    pub sql_instance_name: Option<String>,
    pub file_share: String,
    #[serde(default)]
    pub drop_existing_databases_on_mirror: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CopyConfig {
    #[serde(default)]
    pub workers: Option<usize>,
    #[serde(default = "default_verify")]
    pub verify: String,
}

fn default_verify() -> String {
    "reread".to_string()
}

impl Default for CopyConfig {
    fn default() -> Self {
        CopyConfig {
            workers: None,
            verify: default_verify(),
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database.trim().is_empty() {
            return Err(ConfigError::invalid("database", "must not be empty"));
        }
        if self.database.len() > 128 {
            return Err(ConfigError::invalid(
                "database",
                "longer than 128 characters, SQL Server's limit",
            ));
        }
        if self.sql.host.trim().is_empty() {
            return Err(ConfigError::invalid("sql.host", "must not be empty"));
        }
        if self.sql.port.is_some() && self.sql.instance.is_some() {
            return Err(ConfigError::invalid(
                "sql.instance",
                "give either sql.port or sql.instance, not both",
            ));
        }
        if self.sql.auth == SqlAuth::Sql && self.sql.user.as_deref().unwrap_or("").is_empty() {
            return Err(ConfigError::invalid(
                "sql.user",
                "required with auth = \"sql\"",
            ));
        }
        if let Some(chat) = &self.chat {
            if chat.pool_fqdn.trim().is_empty() {
                return Err(ConfigError::invalid("chat.pool_fqdn", "must not be empty"));
            }
            if chat.active_servers.is_empty() {
                return Err(ConfigError::invalid(
                    "chat.active_servers",
                    "must list at least one server",
                ));
            }
            if chat.shell.is_empty() {
                return Err(ConfigError::invalid("chat.shell", "must name a program"));
            }
        }
        Ok(())
    }

    pub fn journal_path(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| self.dest_dir.join(crate::scan::JOURNAL_NAME))
    }

    /// The copy folder as the SQL Server sees it.
    pub fn dest_on_server(&self) -> String {
        self.dest_dir_on_server
            .clone()
            .unwrap_or_else(|| self.dest_dir.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("0", Some(0)),
            ("512", Some(512)),
            ("64KiB", Some(64 << 10)),
            ("8MiB", Some(8 << 20)),
            ("2GiB", Some(2 << 30)),
            ("8mb", Some(8 << 20)),
            ("1 GiB", Some(1 << 30)),
            ("", None),
            ("MiB", None),
            ("12XB", None),
            ("-1", None),
            ("99999999999TiB", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s).ok(), want, "{s:?}");
        }
        for n in [0, 1, 1024, 3 << 20, 1 << 30, 1500] {
            assert_eq!(parse_size(&format_size(n)).unwrap(), n);
        }
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../fixtures/config.example.toml");
        let cfg: Config = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.database, "mgc");
        assert_eq!(cfg.chat.unwrap().active_servers.len(), 2);
    }

    #[test]
    fn refuses_a_password_in_the_file() {
        let text = include_str!("../fixtures/config.example.toml").replace(
            "password_env = \"LOGSHIP_SQL_PASSWORD\"",
            "password = \"hunter2\"",
        );
        let err = toml::from_str::<Config>(&text).unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
    }
}
