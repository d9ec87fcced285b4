//! The built binary end to end: `logship drill` with its defaults scaled down, and `logship
//! headers` over a folder with bad entries.

use std::path::PathBuf;
use std::process::Command;

fn logship() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_logship"))
}

#[test]
fn drill_reports_online_failed_over_mirror_and_active_servers() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(logship())
        .args([
            "drill",
            "--logs",
            "12",
            "--log-size",
            "64KiB",
            "--json",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["outcome"], "done");
    let f = &r["final_state"];
    assert_eq!(f["database_state"], "ONLINE");
    assert_eq!(f["pool_state"], "FailedOver");
    assert_eq!(f["mirror_installed"], true);
    assert_eq!(f["active_servers"].as_array().unwrap().len(), 2);
    // 12 logs, 2 already applied by log shipping: 10 applied by the drill.
    assert_eq!(r["catchup"]["applied"].as_array().unwrap().len(), 10);
    assert!(dir.path().join("report/failover.html").exists());
    assert!(dir.path().join("report/failover.json").exists());
}

#[cfg(unix)]
#[test]
fn headers_lists_every_backup_and_names_each_bad_entry() {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    let out = Command::new(logship())
        .args([
            "gen-share",
            "--logs",
            "3",
            "--log-size",
            "16KiB",
            "--database",
            "mgc",
            "--dir",
        ])
        .arg(&share)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(share.join("empty.trn"), b"").unwrap();
    std::fs::write(
        share.join("random.trn"),
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(
        share.join("zip.bak"),
        b"MSSQLBAK\x00\x00\x00\x00 compressed",
    )
    .unwrap();
    std::fs::create_dir(share.join("sub")).unwrap();
    std::os::unix::fs::symlink(&share, share.join("sub").join("loop")).unwrap();
    let out = Command::new(logship())
        .args(["headers", "--json"])
        .arg(&share)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let good = rows.iter().filter(|r| r.get("error").is_none()).count();
    assert_eq!(good, 3, "the three logs are read: {rows:?}");
    let error_of = |needle: &str| {
        rows.iter()
            .find(|r| r["path"].as_str().unwrap().contains(needle))
            .and_then(|r| r["error"].as_str())
            .unwrap_or_else(|| panic!("no error row for {needle}: {rows:?}"))
            .to_string()
    };
    assert!(error_of("empty.trn").contains("empty"));
    assert!(error_of("random.trn").contains("not a SQL Server backup"));
    assert!(error_of("zip.bak").contains("compressed"));
    assert!(error_of("loop").contains("loop"));
}
