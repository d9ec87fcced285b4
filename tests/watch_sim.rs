//! `catchup --watch` against the simulated secondary: a writer produces logs into the share over
//! time (some slowly in pieces, some as `.wrk` then renamed, some out of order, old ones deleted
//! by retention); every log is applied, in order, once, never before it is complete.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::World;
use logship::backup::synth::SynthBackup;
use logship::backup::MtfDate;
use logship::lsn::Lsn;
use serde_json::Value;

const KIB: u64 = 1024;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The watch's JSON events, collected by a reader thread as they come.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Value>>>);

impl Events {
    fn follow(child: &mut Child) -> (Events, thread::JoinHandle<()>) {
        let events = Events::default();
        let out = child.stdout.take().unwrap();
        let sink = events.clone();
        let h = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let line = line.unwrap();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event: {line:?}: {e}"));
                sink.0.lock().unwrap().push(v);
            }
        });
        (events, h)
    }
    fn of(&self, kind: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == kind)
            .cloned()
            .collect()
    }
    fn applied_names(&self) -> Vec<String> {
        self.of("applied")
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    }
    /// Waits (up to `limit`) until `ok` holds for the events; true if it did.
    fn wait_until(&self, limit: Duration, ok: impl Fn(&Events) -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if ok(self) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        ok(self)
    }
}

/// Waits for the watch to exit by itself; kills it and fails after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the watch did not stop within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Log files by name, with their bytes.
type Staged = Vec<(String, Vec<u8>)>;

/// A world whose share holds only the logs already applied; the rest are returned, in LSN
/// order, for a writer to produce.
fn staged_world(applied: u32, to_write: u32) -> (World, Staged, Vec<PathBuf>) {
    let w = World::new(applied + to_write, 8 * KIB, |s| {
        s.already_copied = applied;
        s.already_applied = applied;
        s.sessions = 0;
    });
    let mut files: Vec<PathBuf> = std::fs::read_dir(w.spec.share_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Log shipping's names carry the backup's start time: name order is LSN order.
    files.sort();
    assert_eq!(files.len() as u32, applied + to_write);
    let old = files[..applied as usize].to_vec();
    let staged = files[applied as usize..]
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            std::fs::remove_file(p).unwrap();
            (p.file_name().unwrap().to_str().unwrap().to_string(), bytes)
        })
        .collect();
    (w, staged, old)
}

/// How the writer produces one file.
#[derive(Clone, Copy, Debug)]
enum Way {
    /// All at once under its final name.
    Whole,
    /// Under its final name, growing in pieces (the primary's backup job).
    Growing,
    /// As `.wrk`, in pieces, then renamed (log shipping's copy job).
    Wrk,
}

fn write_log(dir: &Path, name: &str, bytes: &[u8], way: Way) {
    let path = dir.join(name);
    match way {
        Way::Whole => std::fs::write(&path, bytes).unwrap(),
        Way::Growing | Way::Wrk => {
            let target = match way {
                Way::Wrk => dir.join(format!("{}.wrk", name.trim_end_matches(".trn"))),
                _ => path.clone(),
            };
            let mut f = std::fs::File::create(&target).unwrap();
            for piece in bytes.chunks(bytes.len().div_ceil(4)) {
                f.write_all(piece).unwrap();
                f.flush().unwrap();
                thread::sleep(Duration::from_millis(25));
            }
            drop(f);
            if matches!(way, Way::Wrk) {
                std::fs::rename(&target, &path).unwrap();
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn follow_a_live_share(poll_only: bool) {
    const LOGS: u32 = 100;
    let (w, staged, old) = staged_world(4, LOGS);
    let start = w.prepared.redo_lsn;
    let mut args = vec![
        "catchup",
        "--watch",
        "--pause-jobs",
        "--json",
        "--until-idle",
        "2",
    ];
    if poll_only {
        args.extend(["--poll-only", "--poll-interval", "0.5"]);
    }
    let mut child = w
        .command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (events, reader) = Events::follow(&mut child);
    assert!(
        events.wait_until(Duration::from_secs(20), |e| !e.of("started").is_empty()),
        "the watch started"
    );

    // The writer: LSN order, but every tenth pair k+1 before k, waiting until the watch says
    // it waits for k (so the out-of-order case is really seen, whatever the machine's speed).
    let share = w.spec.share_dir();
    let mut order: Vec<usize> = (0..staged.len()).collect();
    let swapped: Vec<usize> = (5..staged.len() - 1).step_by(10).collect();
    for &k in &swapped {
        order.swap(k, k + 1);
    }
    let mut complete_at: HashMap<String, f64> = HashMap::new();
    let mut deleted_old = false;
    for (i, &k) in order.iter().enumerate() {
        let (name, bytes) = &staged[k];
        let way = match k % 4 {
            1 => Way::Growing,
            3 => Way::Wrk,
            _ => Way::Whole,
        };
        write_log(&share, name, bytes, way);
        complete_at.insert(name.clone(), unix_now());
        let next = order.get(i + 1).copied();
        if next.is_some_and(|n| swapped.contains(&n) && n + 1 == k) {
            let waits_for = staged[k].0.clone();
            events.wait_until(Duration::from_secs(10), |e| {
                e.of("waiting")
                    .iter()
                    .any(|v| v["next"] == waits_for.as_str())
            });
        }
        // Retention: the logs applied before the watch, then applied ones older than ten back.
        if i == 10 && !deleted_old {
            for p in &old {
                std::fs::remove_file(p).unwrap();
            }
            deleted_old = true;
        }
        let applied = events.applied_names();
        if applied.len() > 10 {
            for n in &applied[..applied.len() - 10] {
                let _ = std::fs::remove_file(share.join(n));
            }
        }
        thread::sleep(Duration::from_millis(40));
    }
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let err = {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut s);
        s
    };
    reader.join().unwrap();
    assert!(status.success(), "watch failed: {err}");

    // Every log, in order, once.
    let want: Vec<String> = staged.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(events.applied_names(), want, "{err}");
    let st = w.sim_state();
    assert_eq!(st["history"].as_array().unwrap().len(), LOGS as usize);
    w.assert_history_is_one_chain(start);
    let redo: Lsn = w.database()["redo_start_lsn"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(redo, w.prepared.final_lsn);
    // None early: applied after the writer finished it, from a whole copy.
    let mut latencies = Vec::new();
    for a in events.of("applied") {
        let name = a["name"].as_str().unwrap();
        let applied_at = a["applied_unix"].as_f64().unwrap();
        let complete = complete_at[name];
        assert!(
            applied_at >= complete,
            "{name} applied at {applied_at}, complete at {complete}"
        );
        latencies.push(applied_at - complete);
        // From the share file's last write: present, and never negative.
        let reported = a["seconds_since_complete"].as_f64().unwrap();
        assert!(reported >= 0.0, "{name}: {reported}");
        let (_, bytes) = staged.iter().find(|(n, _)| n == name).unwrap();
        assert!(
            std::fs::read(w.spec.copy_dir().join(name)).unwrap() == *bytes,
            "{name}: the copy is the whole file"
        );
    }
    // The out-of-order pairs were seen as waiting, not as errors.
    let waiting = events.of("waiting");
    for &k in &swapped {
        assert!(
            waiting
                .iter()
                .any(|v| v["next"] == staged[k + 1].0.as_str()),
            "waiting for {} reported: {waiting:?}",
            staged[k].0
        );
    }
    assert!(
        events.of("not_applied").is_empty(),
        "{:?}",
        events.of("not_applied")
    );
    let stopped = events.of("stopped");
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["reason"], "idle");
    assert_eq!(
        w.sim_state()["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["enabled"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [true, true],
        "jobs put back"
    );
    // Timing is recorded, not asserted (the machine is shared).
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{}: completion to applied over {} logs: p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        if poll_only {
            "polling (0.5 s)"
        } else {
            "notifications"
        },
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
}

#[test]
fn follows_a_live_share_with_notifications() {
    follow_a_live_share(false);
}

#[test]
fn follows_a_live_share_polling_only() {
    follow_a_live_share(true);
}

fn synth_log(db: &str, first: Lsn, last: Lsn, seed: u64) -> Vec<u8> {
    let mut b = SynthBackup::log(db, first, last, MtfDate::from_unix(1_767_600_000), seed);
    b.log_bytes = 8192;
    b.checkpoint_lsn = first;
    let mut bytes = Vec::new();
    b.write_to(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_new_chain_and_another_database_are_reported_never_applied_and_sigterm_stops_cleanly() {
    let (w, staged, _) = staged_world(2, 4);
    let share = w.spec.share_dir();
    let header = |bytes: &[u8], name: &str| {
        let p = w.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let h = logship::backup::read_file(&p).unwrap().remove(0);
        std::fs::remove_file(&p).unwrap();
        h
    };
    let l3 = header(&staged[1].1, "l3");
    let l4 = header(&staged[2].1, "l4");
    // Overlaps the chain without continuing it: a branch, as after a restore on the primary.
    let fork = synth_log(
        "mgc",
        Lsn::new(l3.first_lsn.vlf, l3.first_lsn.block + 1, 1),
        Lsn::new(l4.first_lsn.vlf, l4.first_lsn.block + 1, 1),
        99,
    );
    std::fs::write(share.join("mgc_20260105999999.trn"), fork).unwrap();
    let other = synth_log("mgc_copy", l3.first_lsn, l3.last_lsn, 98);
    std::fs::write(share.join("mgc_copy_20260105000000.trn"), other).unwrap();
    for (name, bytes) in &staged {
        std::fs::write(share.join(name), bytes).unwrap();
    }
    // A backup cut short (no trailer) and a `.wrk` copy that stopped growing.
    let last = header(&staged[3].1, "l6");
    let next = synth_log(
        "mgc",
        last.last_lsn,
        Lsn::new(last.last_lsn.vlf, last.last_lsn.block + 40, 1),
        97,
    );
    std::fs::write(
        share.join("mgc_20260106000000.trn"),
        &next[..next.len() / 2],
    )
    .unwrap();
    std::fs::write(
        share.join("mgc_20260106000500.wrk"),
        &next[..next.len() / 3],
    )
    .unwrap();

    let mut child = w
        .command(&[
            "catchup",
            "--watch",
            "--pause-jobs",
            "--json",
            "--poll-only",
            "--poll-interval",
            "0.2",
            "--stalled-after",
            "0.5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (events, reader) = Events::follow(&mut child);
    let all_in = events.wait_until(Duration::from_secs(30), |e| {
        e.applied_names().len() == 4 && e.of("not_applied").len() == 4
    });
    // SIGTERM: the watch stops between statements and exits normally.
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    reader.join().unwrap();
    assert!(
        all_in,
        "the four logs applied: {:?} {err}",
        events.applied_names()
    );
    if kill.is_ok_and(|k| k.success()) {
        assert!(status.success(), "{err}");
        let stopped = events.of("stopped");
        assert_eq!(stopped.len(), 1, "{err}");
        assert_eq!(stopped[0]["reason"], "cancelled");
    } else {
        println!("no kill(1): SIGTERM not tried");
    }

    let want: Vec<String> = staged.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(events.applied_names(), want);
    let reasons: HashMap<String, String> = events
        .of("not_applied")
        .iter()
        .map(|v| {
            let p = PathBuf::from(v["path"].as_str().unwrap());
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons.get("mgc_20260105999999.trn").map(String::as_str),
        Some("new_chain"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .get("mgc_copy_20260105000000.trn")
            .map(String::as_str),
        Some("other_database"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons.get("mgc_20260106000000.trn").map(String::as_str),
        Some("incomplete"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons.get("mgc_20260106000500.wrk").map(String::as_str),
        Some("in_flight"),
        "{reasons:?}"
    );
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(w.sim_state()["history"].as_array().unwrap().len(), 4);
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
}

#[test]
fn text_mode_prints_each_log_and_a_status_line() {
    let (w, staged, _) = staged_world(2, 3);
    for (name, bytes) in &staged {
        std::fs::write(w.spec.share_dir().join(name), bytes).unwrap();
    }
    let out = w.run(&[
        "catchup",
        "--watch",
        "--pause-jobs",
        "--poll-only",
        "--poll-interval",
        "0.2",
        "--until-idle",
        "1",
        "--server-utc-offset",
        "-05:00",
    ]);
    let (text, err) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{text}\n{err}");
    for (name, _) in &staged {
        assert!(text.contains(&format!("applied {name} (")), "{text}");
    }
    assert!(err.contains("polling only"), "{err}");
    assert!(
        err.contains("behind 0 logs") && err.contains("newest backup taken"),
        "{err}"
    );
    assert!(err.contains("stopped (Idle): 3 logs applied"), "{err}");
    println!("{text}{err}");
}
