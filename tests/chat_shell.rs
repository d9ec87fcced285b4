//! The production chat runner driving the built `logship sim chat-shell` as its shell: each cmdlet
//! takes effect once, read-backs are right, hostile values are refused or arrive as data, the
//! failure paths say what failed, and a hung shell is killed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use logship::chat::{
    ChatError, ChatPool, ChatSettings, MirrorSpec, PoolState, Scripts, Shell, ShellPool, WhatIf,
};
use logship::config::{ChatConfig, Config};
use logship::sim::chat_shell::{self, ChatShellState};

const POOL: &str = "atl-cs-001.litwareinc.com";
const SERVERS: [&str; 3] = [
    "atl-pc-101.litwareinc.com",
    "atl-pc-102.litwareinc.com",
    "atl-pc-103.litwareinc.com",
];
const HOSTILE_SHARE: &str = "\\\\atl-fs-01\\D$\\O'Brien \u{2018}x\u{2019} $(Remove-Item C:\\ -Recurse) `t; Remove-Item C:\\; '";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_logship")
}

/// A state folder with one pool and its three servers.
fn init_state(pool: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["sim", "chat-shell", "--state"])
        .arg(dir.path())
        .args(["init", "--pool", pool]);
    for s in SERVERS {
        cmd.args(["--server", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn shell_argv(dir: &Path, last: &str) -> Vec<String> {
    let mut v = chat_shell::shell_command(Path::new(bin()), dir);
    *v.last_mut().unwrap() = last.to_string();
    v
}

/// The example configuration's `[chat]` section, pointed at the simulator, with a hostile share.
fn config(dir: &Path, last: &str) -> ChatConfig {
    let text = include_str!("../fixtures/config.example.toml");
    let mut c = toml::from_str::<Config>(text).unwrap().chat.unwrap();
    assert_eq!(c.pool_fqdn, POOL);
    c.active_servers = SERVERS[..2].iter().map(|s| s.to_string()).collect();
    c.mirror.sql_instance_name = Some("PC$HAT".into());
    c.mirror.file_share = HOSTILE_SHARE.into();
    c.shell = shell_argv(dir, last);
    c.timeout_secs = 60;
    c
}

fn state(dir: &Path) -> ChatShellState {
    ChatShellState::load(dir).unwrap()
}

fn state_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(ChatShellState::path(dir)).unwrap()
}

/// Steps 5, 6 and 7 with their read-backs, through the given shell argument form.
fn the_three_steps(last: &str) {
    let dir = init_state(POOL);
    let settings = ChatSettings::from_config(&config(dir.path(), last)).unwrap();
    let pool = settings.shell_pool();

    assert_eq!(pool.pool_state().unwrap(), PoolState::Normal);
    pool.set_pool_state(PoolState::FailedOver).unwrap();
    assert_eq!(pool.pool_state().unwrap(), PoolState::FailedOver);

    assert!(!pool.mirror_state().unwrap().installed());
    pool.install_mirror(&settings.mirror).unwrap();
    assert!(pool.mirror_state().unwrap().installed());
    // A second install is refused, as the real cmdlet refuses an existing mirror database.
    let err = pool.install_mirror(&settings.mirror).unwrap_err();
    assert!(matches!(err, ChatError::Failed { .. }), "{err}");
    assert!(
        err.to_string().contains("Install-CsMirrorDatabase"),
        "{err}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");

    assert!(pool.active_servers().unwrap().is_empty());
    pool.set_active_servers(&settings.active_servers).unwrap();
    assert_eq!(pool.active_servers().unwrap(), settings.active_servers);

    let st = state(dir.path());
    assert_eq!(st.pools[0].state, PoolState::FailedOver);
    assert_eq!(st.pools[0].active_servers, settings.active_servers);
    let mirror = &st.mirrors["PersistentChat"];
    assert_eq!(
        mirror.file_share, HOSTILE_SHARE,
        "the share arrives verbatim"
    );
    assert_eq!(mirror.sql_instance_name.as_deref(), Some("PC$HAT"));
    assert_eq!(mirror.sql_server_fqdn, "atl-sql-002.litwareinc.com");
    for cmdlet in [
        "Set-CsPersistentChatState",
        "Install-CsMirrorDatabase",
        "Set-CsPersistentChatActiveServer",
    ] {
        assert_eq!(st.applied(cmdlet), 1, "{cmdlet}");
    }
    assert_eq!(st.log.len(), 3);
}

#[test]
fn each_cmdlet_takes_effect_once_through_command() {
    the_three_steps("-Command");
}

#[test]
fn each_cmdlet_takes_effect_once_through_encoded_command() {
    the_three_steps("-EncodedCommand");
}

#[test]
fn a_hostile_pool_fqdn_is_refused_by_validation() {
    let dir = init_state(POOL);
    let mut c = config(dir.path(), "-Command");
    c.pool_fqdn = "x'; Remove-Item C:\\ -Recurse; '".into();
    let err = ChatSettings::from_config(&c).unwrap_err().to_string();
    assert!(err.contains("chat.pool_fqdn"), "{err}");
}

#[test]
fn a_hostile_pool_fqdn_past_validation_arrives_as_data() {
    let hostile = "x'; Remove-Item C:\\ -Recurse; '";
    for last in ["-Command", "-EncodedCommand"] {
        // A pool unknown to the state: the cmdlet reports the identity verbatim and changes nothing.
        let dir = init_state(POOL);
        let before = state_bytes(dir.path());
        let shell = Shell::new(shell_argv(dir.path(), last), Duration::from_secs(60));
        let pool = ShellPool::new(shell.clone(), Scripts::new("Lync", hostile));
        let err = pool
            .set_pool_state(PoolState::FailedOver)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("\"service:{hostile}\"")), "{err}");
        assert_eq!(state_bytes(dir.path()), before);

        // A pool that really has that name: the identity matches it exactly, nothing else runs.
        let dir = init_state(hostile);
        let pool = ShellPool::new(shell_for(dir.path(), last), Scripts::new("Lync", hostile));
        pool.set_pool_state(PoolState::FailedOver).unwrap();
        assert_eq!(pool.pool_state().unwrap(), PoolState::FailedOver);
        let st = state(dir.path());
        assert_eq!(st.log.len(), 1);
        assert_eq!(st.log[0].target, format!("service:{hostile}"));
    }
}

fn shell_for(dir: &Path, last: &str) -> Shell {
    Shell::new(shell_argv(dir, last), Duration::from_secs(60))
}

#[test]
fn failures_name_the_cmdlet_and_carry_the_shell_error() {
    let dir = init_state(POOL);
    let shell = shell_for(dir.path(), "-Command");

    let no_module = ShellPool::new(shell.clone(), Scripts::new("NoSuchModule", POOL));
    let err = no_module
        .set_pool_state(PoolState::FailedOver)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Set-CsPersistentChatState failed (exit status 1)"),
        "{err}"
    );
    assert!(
        err.contains("The specified module 'NoSuchModule' was not loaded"),
        "{err}"
    );

    let pool = ShellPool::new(shell.clone(), Scripts::new("Lync", POOL));
    let err = pool
        .set_active_servers(&["atl-pc-999.litwareinc.com".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("Set-CsPersistentChatActiveServer"), "{err}");
    assert!(
        err.contains("\"atl-pc-999.litwareinc.com\" is not a Persistent Chat server of pool"),
        "{err}"
    );

    let bad_mirror = MirrorSpec {
        sql_server_fqdn: "atl-sql-002.litwareinc.com".into(),
        sql_instance_name: None,
        file_share: "D:\\not-unc".into(),
        drop_existing_databases_on_mirror: false,
    };
    let err = pool.install_mirror(&bad_mirror).unwrap_err().to_string();
    assert!(err.contains("is not a UNC path"), "{err}");
    assert!(
        state(dir.path()).log.is_empty(),
        "no failed cmdlet took effect"
    );

    let missing = tempfile::tempdir().unwrap();
    let pool = ShellPool::new(
        shell_for(missing.path(), "-Command"),
        Scripts::new("Lync", POOL),
    );
    let err = pool.pool_state().unwrap_err().to_string();
    assert!(err.contains("Get-CsPersistentChatState failed"), "{err}");
    assert!(err.contains("chat-pool.json cannot be read"), "{err}");
}

#[test]
fn an_invalid_pool_state_fails_like_the_cmdlet() {
    let dir = init_state(POOL);
    let out = Command::new(bin())
        .args(["sim", "chat-shell", "--state"])
        .arg(dir.path())
        .args(["-NonInteractive", "-Command"])
        .arg(format!("Set-CsPersistentChatState -Identity 'service:{POOL}' -PoolState Sideways -Confirm:$false"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cannot bind parameter 'PoolState'. Cannot convert value \"Sideways\""),
        "{stderr}"
    );
    assert!(state(dir.path()).log.is_empty());
}

#[test]
fn faults_before_and_after_the_change() {
    let dir = init_state(POOL);
    let pool = ShellPool::new(
        shell_for(dir.path(), "-Command"),
        Scripts::new("Lync", POOL),
    );
    let fault = |after: bool| {
        let mut cmd = Command::new(bin());
        cmd.args(["sim", "chat-shell", "--state"])
            .arg(dir.path())
            .args(["fault", "--fail-next", "1"]);
        if after {
            cmd.arg("--after");
        }
        assert!(cmd.status().unwrap().success());
    };

    fault(false);
    let err = pool
        .set_pool_state(PoolState::FailedOver)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Simulated fault"), "{err}");
    assert_eq!(
        pool.pool_state().unwrap(),
        PoolState::Normal,
        "failed before taking effect"
    );

    fault(true);
    assert!(pool.set_pool_state(PoolState::FailedOver).is_err());
    assert_eq!(
        pool.pool_state().unwrap(),
        PoolState::FailedOver,
        "took effect, reply lost"
    );
    assert_eq!(state(dir.path()).applied("Set-CsPersistentChatState"), 1);
}

#[test]
fn what_if_changes_nothing_and_records_every_write() {
    let dir = init_state(POOL);
    let settings = ChatSettings::from_config(&config(dir.path(), "-Command")).unwrap();
    let before = state_bytes(dir.path());
    let what_if = WhatIf::new(settings.shell_pool(), settings.scripts());
    what_if.set_pool_state(PoolState::FailedOver).unwrap();
    assert_eq!(
        what_if.pool_state().unwrap(),
        PoolState::FailedOver,
        "reads see the pretended write"
    );
    assert!(
        !what_if.mirror_state().unwrap().installed(),
        "reads go to the pool until a write"
    );
    what_if.install_mirror(&settings.mirror).unwrap();
    what_if
        .set_active_servers(&settings.active_servers)
        .unwrap();
    assert_eq!(what_if.active_servers().unwrap(), settings.active_servers);
    assert_eq!(
        state_bytes(dir.path()),
        before,
        "the chat shell's state is byte-identical"
    );
    let recorded = what_if.recorded();
    assert_eq!(recorded.len(), 3);
    assert!(recorded[0].contains("Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState FailedOver"));
    assert!(recorded[1]
        .contains("-FileShare '\\\\atl-fs-01\\D$\\O''Brien \u{2018}\u{2018}x\u{2019}\u{2019}"));
    assert!(recorded[2].contains("Set-CsPersistentChatActiveServer"));
}

#[test]
fn a_hung_chat_shell_is_killed_and_leaves_the_state_usable() {
    let dir = init_state(POOL);
    let status = Command::new(bin())
        .args(["sim", "chat-shell", "--state"])
        .arg(dir.path())
        .args(["fault", "--hang-secs", "60"])
        .status()
        .unwrap();
    assert!(status.success());
    let before = state(dir.path());
    let hung = ShellPool::new(
        Shell::new(shell_argv(dir.path(), "-Command"), Duration::from_secs(2)),
        Scripts::new("Lync", POOL),
    );
    let err = hung.set_pool_state(PoolState::FailedOver).unwrap_err();
    assert!(matches!(err, ChatError::Timeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("Set-CsPersistentChatState did not finish within 2 s"),
        "{err}"
    );
    let after = state(dir.path());
    assert_eq!(
        after.pools, before.pools,
        "the killed shell changed nothing"
    );
    assert!(after.log.is_empty());
    // The hang was used up and no lock was left: the next run goes through at once.
    assert!(!dir.path().join(".chat-pool.json.lock").exists());
    assert_eq!(after.fault.hang_secs, 0);
    let pool = ShellPool::new(
        shell_for(dir.path(), "-Command"),
        Scripts::new("Lync", POOL),
    );
    pool.set_pool_state(PoolState::FailedOver).unwrap();
    assert_eq!(state(dir.path()).applied("Set-CsPersistentChatState"), 1);
}

#[cfg(unix)]
mod unix_only {
    use super::*;

    fn sh(script: &str) -> Shell {
        let argv: Vec<String> = vec!["sh".into(), "-c".into(), script.into(), "sh".into()];
        Shell::new(argv, Duration::from_secs(1))
    }

    #[test]
    fn a_hung_shell_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker: PathBuf = dir.path().join("still-running");
        let script = format!("echo started >&2; sleep 3; touch '{}'", marker.display());
        let pool = ShellPool::new(sh(&script), Scripts::new("Lync", POOL));
        let err = pool.set_pool_state(PoolState::FailedOver).unwrap_err();
        assert!(matches!(err, ChatError::Timeout { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("Set-CsPersistentChatState did not finish within 1 s"),
            "{err}"
        );
        // Had the shell survived the kill, it would have created the marker by now.
        std::thread::sleep(Duration::from_secs(3));
        assert!(!marker.exists(), "the shell was not killed");
    }

    #[test]
    fn a_timeout_keeps_what_the_shell_said() {
        let pool = ShellPool::new(
            sh("echo 'partial progress' >&2; exec sleep 30"),
            Scripts::new("Lync", POOL),
        );
        let err = pool.pool_state().unwrap_err().to_string();
        assert!(err.contains("partial progress"), "{err}");
    }

    #[test]
    fn exit_zero_with_errors_written_is_a_failure() {
        let pool = ShellPool::new(
            sh("echo 'Import-Module : boom' >&2"),
            Scripts::new("Lync", POOL),
        );
        let err = pool
            .set_pool_state(PoolState::FailedOver)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("failed (exit status 0 but errors were written): Import-Module : boom"),
            "{err}"
        );
    }

    #[test]
    fn a_read_back_that_cannot_be_parsed_is_an_error() {
        let pool = ShellPool::new(sh("echo Sideways"), Scripts::new("Lync", POOL));
        let err = pool.pool_state().unwrap_err().to_string();
        assert!(
            err.contains("Get-CsPersistentChatState gave output that cannot be read"),
            "{err}"
        );
    }
}
