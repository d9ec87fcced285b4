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
//! A fault knob fails the next N Lync cmdlets, before or after they take effect, or makes the
//! next run hang.
//!
//! Use: `logship sim chat-shell --state DIR init --pool FQDN --server S1 --server S2
//! [--sql-server SQL]`, then point `chat.shell` at [`shell_command`]`(logship, DIR)`, i.e.
//! `[logship, "sim", "chat-shell", "--state", DIR, "-NoProfile", "-NonInteractive", "-Command"]`.
//! `... fault --fail-next N [--after]`, `... fault --hang-secs N` and `... show` (the state as
//! JSON, with the log of every change) serve tests and drills. One shell runs at a time per state
//! folder (a lock file); reads never rewrite the state file.

mod cmdlets;
mod state;

use std::path::Path;

use super::ps_eval::{self, Outcome};
use super::ps_parse;
use crate::chat::quote::decode_command;

pub use state::{
    init, ChatShellError, ChatShellState, Fault, LogEntry, Mirror, Pool, StateLock, STATE_FILE,
};

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
    if let Err(e) = serve_hang(dir) {
        return failed(&e);
    }
    let lock = match StateLock::acquire(dir) {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    let mut out = match ChatShellState::load(dir) {
        Ok(state) => {
            let mut host = cmdlets::PoolHost::new(dir, state);
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

/// The hang fault: taken from the state under the lock, then served with the lock released, so
/// a shell killed while it hangs (the point of the fault) leaves no lock behind.
fn serve_hang(dir: &Path) -> Result<(), ChatShellError> {
    let Ok(peek) = ChatShellState::load(dir) else {
        return Ok(()); // the run itself reports an unreadable state
    };
    if peek.fault.hang_secs == 0 {
        return Ok(());
    }
    let lock = StateLock::acquire(dir)?;
    let mut state = ChatShellState::load(dir)?;
    let hang = std::mem::take(&mut state.fault.hang_secs);
    state.save(dir)?;
    lock.release()?;
    std::thread::sleep(std::time::Duration::from_secs(hang));
    Ok(())
}

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
