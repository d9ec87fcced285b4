//! `catchup --watch` latency: from a log's completion on the share (the writer's last byte) to
//! the watch's report that the simulated secondary restored it, p50 and p99 over N logs, with
//! notifications and with polling only, in the same run. The restore's own time is the floor.
//!
//! Run: `cargo bench --bench watch`. Environment:
//! - `LOGSHIP_BENCH_LOGS` (default 500): logs written per mode.
//! - `LOGSHIP_BENCH_EVERY_MS` (default 40): the writer's spacing between logs.
//! - `LOGSHIP_BENCH_SPARSE_LOGS` (default 40) and `LOGSHIP_BENCH_SPARSE_EVERY_MS` (default 1300):
//!   a second run with logs further apart than the poll interval, as in production (one log every
//!   few minutes): there a poll finds each log alone. In the dense run, files always arrive, the
//!   watch looks again at each file's settle time, and polling alone is nearly as quick.
//! - `LOGSHIP_BENCH_POLL` (default 1): the polling mode's `--poll-interval`, in seconds.
//!
//! Each log (8 KiB of log records, about 43 KiB on disk) is written whole under its final name,
//! as the primary's backup job does; the watch's settle time (200 ms: a file counts only when
//! the same at two looks that far apart) is part of every figure.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::World;
use serde_json::Value;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Figures {
    latency: Vec<f64>,
    restore: Vec<f64>,
    wall: f64,
}

fn run(logs: u32, every: Duration, poll: Option<&str>) -> Figures {
    let w = World::new(logs + 2, 8 * 1024, |s| {
        s.already_copied = 2;
        s.already_applied = 2;
        s.sessions = 0;
    });
    let share = w.spec.share_dir();
    let mut files: Vec<_> = std::fs::read_dir(&share)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let staged: Vec<(String, Vec<u8>)> = files[2..]
        .iter()
        .map(|p| {
            let b = std::fs::read(p).unwrap();
            std::fs::remove_file(p).unwrap();
            (p.file_name().unwrap().to_str().unwrap().to_string(), b)
        })
        .collect();

    let mut args = vec![
        "catchup",
        "--watch",
        "--pause-jobs",
        "--json",
        "--until-idle",
        "3",
    ];
    if let Some(p) = poll {
        args.extend(["--poll-only", "--poll-interval", p]);
    }
    let mut child = w
        .command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let reader = {
        let out = child.stdout.take().unwrap();
        let events = events.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                events
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&line.unwrap()).unwrap());
            }
        })
    };
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|v| v["event"] == "started")
    {
        thread::sleep(Duration::from_millis(10));
    }
    let t0 = Instant::now();
    let mut complete: HashMap<String, f64> = HashMap::new();
    for (i, (name, bytes)) in staged.iter().enumerate() {
        // A steady rate, not a burst: each log's latency is its own.
        let due = every * i as u32;
        if let Some(d) = due.checked_sub(t0.elapsed()) {
            thread::sleep(d);
        }
        std::fs::write(share.join(name), bytes).unwrap();
        complete.insert(name.clone(), unix_now());
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    assert!(status.success(), "the watch failed");
    let events = events.lock().unwrap();
    let applied: Vec<&Value> = events.iter().filter(|v| v["event"] == "applied").collect();
    assert_eq!(applied.len(), staged.len(), "every log applied");
    let mut latency: Vec<f64> = applied
        .iter()
        .map(|a| a["applied_unix"].as_f64().unwrap() - complete[a["name"].as_str().unwrap()])
        .collect();
    let mut restore: Vec<f64> = applied
        .iter()
        .map(|a| a["restore_seconds"].as_f64().unwrap())
        .collect();
    latency.sort_by(|a, b| a.partial_cmp(b).unwrap());
    restore.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Figures {
        latency,
        restore,
        wall,
    }
}

fn main() {
    let logs: u32 = env_or("LOGSHIP_BENCH_LOGS", 500);
    let every = Duration::from_millis(env_or("LOGSHIP_BENCH_EVERY_MS", 40));
    let sparse_logs: u32 = env_or("LOGSHIP_BENCH_SPARSE_LOGS", 40);
    let sparse_every = Duration::from_millis(env_or("LOGSHIP_BENCH_SPARSE_EVERY_MS", 1300));
    let poll: String = env_or("LOGSHIP_BENCH_POLL", "1".to_string());
    for (logs, every) in [(logs, every), (sparse_logs, sparse_every)] {
        println!(
            "catchup --watch: {logs} logs, one every {} ms, completion -> applied (seconds)",
            every.as_millis()
        );
        println!(
            "{:<26} {:>8} {:>8} {:>8} {:>14} {:>8}",
            "mode", "p50", "p99", "max", "restore p50", "wall"
        );
        let modes: [(String, Option<&str>); 2] = [
            ("notifications + polling".into(), None),
            (format!("polling only ({poll} s)"), Some(poll.as_str())),
        ];
        for (label, p) in modes {
            let f = run(logs, every, p);
            println!(
                "{:<26} {:>8.3} {:>8.3} {:>8.3} {:>14.4} {:>8.1}",
                label,
                pct(&f.latency, 0.5),
                pct(&f.latency, 0.99),
                f.latency.last().unwrap(),
                pct(&f.restore, 0.5),
                f.wall
            );
        }
        println!();
    }
}
