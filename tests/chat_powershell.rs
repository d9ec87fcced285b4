//! The runner's scripts under a real PowerShell (`pwsh`, or `powershell.exe` on Windows) with a
//! stand-in `Lync` module whose functions record the parameters they were bound with: proves
//! the quoting and both argument forms against PowerShell's own parser. Skipped with a message
//! where no PowerShell is installed; set LOGSHIP_REQUIRE_PWSH=1 to make that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use logship::chat::{ps_quote, ChatPool, MirrorSpec, PoolState, Scripts, Shell, ShellPool};

const HOSTILE_SHARE: &str =
    "\\\\atl-fs-01\\D$\\O'Brien \u{2018}x\u{2019} \u{201C}q\u{201D} $(Remove-Item C:\\ -Recurse) `t; Remove-Item C:\\; '";
const HOSTILE_POOL: &str = "x'; Remove-Item C:\\ -Recurse; '";

fn find_powershell() -> Option<String> {
    for exe in ["pwsh", "powershell.exe", "powershell"] {
        let ok = Command::new(exe)
            .args(["-NoProfile", "-NonInteractive", "-Command", "exit 0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(exe.to_string());
        }
    }
    None
}

/// A module that stands in for Lync: each function appends its bound parameters to `record`
/// as one JSON line; the getters return what the real cmdlets' objects carry.
fn write_module(dir: &Path, record: &Path) -> PathBuf {
    let module = dir.join("Lync").join("Lync.psm1");
    std::fs::create_dir_all(module.parent().unwrap()).unwrap();
    let text = format!(
        r#"$script:Record = {record}
function Write-Call([string]$Name, $Bound) {{
    $o = [ordered]@{{ Cmdlet = $Name }}
    foreach ($k in $Bound.Keys) {{
        $v = $Bound[$k]
        if ($v -is [array]) {{ $o[$k] = @($v | ForEach-Object {{ [string]$_ }}) }} else {{ $o[$k] = [string]$v }}
    }}
    Add-Content -LiteralPath $script:Record -Value (ConvertTo-Json -InputObject $o -Compress -Depth 4) -Encoding UTF8
}}
function Set-CsPersistentChatState {{
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
    param([string]$Identity, [string]$PoolState, [switch]$Force)
    if ($Identity -eq 'service:fail.example') {{ throw "Cannot find pool $Identity" }}
    if ($PSCmdlet.ShouldProcess($Identity)) {{ Write-Call 'Set-CsPersistentChatState' $PSBoundParameters }}
}}
function Get-CsPersistentChatState {{
    [CmdletBinding()] param([string]$Identity)
    Write-Call 'Get-CsPersistentChatState' $PSBoundParameters
    [pscustomobject]@{{ Identity = $Identity; PoolState = 'FailedOver' }}
}}
function Install-CsMirrorDatabase {{
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
    param([string]$DatabaseType, [string]$SqlServerFqdn, [string]$SqlInstanceName, [string]$FileShare, [switch]$DropExistingDatabasesOnMirror)
    if ($PSCmdlet.ShouldProcess($SqlServerFqdn)) {{ Write-Call 'Install-CsMirrorDatabase' $PSBoundParameters }}
}}
function Get-CsDatabaseMirrorState {{
    [CmdletBinding()] param([string]$PoolFqdn, [string]$DatabaseType)
    Write-Call 'Get-CsDatabaseMirrorState' $PSBoundParameters
    [pscustomobject]@{{ DatabaseName = 'mgc'; StateOnPrimary = 'Principal'; StateOnMirror = 'Mirror' }}
}}
function Set-CsPersistentChatActiveServer {{
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
    param([string]$Identity, [object]$ActiveServers)
    if ($PSCmdlet.ShouldProcess($Identity)) {{ Write-Call 'Set-CsPersistentChatActiveServer' $PSBoundParameters }}
}}
function Get-CsPersistentChatActiveServer {{
    [CmdletBinding()] param([string]$Identity)
    Write-Call 'Get-CsPersistentChatActiveServer' $PSBoundParameters
    [pscustomobject]@{{ Identity = $Identity; ActiveServers = @('atl-pc-101.litwareinc.com', 'atl-pc-102.litwareinc.com') }}
}}
Export-ModuleMember -Function *-Cs*
"#,
        record = ps_quote(&record.to_string_lossy())
    );
    std::fs::write(&module, text).unwrap();
    module
}

fn calls(record: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    text.trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l.trim_start_matches('\u{feff}')).unwrap())
        .collect()
}

#[test]
fn real_powershell_binds_the_values_verbatim() {
    let Some(ps) = find_powershell() else {
        if std::env::var("LOGSHIP_REQUIRE_PWSH").as_deref() == Ok("1") {
            panic!("no PowerShell (pwsh or powershell.exe) found and LOGSHIP_REQUIRE_PWSH=1");
        }
        eprintln!("skipped: no PowerShell (pwsh or powershell.exe) on this machine");
        return;
    };
    for last in ["-Command", "-EncodedCommand"] {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("calls.jsonl");
        let module = write_module(dir.path(), &record);
        let module = module.to_string_lossy();
        let argv: Vec<String> = vec![
            ps.clone(),
            "-NoProfile".into(),
            "-NonInteractive".into(),
            last.into(),
        ];
        let shell = Shell::new(argv, Duration::from_secs(120));
        let pool = ShellPool::new(shell.clone(), Scripts::new(&module, HOSTILE_POOL));
        let mirror = MirrorSpec {
            sql_server_fqdn: "atl-sql-002.litwareinc.com".into(),
            sql_instance_name: Some("PC$HAT".into()),
            file_share: HOSTILE_SHARE.into(),
            drop_existing_databases_on_mirror: true,
        };
        let servers = vec![
            "atl-pc-101.litwareinc.com".to_string(),
            "atl-pc-102.litwareinc.com".to_string(),
        ];

        pool.set_pool_state(PoolState::FailedOver).unwrap();
        assert_eq!(pool.pool_state().unwrap(), PoolState::FailedOver);
        pool.install_mirror(&mirror).unwrap();
        assert!(pool.mirror_state().unwrap().installed());
        pool.set_active_servers(&servers).unwrap();
        assert_eq!(pool.active_servers().unwrap(), servers);

        let c = calls(&record);
        assert_eq!(c.len(), 6, "{c:?}");
        let identity = format!("service:{HOSTILE_POOL}");
        assert_eq!(c[0]["Cmdlet"], "Set-CsPersistentChatState");
        assert_eq!(c[0]["Identity"], identity.as_str());
        assert_eq!(c[0]["PoolState"], "FailedOver");
        assert_eq!(c[1]["Identity"], identity.as_str());
        assert_eq!(c[2]["Cmdlet"], "Install-CsMirrorDatabase");
        assert_eq!(c[2]["FileShare"], HOSTILE_SHARE, "{last}");
        assert_eq!(c[2]["SqlInstanceName"], "PC$HAT");
        assert_eq!(c[2]["DatabaseType"], "PersistentChat");
        assert_eq!(c[2]["DropExistingDatabasesOnMirror"], "True");
        assert_eq!(c[3]["PoolFqdn"], HOSTILE_POOL);
        assert_eq!(c[4]["ActiveServers"], serde_json::json!(servers));

        let failing = ShellPool::new(shell, Scripts::new(&module, "fail.example"));
        let err = failing
            .set_pool_state(PoolState::FailedOver)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Cannot find pool service:fail.example"),
            "{err}"
        );
        assert!(err.contains("exit status 1"), "{err}");
    }
}
