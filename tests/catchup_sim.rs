//! Catch-up against the simulated secondary over TCP: the chain, crashes, and each error path.

mod common;

use std::time::Duration;

use common::{kill_after, stderr, stdout, Rng, World};
use logship::lsn::Lsn;

const KIB: u64 = 1024;

fn redo(w: &World) -> Option<Lsn> {
    w.database()["redo_start_lsn"]
        .as_str()
        .map(|s| s.parse().unwrap())
}

fn jobs_enabled(w: &World) -> Vec<bool> {
    w.sim_state()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["enabled"].as_bool().unwrap())
        .collect()
}

#[test]
fn catches_up_200_logs_from_the_middle_through_kills() {
    let seed = std::env::var("LOGSHIP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    println!("seed {seed} (LOGSHIP_TEST_SEED to repeat)");
    let mut rng = Rng::new(seed);
    let w = World::new(200, 8 * KIB, |s| {
        s.already_copied = 100;
        s.already_applied = 90;
        // About 4 s of restores in all, longer than the 20 kill points add up to, so every kill
        // lands inside a run.
        s.restore_mib_per_s = Some(1.0);
    });
    let start = w.prepared.redo_lsn;
    let mut killed = 0;
    for _ in 0..20 {
        let mut child = w.spawn(&["catchup", "--pause-jobs"]);
        if kill_after(&mut child, Duration::from_millis(20 + rng.below(250))) {
            killed += 1;
        }
        // Never between two logs: the redo LSN is always the end of an applied log.
        w.assert_history_is_one_chain(start);
    }
    let out = w.run(&["catchup", "--pause-jobs", "--json"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(killed >= 10, "{killed} kills landed inside a run");
    assert_eq!(w.database()["state"], "RESTORING");
    assert_eq!(redo(&w), Some(w.prepared.final_lsn));
    w.assert_history_is_one_chain(start);
    assert_eq!(w.sim_state()["history"].as_array().unwrap().len(), 110);
    assert_eq!(
        jobs_enabled(&w),
        [true, true],
        "jobs put back after the runs"
    );
}

#[test]
fn enabled_jobs_are_refused_without_pause_jobs() {
    let w = World::new(6, 8 * KIB, |_| {});
    let out = w.run(&["catchup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--pause-jobs"), "{}", stderr(&out));
    assert_eq!(redo(&w), Some(w.prepared.redo_lsn), "nothing applied");
}

#[test]
fn a_gap_stops_the_chain_with_status_3_and_puts_the_jobs_back() {
    let w = World::new(12, 8 * KIB, |s| {
        s.already_copied = 2;
        s.already_applied = 2;
    });
    // Remove the 8th log from the share: the chain stops after the 7th.
    let logs = common::files(&w.spec.share_dir());
    std::fs::remove_file(&logs[7]).unwrap();
    let out = w.run(&["catchup", "--pause-jobs"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("GAP"), "{text}");
    assert!(
        text.contains(logs[6].file_name().unwrap().to_str().unwrap()),
        "names the log before the gap: {text}"
    );
    assert!(
        text.contains(logs[8].file_name().unwrap().to_str().unwrap()),
        "names the log after the gap: {text}"
    );
    assert_eq!(
        w.sim_state()["history"].as_array().unwrap().len(),
        5,
        "logs 3 to 7 applied"
    );
    assert_eq!(
        jobs_enabled(&w),
        [true, true],
        "jobs put back after the failure"
    );
}

#[test]
fn a_dropped_connection_mid_restore_is_resumed_with_restart() {
    let w = World::new(8, 64 * KIB, |s| {
        s.faults.drop_at_percent = Some(50);
        s.restore_mib_per_s = Some(4.0);
    });
    let out = w
        .command(&["catchup", "--pause-jobs"])
        .arg("-v")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        w.sim_state()["faults"]["drop_at_percent"].is_null(),
        "the drop fault fired"
    );
    assert!(
        stderr(&out).contains("connection lost during the restore"),
        "{}",
        stderr(&out)
    );
    assert_eq!(redo(&w), Some(w.prepared.final_lsn));
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
}

#[test]
fn exclusive_access_errors_end_the_sessions_and_retry() {
    let w = World::new(6, 8 * KIB, |s| s.faults.fail_restores_3101 = 2);
    let out = w.run(&["catchup", "--pause-jobs"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        w.sim_state()["faults"]["fail_restores_3101"],
        0,
        "both 3101 faults fired"
    );
    assert_eq!(redo(&w), Some(w.prepared.final_lsn));
}

#[test]
fn a_log_already_in_is_not_applied_again() {
    let w = World::new(8, 8 * KIB, |_| {});
    let first = w.run(&["catchup", "--pause-jobs"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let n = w.sim_state()["history"].as_array().unwrap().len();
    let again = w.run(&["catchup", "--pause-jobs", "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let r: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(r["applied"].as_array().unwrap().len(), 0);
    assert_eq!(r["files_copied"], 0);
    assert_eq!(w.sim_state()["history"].as_array().unwrap().len(), n);
}

#[test]
fn a_damaged_copy_is_not_restored() {
    let w = World::new(6, 8 * KIB, |s| {
        s.already_copied = 0;
        s.already_applied = 0;
    });
    // A source file truncated on the share: the reader refuses it, the chain stops before it.
    let logs = common::files(&w.spec.share_dir());
    let bytes = std::fs::read(&logs[3]).unwrap();
    std::fs::write(&logs[3], &bytes[..bytes.len() / 2]).unwrap();
    let out = w.run(&["catchup", "--pause-jobs"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(w.database()["state"], "RESTORING");
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
    assert_eq!(w.sim_state()["history"].as_array().unwrap().len(), 3);
}

/// Marks a backup as written by SQL Server major version `major` (SCIN +0x1B, in both metadata
/// copies; MTF checksums cover the block and stream headers, not the SCIN chunk).
fn set_major_version(path: &std::path::Path, major: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    let at: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"SCIN")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 2, "a log backup has SCIN in MSCI and MSLS");
    for i in at {
        bytes[i + 0x1B] = major;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn headers_the_native_reader_refuses_are_read_through_the_server() {
    let w = World::new(8, 8 * KIB, |s| {
        s.already_copied = 2;
        s.already_applied = 2;
    });
    let logs = common::files(&w.spec.share_dir());
    set_major_version(&logs[5], 17);
    let native = std::process::Command::new(common::logship())
        .arg("headers")
        .arg(&logs[5])
        .output()
        .unwrap();
    assert_eq!(native.status.code(), Some(1));
    assert!(
        stdout(&native).contains("major version 17"),
        "{}",
        stdout(&native)
    );
    let out = w
        .command(&["catchup", "--pause-jobs"])
        .arg("-v")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("RESTORE HEADERONLY"),
        "{}",
        stderr(&out)
    );
    assert_eq!(redo(&w), Some(w.prepared.final_lsn));
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
}

#[test]
fn plan_from_the_configuration_asks_the_server_for_the_redo_lsn() {
    let w = World::new(10, 8 * KIB, |s| {
        s.already_copied = 4;
        s.already_applied = 3;
    });
    let out = w.run(&["plan", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        p["redo_lsn"].as_str().unwrap(),
        w.prepared.redo_lsn.to_string()
    );
    assert_eq!(p["to_apply"].as_array().unwrap().len(), 7);
    assert_eq!(p["to_copy"].as_array().unwrap().len(), 6);
    assert_eq!(
        p["final_lsn"].as_str().unwrap(),
        w.prepared.final_lsn.to_string()
    );
    assert_eq!(
        w.sim_state()["history"].as_array().unwrap().len(),
        0,
        "plan changes nothing"
    );
}

#[test]
fn standby_restores_keep_the_undo_file_next_to_the_copies() {
    let w = World::new(8, 8 * KIB, |s| s.standby = true);
    let out = w.run(&["catchup", "--pause-jobs"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let db = w.database();
    assert_eq!(db["state"], "STANDBY", "{db}");
    assert_eq!(redo(&w), Some(w.prepared.final_lsn));
    let undo = db["standby_file"].as_str().unwrap().to_string();
    assert!(
        undo.starts_with(w.spec.copy_dir().to_str().unwrap()),
        "{undo}"
    );
    assert!(undo.ends_with("mgc_undo.tuf"), "{undo}");
}
