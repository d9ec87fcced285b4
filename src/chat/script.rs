//! The PowerShell text of each chat operation, and the parsing of what the read-backs print. Pure:
//! no process, no I/O, so what-if prints exactly what would run.
//!
//! Every script has one shape, on one line (robust as a `-Command` argument):
//! `$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; try { Import-Module
//! -Name 'Lync'; <cmdlet> } catch { [Console]::Error.WriteLine($_.ToString()); exit 1 }`.
//! `Stop` turns every error into one the `catch` sees; the catch puts the message on stderr and
//! exits 1. Progress is silenced because powershell.exe would serialize progress records to a
//! redirected stderr as CLIXML. Read-backs print one value per line: `| Select-Object
//! -ExpandProperty P | ForEach-Object ToString`, so an object-typed value prints as its text, not
//! as a formatted table. The mirror read-back uses `Get-CsDatabaseMirrorState -DatabaseType
//! PersistentChat` and its `StateOnPrimary` (`DatabaseInaccessibleOrMirroringNotEnabled` when no
//! mirror is set up); Microsoft's page lists PersistentChat among the types for Skype for
//! Business 2015 but not for Lync 2013, so on 2013 this read-back may be refused by the cmdlet:
//! the caller then treats the mirror as not known to be installed.

use super::quote::{ps_array, ps_quote};
use super::{ChatError, MirrorSpec, MirrorState, PoolState};

/// One script to run: the cmdlet it is about (for messages), the command line itself (for
/// reports and the journal), and the full text the shell runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub cmdlet: &'static str,
    pub command: String,
    pub text: String,
}

/// Builds the scripts for one pool. Values are validated by `ChatSettings`; here they are quoted.
#[derive(Clone, Debug)]
pub struct Scripts {
    module: String,
    pool_fqdn: String,
}

impl Scripts {
    pub fn new(module: &str, pool_fqdn: &str) -> Scripts {
        Scripts {
            module: module.to_string(),
            pool_fqdn: pool_fqdn.to_string(),
        }
    }

    pub fn pool_fqdn(&self) -> &str {
        &self.pool_fqdn
    }

    /// `-Identity` of the pool's Persistent Chat service, as the runbook writes it.
    pub fn identity(&self) -> String {
        format!("service:{}", self.pool_fqdn)
    }

    fn wrap(&self, cmdlet: &'static str, body: String) -> Script {
        let text = format!(
            "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; \
             try {{ Import-Module -Name {}; {body} }} \
             catch {{ [Console]::Error.WriteLine($_.ToString()); exit 1 }}",
            ps_quote(&self.module)
        );
        Script {
            cmdlet,
            command: body,
            text,
        }
    }

    /// Step 5.
    pub fn set_pool_state(&self, state: PoolState) -> Script {
        let body = format!(
            "Set-CsPersistentChatState -Identity {} -PoolState {} -Confirm:$false",
            ps_quote(&self.identity()),
            state.as_str()
        );
        self.wrap("Set-CsPersistentChatState", body)
    }

    pub fn get_pool_state(&self) -> Script {
        let body = format!(
            "Get-CsPersistentChatState -Identity {} | Select-Object -ExpandProperty PoolState | ForEach-Object ToString",
            ps_quote(&self.identity())
        );
        self.wrap("Get-CsPersistentChatState", body)
    }

    /// Step 6.
    pub fn install_mirror(&self, m: &MirrorSpec) -> Script {
        let mut body = format!(
            "Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn {}",
            ps_quote(&m.sql_server_fqdn)
        );
        if let Some(inst) = &m.sql_instance_name {
            body.push_str(&format!(" -SqlInstanceName {}", ps_quote(inst)));
        }
        body.push_str(&format!(" -FileShare {}", ps_quote(&m.file_share)));
        if m.drop_existing_databases_on_mirror {
            body.push_str(" -DropExistingDatabasesOnMirror");
        }
        body.push_str(" -Confirm:$false");
        self.wrap("Install-CsMirrorDatabase", body)
    }

    pub fn get_mirror_state(&self) -> Script {
        let body = format!(
            "Get-CsDatabaseMirrorState -PoolFqdn {} -DatabaseType PersistentChat \
             | Select-Object -ExpandProperty StateOnPrimary | ForEach-Object ToString",
            ps_quote(&self.pool_fqdn)
        );
        self.wrap("Get-CsDatabaseMirrorState", body)
    }

    /// Step 7: the whole list replaces the active servers.
    pub fn set_active_servers(&self, servers: &[String]) -> Script {
        let body = format!(
            "Set-CsPersistentChatActiveServer -Identity {} -ActiveServers {} -Confirm:$false",
            ps_quote(&self.identity()),
            ps_array(servers)
        );
        self.wrap("Set-CsPersistentChatActiveServer", body)
    }

    pub fn get_active_servers(&self) -> Script {
        let body = format!(
            "Get-CsPersistentChatActiveServer -Identity {} | Select-Object -ExpandProperty ActiveServers | ForEach-Object ToString",
            ps_quote(&self.identity())
        );
        self.wrap("Get-CsPersistentChatActiveServer", body)
    }
}

/// The console host writes the warning, verbose and debug streams to stdout with these prefixes.
const STREAM_PREFIXES: [&str; 3] = ["WARNING:", "VERBOSE:", "DEBUG:"];

fn is_stream_record(line: &str) -> bool {
    STREAM_PREFIXES.iter().any(|p| line.starts_with(p))
}

/// The non-empty lines of a read-back, trimmed (powershell.exe ends lines with CRLF and may
/// start with a byte-order mark), without the host's WARNING/VERBOSE/DEBUG lines.
pub fn lines(stdout: &str) -> Vec<String> {
    stdout
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !is_stream_record(l))
        .collect()
}

/// The WARNING/VERBOSE/DEBUG lines the shell printed (for the log).
pub fn stream_records(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| is_stream_record(l))
        .collect()
}

fn output_error(cmdlet: &str, message: &str, stdout: &str) -> ChatError {
    ChatError::Output {
        cmdlet: cmdlet.to_string(),
        message: message.to_string(),
        stdout: stdout.to_string(),
    }
}

pub fn parse_pool_state(stdout: &str) -> Result<PoolState, ChatError> {
    let cmdlet = "Get-CsPersistentChatState";
    match lines(stdout).as_slice() {
        [one] => PoolState::parse(one)
            .ok_or_else(|| output_error(cmdlet, "expected PoolState Normal or FailedOver", stdout)),
        [] => Err(output_error(cmdlet, "no pool state printed", stdout)),
        _ => Err(output_error(
            cmdlet,
            "more than one pool state printed",
            stdout,
        )),
    }
}

pub fn parse_mirror_state(stdout: &str) -> Result<MirrorState, ChatError> {
    let states = lines(stdout);
    if let Some(bad) = states
        .iter()
        .find(|s| !s.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        let msg = format!("{bad:?} is not a StateOnPrimary value");
        return Err(output_error("Get-CsDatabaseMirrorState", &msg, stdout));
    }
    Ok(MirrorState {
        states_on_primary: states,
    })
}

pub fn parse_active_servers(stdout: &str) -> Result<Vec<String>, ChatError> {
    let servers = lines(stdout);
    for s in &servers {
        if super::quote::validate_fqdn("active server", s).is_err() {
            let msg = format!("{s:?} is not a server name");
            return Err(output_error(
                "Get-CsPersistentChatActiveServer",
                &msg,
                stdout,
            ));
        }
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbook_commands() {
        let s = Scripts::new("Lync", "atl-cs-001.litwareinc.com");
        let script = s.set_pool_state(PoolState::FailedOver);
        assert_eq!(
            script.command,
            "Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState FailedOver -Confirm:$false"
        );
        let t = script.text;
        assert!(t.starts_with("$ErrorActionPreference = 'Stop'; "), "{t}");
        assert!(t.contains("try { Import-Module -Name 'Lync'; Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState FailedOver -Confirm:$false }"), "{t}");
        assert!(
            t.ends_with("catch { [Console]::Error.WriteLine($_.ToString()); exit 1 }"),
            "{t}"
        );
        let m = MirrorSpec {
            sql_server_fqdn: "atl-sql-002.litwareinc.com".into(),
            sql_instance_name: Some("PCHAT".into()),
            file_share: "\\\\atl-fs-01\\O'Brien $share".into(),
            drop_existing_databases_on_mirror: true,
        };
        let t = s.install_mirror(&m).text;
        assert!(t.contains("Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'atl-sql-002.litwareinc.com' -SqlInstanceName 'PCHAT' -FileShare '\\\\atl-fs-01\\O''Brien $share' -DropExistingDatabasesOnMirror -Confirm:$false"), "{t}");
        let t = s.set_active_servers(&["a.x".into(), "b.x".into()]).text;
        assert!(
            t.contains("-ActiveServers @('a.x','b.x') -Confirm:$false"),
            "{t}"
        );
        assert!(s
            .get_active_servers()
            .text
            .contains("| Select-Object -ExpandProperty ActiveServers | ForEach-Object ToString }"));
        let t = Scripts::new("SkypeForBusiness", "p.x")
            .get_pool_state()
            .text;
        assert!(t.contains("Import-Module -Name 'SkypeForBusiness'; Get-CsPersistentChatState -Identity 'service:p.x' | Select-Object -ExpandProperty PoolState | ForEach-Object ToString }"), "{t}");
    }

    #[test]
    fn read_backs() {
        assert_eq!(
            parse_pool_state("\u{feff}FailedOver\r\n").unwrap(),
            PoolState::FailedOver
        );
        assert!(parse_pool_state("").is_err());
        assert!(parse_pool_state("Normal\nNormal\n").is_err());
        assert!(parse_pool_state("Broken\n")
            .unwrap_err()
            .to_string()
            .contains("Get-CsPersistentChatState"));
        assert!(parse_mirror_state("Principal\r\n").unwrap().installed());
        assert!(
            !parse_mirror_state("DatabaseInaccessibleOrMirroringNotEnabled\n")
                .unwrap()
                .installed()
        );
        assert!(parse_mirror_state("Princ ipal\n").is_err());
        assert_eq!(
            parse_active_servers("a.x\r\n\r\nb.x\r\n").unwrap(),
            vec!["a.x", "b.x"]
        );
        assert!(parse_active_servers("").unwrap().is_empty());
        assert_eq!(
            parse_active_servers("WARNING: unapproved verbs\r\na.x\r\n").unwrap(),
            vec!["a.x"]
        );
        assert_eq!(
            stream_records("WARNING: w\nx\nVERBOSE: v\n"),
            vec!["WARNING: w", "VERBOSE: v"]
        );
        assert!(parse_active_servers("Fqdn : a.x\n").is_err());
    }
}
