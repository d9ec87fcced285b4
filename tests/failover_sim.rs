//! The whole failover against the simulated secondary and chat pool, through the built binary.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{kill_after, stderr, stdout, Rng, World};

const KIB: u64 = 1024;

/// The end state every finished failover must reach, and the evidence that nothing ran twice.
fn assert_failed_over(w: &World) {
    assert_eq!(w.database()["state"], "ONLINE");
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
    let last = w.sim_state()["history"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        last["last_lsn"].as_str().unwrap(),
        w.prepared.final_lsn.to_string()
    );
    let chat = w.chat_state();
    assert_eq!(chat["pools"][0]["state"], "FailedOver", "{chat}");
    let log = chat["log"].as_array().unwrap();
    for cmdlet in [
        "Set-CsPersistentChatState",
        "Install-CsMirrorDatabase",
        "Set-CsPersistentChatActiveServer",
    ] {
        assert_eq!(
            log.iter().filter(|e| e["cmdlet"] == cmdlet).count(),
            1,
            "{cmdlet} in effect once: {chat}"
        );
    }
    let done: Vec<String> = w
        .journal_events("step_done")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    for step in [
        "preflight",
        "remove_log_shipping",
        "catch_up",
        "recover",
        "pool_state",
        "mirror",
        "active_servers",
    ] {
        assert!(
            done.iter().any(|s| s == step),
            "journal lacks {step}: {done:?}"
        );
    }
    assert!(w
        .journal_events("run_finished")
        .iter()
        .any(|e| e["outcome"] == "done"));
}

#[test]
fn failover_reaches_online_failed_over_and_reports_it() {
    let w = World::new(16, 64 * KIB, |_| {});
    let report_dir = w.dir.path().join("report");
    let out = w.run(&[
        "failover",
        "--yes",
        "--json",
        "--report",
        report_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["outcome"], "done");
    assert_eq!(r["final_state"]["database_state"], "ONLINE");
    assert_eq!(r["final_state"]["pool_state"], "FailedOver");
    assert_eq!(r["final_state"]["mirror_installed"], true);
    assert_eq!(
        r["final_state"]["active_servers"].as_array().unwrap().len(),
        2
    );
    assert_failed_over(&w);
    let html = std::fs::read_to_string(report_dir.join("failover.html")).unwrap();
    assert!(html.contains("<svg id=\"timeline\""));
    assert!(
        html.matches("data-lane=\"apply\"").count() >= 12,
        "every applied log is on the timeline"
    );
    // Running it again changes nothing: every step is already done.
    let again = w.run(&["failover", "--yes", "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let r: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let outcomes: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[1..], ["already_done"; 6]);
    assert_failed_over(&w);
}

#[test]
fn what_if_prints_every_statement_and_changes_nothing() {
    let w = World::new(8, 32 * KIB, |_| {});
    let sim_file = |w: &World| {
        let mut files: Vec<_> = std::fs::read_dir(w.spec.sim_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| (p.clone(), common::file_bytes(p)))
            .collect::<Vec<_>>()
    };
    let before = (
        sim_file(&w),
        common::file_bytes(&w.spec.chat_dir().join("chat-pool.json")),
    );
    let out = w.run(&["failover", "--what-if"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(
        "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'"
    ));
    assert!(text.contains("RESTORE LOG [mgc] FROM DISK = N'"), "{text}");
    assert!(text.contains("RESTORE DATABASE [mgc] WITH RECOVERY"));
    assert!(text.contains("Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState FailedOver"));
    assert!(text.contains("Install-CsMirrorDatabase"));
    assert!(text.contains("Set-CsPersistentChatActiveServer"));
    let after = (
        sim_file(&w),
        common::file_bytes(&w.spec.chat_dir().join("chat-pool.json")),
    );
    assert!(
        before == after,
        "what-if changed the simulator's or the chat pool's state"
    );
    assert!(!w.journal_path().exists(), "what-if wrote a journal");
}

#[test]
fn sigkill_at_step_boundaries_then_rerun_finishes_once() {
    for boundary in 1..=6 {
        let w = World::new(10, 32 * KIB, |s| s.restore_mib_per_s = Some(2.0));
        let mut child = w.spawn(&["failover", "--yes"]);
        // Kill as soon as the journal says `boundary` steps are done.
        let t0 = std::time::Instant::now();
        while w.journal_events("step_done").len() < boundary
            && t0.elapsed() < Duration::from_secs(60)
        {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        let out = w.run(&["failover", "--yes"]);
        assert!(
            out.status.success(),
            "boundary {boundary}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert_failed_over(&w);
    }
}

#[test]
fn sigkill_at_random_points_then_rerun_finishes_once() {
    let seed = std::env::var("LOGSHIP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261127);
    println!("seed {seed} (LOGSHIP_TEST_SEED to repeat)");
    let mut rng = Rng::new(seed);
    // Kill points are drawn over the length of a whole run on this machine, measured first, so
    // they land inside runs however loaded the machine is.
    let calibrate = World::new(10, 32 * KIB, |s| s.restore_mib_per_s = Some(2.0));
    let t0 = std::time::Instant::now();
    assert!(calibrate.run(&["failover", "--yes"]).status.success());
    let run_ms = (t0.elapsed().as_millis() as u64).max(200);
    drop(calibrate);
    let mut killed = 0;
    for round in 0..20 {
        let w = World::new(10, 32 * KIB, |s| s.restore_mib_per_s = Some(2.0));
        let mut child = w.spawn(&["failover", "--yes"]);
        let delay = Duration::from_millis(rng.below(run_ms));
        if kill_after(&mut child, delay) {
            killed += 1;
        }
        // A second kill inside the re-run, at another point, before the final run.
        let mut second = w.spawn(&["failover", "--yes"]);
        kill_after(&mut second, Duration::from_millis(rng.below(run_ms / 2)));
        let out = w.run(&["failover", "--yes"]);
        assert!(
            out.status.success(),
            "round {round} (delay {delay:?}): {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert_failed_over(&w);
    }
    assert!(
        killed >= 10,
        "most kills must land inside a run, {killed} did"
    );
}

#[test]
fn hostile_values_are_refused_or_quoted() {
    // A pool FQDN that would run a command if it were pasted into a script unquoted.
    let mut w = World::new(4, 32 * KIB, |_| {});
    w.prepared.config.chat.as_mut().unwrap().pool_fqdn = "x'; Remove-Item C:\\ -Recurse; '".into();
    std::fs::write(&w.config_path, toml::to_string(&w.prepared.config).unwrap()).unwrap();
    let out = w.run(&["failover", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("chat.pool_fqdn"), "{}", stderr(&out));
    assert_eq!(w.database()["state"], "RESTORING", "nothing changed");

    // A database name with a bracket and a quote goes through as a parameter.
    let w = World::new(6, 32 * KIB, |s| s.database = "mg]c'".into());
    let out = w.run(&["failover", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(w.database()["state"], "ONLINE");
    let what_if = w.run(&["failover", "--what-if"]);
    assert!(
        stdout(&what_if).contains("already done"),
        "{}",
        stdout(&what_if)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_between_statements_and_the_rerun_resumes() {
    let w = World::new(12, 64 * KIB, |s| s.restore_mib_per_s = Some(1.0));
    let mut child = w
        .command(&["failover", "--yes"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once the catch-up has applied a log or two.
    let t0 = std::time::Instant::now();
    while w.journal_events("log_applied").is_empty() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted failover exits 1");
    let applied = w.journal_events("log_applied").len();
    assert!(applied < 10, "stopped early, after {applied} logs");
    assert_eq!(w.database()["state"], "RESTORING");
    assert!(w
        .journal_events("run_finished")
        .iter()
        .any(|e| e["outcome"] == "cancelled"));
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
    let out = w.run(&["failover", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_failed_over(&w);
}

#[test]
fn what_if_in_standby_mode_shows_the_undo_file() {
    let w = World::new(6, 32 * KIB, |s| s.standby = true);
    let out = w.run(&["failover", "--what-if"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("WITH STANDBY = N'"),
        "{}",
        stdout(&out)
    );
    let out = w.run(&["failover", "--yes"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_failed_over(&w);
}
