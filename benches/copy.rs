//! End-to-end copy benchmark: `logship copy` (the library engine, each verify mode) against `cp -r`,
//! `rsync -a`, `cp -r` + `b3sum` of both sides, and `cat` of the sources (the read limit), on
//! (a) 64 × 32 MiB, (b) 2,000 × 256 KiB, (c) one 2 GiB file; warm and cold cache; runs interleaved.
//!
//! Run: `cargo bench --bench copy`. Environment:
//! - `LOGSHIP_BENCH_SCALE` (default 1): scales file counts of (a) and (b) and the size of (c).
//! - `LOGSHIP_BENCH_REPS` (default 3): timed rounds (after one untimed warm-up round); the median is shown.
//! - `LOGSHIP_BENCH_DIR` (default: a temp folder under /var/tmp): where data is written; must be a real disk.
//! - `LOGSHIP_BENCH_COLD` (default 1 as root): 0 skips the cold-cache rows.
//! - `LOGSHIP_BENCH_DEST` (default: `dest` in the data folder): where the copies go. A tmpfs
//!   (`/dev/shm/...`) takes the device's write rate out of the measurement: fsync costs nothing
//!   there, so every tool runs at its own speed.
//! - `LOGSHIP_BENCH_CASES` (default `abc`): which cases to run.
//! - `LOGSHIP_BENCH_TOOLS` (default: all): a comma-separated list of words; only tools whose
//!   name contains one of them run (for example `reread,cp -r`).
//!
//! Cold cache = `sync; echo 3 > /proc/sys/vm/drop_caches` before each run (root only).
//! Every run writes into a fresh folder, and `sync` runs (untimed) after it, so one tool's dirty
//! pages do not slow the next. `logship` fsyncs each file and its folder (the timings include it);
//! `cp`, `rsync` and `b3sum` leave their writes in the page cache (they do not).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use logship::copy::{copy_files, discover_backups, CopyOptions, NoProgress, VerifyMode};

struct Case {
    key: &'static str,
    label: String,
    files: usize,
    size: u64,
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn have(prog: &str) -> bool {
    logship::bench::stats::on_path(prog)
}

/// Deterministic incompressible-looking bytes (xorshift), so no layer can shortcut the content.
fn fill(buf: &mut [u8], mut x: u64) {
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// Whether `dir` holds exactly the files `c` describes (count and sizes), so data written by an
/// earlier run at another `LOGSHIP_BENCH_SCALE` is not timed under this run's labels.
fn holds_case(dir: &Path, c: &Case) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut n = 0;
    for e in entries {
        let Ok(e) = e else { return false };
        if !e.metadata().is_ok_and(|m| m.is_file() && m.len() == c.size) {
            return false;
        }
        n += 1;
    }
    n == c.files
}

fn make_case(root: &Path, c: &Case) -> PathBuf {
    let dir = root.join(format!("src_{}", c.key));
    if holds_case(&dir, c) {
        return dir;
    }
    if dir.exists() {
        eprintln!(
            "{} holds other data (another scale?): writing it again",
            dir.display()
        );
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..c.files {
        let mut f = fs::File::create(dir.join(format!("db_{i:05}.trn"))).unwrap();
        let mut left = c.size;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            fill(&mut buf[..n], seed);
            seed = seed.wrapping_add(0x1234_5678_9ABC_DEF1);
            f.write_all(&buf[..n]).unwrap();
            left -= n as u64;
        }
    }
    sh("sync");
    dir
}

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Logship(VerifyMode, usize),
    /// The engine without fsync: its own speed, apart from the device's write-back (not a mode
    /// the command offers).
    LogshipNoFsync(VerifyMode),
    Cp,
    CpSync,
    Rsync,
    CpB3sum,
    Cat,
}

impl Tool {
    fn name(self) -> String {
        match self {
            Tool::Logship(m, w) => format!("logship copy --verify {m} (workers {w})"),
            Tool::LogshipNoFsync(m) => {
                format!("logship engine --verify {m}, no fsync (bench only)")
            }
            Tool::Cp => "cp -r".into(),
            Tool::CpSync => "cp -r; sync (durable like logship)".into(),
            Tool::Rsync => "rsync -a".into(),
            Tool::CpB3sum => "cp -r, then b3sum both sides".into(),
            Tool::Cat => "cat sources > /dev/null".into(),
        }
    }
}

/// One timed run into a fresh `dest`; `None` if the tool failed.
fn run(tool: Tool, src: &Path, dest: &Path) -> Option<Duration> {
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest).unwrap();
    let (s, d) = (src.display(), dest.display());
    let t = Instant::now();
    let ok = match tool {
        Tool::Logship(verify, workers) => {
            let jobs = discover_backups(src).unwrap();
            let opts = CopyOptions {
                workers,
                verify,
                ..CopyOptions::default()
            };
            let r = copy_files(
                &jobs,
                dest,
                &opts,
                &NoProgress,
                &|_| {},
                &AtomicBool::new(false),
            )
            .unwrap();
            r.ok()
        }
        Tool::LogshipNoFsync(verify) => {
            let jobs = discover_backups(src).unwrap();
            let opts = CopyOptions {
                verify,
                fsync: false,
                ..CopyOptions::default()
            };
            let r = copy_files(
                &jobs,
                dest,
                &opts,
                &NoProgress,
                &|_| {},
                &AtomicBool::new(false),
            )
            .unwrap();
            r.ok()
        }
        Tool::Cp => sh(&format!("cp -r {s}/. {d}/")),
        Tool::CpSync => sh(&format!("cp -r {s}/. {d}/ && sync")),
        Tool::Rsync => sh(&format!("rsync -a {s}/ {d}/")),
        Tool::CpB3sum => sh(&format!(
            "cp -r {s}/. {d}/ && b3sum {s}/* >/dev/null && b3sum {d}/* >/dev/null"
        )),
        Tool::Cat => sh(&format!("cat {s}/* > /dev/null")),
    };
    let el = t.elapsed();
    ok.then_some(el)
}

fn drop_caches() -> bool {
    sh("sync && echo 3 > /proc/sys/vm/drop_caches")
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let scale = env_f64("LOGSHIP_BENCH_SCALE", 1.0);
    let reps = env_f64("LOGSHIP_BENCH_REPS", 3.0).max(1.0) as usize;
    let is_root = sh("[ \"$(id -u)\" = 0 ]");
    let cold = is_root && env_f64("LOGSHIP_BENCH_COLD", 1.0) != 0.0 && drop_caches();
    let root = std::env::var_os("LOGSHIP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let p = std::env::temp_dir().join("logship-bench");
            if Path::new("/var/tmp").is_dir() {
                PathBuf::from("/var/tmp/logship-bench")
            } else {
                p
            }
        });
    fs::create_dir_all(&root).unwrap();
    let count = |n: f64| ((n * scale).round() as usize).max(1);
    let cases = [
        Case {
            key: "a",
            label: format!("(a) {} × 32 MiB", count(64.0)),
            files: count(64.0),
            size: 32 << 20,
        },
        Case {
            key: "b",
            label: format!("(b) {} × 256 KiB", count(2000.0)),
            files: count(2000.0),
            size: 256 << 10,
        },
        Case {
            key: "c",
            label: format!("(c) 1 × {} MiB", ((2048.0 * scale) as u64).max(1)),
            files: 1,
            size: ((2048.0 * scale) as u64).max(1) << 20,
        },
    ];
    let mut tools = vec![
        Tool::Cat,
        Tool::Cp,
        Tool::CpSync,
        Tool::Logship(VerifyMode::Reread, logship::copy::DEFAULT_WORKERS),
        Tool::Logship(VerifyMode::Disk, logship::copy::DEFAULT_WORKERS),
        Tool::Logship(VerifyMode::Inline, logship::copy::DEFAULT_WORKERS),
        Tool::LogshipNoFsync(VerifyMode::Reread),
        Tool::LogshipNoFsync(VerifyMode::Inline),
    ];
    let mut absent = Vec::new();
    for (tool, prog) in [(Tool::Rsync, "rsync"), (Tool::CpB3sum, "b3sum")] {
        if have(prog) {
            tools.push(tool);
        } else {
            absent.push(prog);
        }
    }
    // Worker sweep (warm only), to choose DEFAULT_WORKERS from measurement.
    let mut sweep: Vec<Tool> = [1, 2, 4, 8]
        .into_iter()
        .filter(|w| *w != logship::copy::DEFAULT_WORKERS)
        .map(|w| Tool::Logship(VerifyMode::Reread, w))
        .collect();
    if let Ok(words) = std::env::var("LOGSHIP_BENCH_TOOLS") {
        let wanted = |t: &Tool| words.split(',').any(|w| t.name().contains(w.trim()));
        tools.retain(wanted);
        sweep.retain(wanted);
    }

    eprintln!(
        "logship copy benchmark: scale {scale}, {reps} timed round(s), data in {}, copies in {}",
        root.display(),
        std::env::var("LOGSHIP_BENCH_DEST").unwrap_or_else(|_| "the data folder".into())
    );
    for p in &absent {
        eprintln!(
            "baseline absent: {p} not installed (apt-get install rsync / cargo install b3sum)"
        );
    }
    if !cold {
        eprintln!("cold-cache rows skipped (needs root and LOGSHIP_BENCH_COLD != 0)");
    }
    let only = std::env::var("LOGSHIP_BENCH_CASES").unwrap_or_else(|_| "abc".into());
    let cases: Vec<Case> = cases.into_iter().filter(|c| only.contains(c.key)).collect();
    let srcs: Vec<PathBuf> = cases.iter().map(|c| make_case(&root, c)).collect();
    let dest = std::env::var_os("LOGSHIP_BENCH_DEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("dest"));
    let mut results: BTreeMap<(usize, bool, String), Vec<f64>> = BTreeMap::new();
    let modes: &[bool] = if cold { &[false, true] } else { &[false] };
    for round in 0..=reps {
        for (ci, c) in cases.iter().enumerate() {
            let bytes = c.files as f64 * c.size as f64;
            for &is_cold in modes {
                let list: Vec<Tool> = if is_cold {
                    tools.clone()
                } else {
                    tools.iter().chain(sweep.iter()).copied().collect()
                };
                for &tool in &list {
                    if is_cold {
                        drop_caches();
                    } else {
                        sh(&format!("cat {}/* > /dev/null", srcs[ci].display()));
                    }
                    logship::bench::stats::touch_memory(bytes as u64);
                    let took = run(tool, &srcs[ci], &dest);
                    let _ = fs::remove_dir_all(&dest);
                    sh("sync");
                    let Some(took) = took else {
                        eprintln!("{} failed on {}", tool.name(), c.label);
                        continue;
                    };
                    if round > 0 {
                        let mibs = bytes / (1024.0 * 1024.0) / took.as_secs_f64();
                        results
                            .entry((ci, is_cold, tool.name()))
                            .or_default()
                            .push(mibs);
                    }
                }
            }
        }
        if round > 0 {
            eprintln!("round {round}/{reps} done");
        }
    }

    let median = |v: &Vec<f64>| logship::bench::Samples { values: v.clone() }.median();
    println!("\n| case | cache | tool | MiB/s (median of {reps}) | × cp -r |");
    println!("|---|---|---|---:|---:|");
    for (ci, c) in cases.iter().enumerate() {
        for &is_cold in modes {
            let cp = results.get(&(ci, is_cold, Tool::Cp.name())).map(median);
            let mut rows: Vec<(String, f64)> = results
                .iter()
                .filter(|((i, k, _), _)| *i == ci && *k == is_cold)
                .map(|((_, _, n), v)| (n.clone(), median(v)))
                .collect();
            rows.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
            for (name, mibs) in rows {
                let ratio = cp
                    .map(|cp| format!("{:.2}", mibs / cp))
                    .unwrap_or_else(|| "-".into());
                let cache = if is_cold { "cold" } else { "warm" };
                println!("| {} | {cache} | {name} | {mibs:.0} | {ratio} |", c.label);
            }
        }
    }
    for p in &absent {
        println!("\n{p}: not installed, its rows are absent");
    }
}
