//! `logship bench` as a program, on tiny data: the table's and the JSON's shape, the rates file it
//! saves, the estimate `logship plan` prints from it, and `--source/--dest` leaving DEST clean.
//! Timings are printed by the bench, never asserted here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("logship")
}

fn logship(args: &[&str], rates: &Path) -> Output {
    let out = Command::new(bin())
        .args(args)
        .env("LOGSHIP_RATES", rates)
        .env("RUST_LOG", "warn")
        .output()
        .expect("logship runs");
    assert!(
        out.status.success(),
        "logship {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn is_number(v: &Value) -> bool {
    v.as_f64().is_some_and(f64::is_finite)
}

/// Every figure has a median and a spread; every baseline is measured, a target, or absent.
fn check_figures(report: &Value, keys: &[&str]) {
    let figures = report["figures"].as_array().expect("figures");
    let found: Vec<&str> = figures.iter().map(|f| f["key"].as_str().unwrap()).collect();
    for k in keys {
        assert!(found.contains(k), "figure {k} missing from {found:?}");
    }
    for f in figures {
        let v = &f["value"];
        for field in ["median", "min", "max"] {
            assert!(is_number(&v[field]), "{}: value.{field} in {f}", f["key"]);
        }
        assert!(!v["runs"].as_array().unwrap().is_empty());
        assert!(f["unit"].is_string() && f["name"].is_string());
        let b = &f["baseline"];
        if !b.is_null() {
            assert!(b["name"].is_string());
            assert!(
                b["value"]["median"].as_f64().is_some() || b["absent"].is_string(),
                "{}: a baseline has a value or says why it is absent",
                f["key"]
            );
            assert_eq!(f["ratio"].is_number(), b["value"].is_object(), "{f}");
        }
    }
}

#[test]
fn quick_bench_prints_the_table_and_json_and_saves_rates() {
    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("cache").join("rates.json");
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();

    let out = logship(
        &["bench", "--quick", "--runs", "2", "--json", "--dir", d],
        &rates,
    );
    let report = json(&out);
    check_figures(
        &report,
        &[
            "headers_rayon",
            "headers_one_thread",
            "plan_ms",
            "copy_vs_cp",
            "copy_vs_cp_b3sum",
            "catchup_equal",
            "catchup_slower",
            "catchup_faster",
            "drill_online",
        ],
    );
    assert_eq!(report["mode"], "quick");
    assert_eq!(report["runs"], 2);
    for f in report["figures"].as_array().unwrap() {
        assert_eq!(f["value"]["runs"].as_array().unwrap().len(), 2, "{f}");
    }
    assert!(report["machine"]["nproc"].as_u64().unwrap() >= 1);
    assert!(report["command"]
        .as_str()
        .unwrap()
        .starts_with("logship bench --quick"));
    let check = &report["estimate_check"];
    assert!(is_number(&check["estimate_seconds"]) && is_number(&check["measured_seconds"]));
    assert!(check["within_25_percent"].is_boolean());
    // The rates file is where the report says, and holds what plan needs.
    assert_eq!(report["rates_file"].as_str(), rates.to_str());
    let saved: Value = serde_json::from_str(&fs::read_to_string(&rates).unwrap()).unwrap();
    assert!(is_number(&saved["copy"]["mib_per_s"]));
    assert!(is_number(&saved["apply"]["seconds_per_log"]));
    // Nothing left behind in the data folder.
    assert_eq!(fs::read_dir(&data).unwrap().count(), 0);

    // The table: a header, one row per figure, the notes.
    let out = logship(
        &["bench", "--quick", "--runs", "1", "--no-save", "--dir", d],
        &rates,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("| figure | median | spread (min-max) | baseline (same run) |"),
        "{text}"
    );
    for row in [
        "native headers, rayon",
        "RESTORE HEADERONLY via simulator",
        "plan over 10000 logs",
        "| cp -r |",
        "cp -r, then b3sum both sides",
        "catch-up, restore = copy rate",
        "catch-up, restore 3x slower than copy",
        "catch-up, restore 3x faster than copy",
        "max(copy-only, apply-only)",
        "drill: failover to ONLINE",
        "plan estimate",
    ] {
        assert!(text.contains(row), "{row:?} missing from\n{text}");
    }

    // logship plan: the estimate from the saved rates, labelled, in text and JSON.
    let share = dir.path().join("share");
    logship(
        &[
            "gen-share",
            "--dir",
            share.to_str().unwrap(),
            "--logs",
            "5",
            "--log-size",
            "64KiB",
        ],
        &rates,
    );
    let dest = dir.path().join("copy");
    let plan_args = [
        "plan",
        "--source",
        share.to_str().unwrap(),
        "--dest",
        dest.to_str().unwrap(),
        "--database",
        "mgc",
    ];
    let text = String::from_utf8_lossy(&logship(&plan_args, &rates).stdout).into_owned();
    assert!(text.contains("estimate (not a measurement)"), "{text}");
    assert!(text.contains(rates.to_str().unwrap()), "{text}");
    let mut with_json = plan_args.to_vec();
    with_json.push("--json");
    let p = json(&logship(&with_json, &rates));
    for field in [
        "database",
        "redo_lsn",
        "to_copy",
        "to_apply",
        "skipped",
        "gaps",
        "final_lsn",
    ] {
        assert!(p.get(field).is_some(), "plan --json lost {field}");
    }
    assert!(is_number(&p["estimate"]["seconds"]), "{p}");
    assert_eq!(p["estimate"]["rates_file"].as_str(), rates.to_str());
    assert!(p["estimate"]["copy_source"]
        .as_str()
        .unwrap()
        .contains("logship bench"));

    // Without rates: no estimate, and it says why.
    let none = dir.path().join("none.json");
    assert!(json(&logship(&with_json, &none))["estimate"].is_null());
    let text = String::from_utf8_lossy(&logship(&plan_args, &none).stdout).into_owned();
    assert!(text.contains("no estimate"), "{text}");
}

#[test]
fn bench_on_a_real_share_leaves_dest_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("rates.json");
    let share = dir.path().join("share");
    let dest = dir.path().join("copy");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("keep.txt"), b"operator's file").unwrap();
    logship(
        &[
            "gen-share",
            "--dir",
            share.to_str().unwrap(),
            "--logs",
            "4",
            "--log-size",
            "64KiB",
        ],
        &rates,
    );
    // An apply rate from an earlier bench is kept: a real share measures none.
    let earlier = r#"{"copy":{"mib_per_s":1.0,"source":"x","measured_at":1},
        "apply":{"mib_per_s":7.0,"seconds_per_log":0.5,"source":"earlier","measured_at":1},
        "headers_per_s":null}"#;
    fs::write(&rates, earlier).unwrap();
    let out = logship(
        &[
            "bench",
            "--source",
            share.to_str().unwrap(),
            "--dest",
            dest.to_str().unwrap(),
            "--runs",
            "1",
            "--json",
        ],
        &rates,
    );
    let report = json(&out);
    assert_eq!(report["mode"], "real");
    check_figures(&report, &["read", "copy_vs_cp", "headers_rayon"]);
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["keep.txt"], "the temporary folder is removed");
    let saved: Value = serde_json::from_str(&fs::read_to_string(&rates).unwrap()).unwrap();
    assert_eq!(saved["apply"]["source"], "earlier");
    assert!(saved["copy"]["source"]
        .as_str()
        .unwrap()
        .contains("--source"));
}
