//! `logship gen-share` as a user runs it: the summary, `--json`, and usage errors (exit 2).

use assert_cmd::Command;

fn logship() -> Command {
    Command::cargo_bin("logship").unwrap()
}

#[test]
fn json_summary_lists_every_file_with_its_header() {
    let tmp = tempfile::tempdir().unwrap();
    let out = logship()
        .args(["gen-share", "--dir"])
        .arg(tmp.path())
        .args([
            "--database",
            "mgc",
            "--logs",
            "4",
            "--log-size",
            "8KiB",
            "--start-lsn",
            "00000027:000001da:0001",
        ])
        .args([
            "--gap-after",
            "2",
            "--with-full",
            "--full-size",
            "16KiB",
            "--wrk",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    let roles: Vec<&str> = files.iter().map(|f| f["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "log").count(),
        3,
        "{roles:?}"
    );
    assert!(
        roles.contains(&"full") && roles.contains(&"differential") && roles.contains(&"wrk"),
        "{roles:?}"
    );
    assert_eq!(v["first_lsn"], "39000000047400001", "the hex start LSN");
    for f in files {
        let path = f["path"].as_str().unwrap();
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            f["bytes"].as_u64().unwrap()
        );
        assert_eq!(f["header"]["database_name"], "mgc");
    }
    let total: u64 = files.iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    assert_eq!(v["bytes"].as_u64(), Some(total));
}

#[test]
fn text_summary_names_the_cases_and_the_range() {
    let tmp = tempfile::tempdir().unwrap();
    let out = logship()
        .args(["gen-share", "--dir"])
        .arg(tmp.path())
        .args([
            "--logs",
            "3",
            "--log-size",
            "8KiB",
            "--empty-after",
            "1",
            "--duplicate",
            "1",
            "--foreign",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "empty_log",
        "duplicate",
        "foreign",
        "wrote 5 files (2 logs)",
        "log chain of mgc: 40000000100000001 .. ",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["--log-size", "12 parsecs"],
        vec!["--start-lsn", "not-an-lsn"],
        vec!["--logs", "3", "--gap-after", "7"],
    ] {
        let out = logship()
            .args(["gen-share", "--dir"])
            .arg(tmp.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty());
    }
}
