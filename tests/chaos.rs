//! Chaos across the whole failover: seeded faults at random moments (engine killed, simulator
//! restarted, connections dropped mid-restore, 3101 storms, slow answers, a backup deleted or
//! truncated on the share, a copy corrupted in the copy folder, the copy folder full, the chat
//! shell failing once), re-runs until the failover finishes or stops for a human, then invariants
//! checked against the simulator's, the chat shell's and the journal's state.
//!
//! `LOGSHIP_CHAOS_SEEDS=N` runs N seeds (default 4), from `LOGSHIP_CHAOS_SEED` (default 1).
//! `LOGSHIP_CHAOS_FAULTS=CorruptCopy,KillEngine` draws only from those kinds.
//! Every violation names its seed; one seed is repeated with `LOGSHIP_CHAOS_SEED=S LOGSHIP_CHAOS_SEEDS=1`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{files, hash, name_of, Rng, World};
use logship::lsn::Lsn;

const KIB: u64 = 1024;
/// A run that has not ended by then is stuck (the engine's own timeouts are far shorter).
const RUN_CAP: Duration = Duration::from_secs(120);
/// Re-runs after the faults before the harness calls the failover stuck.
const MAX_RERUNS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillEngine,
    RestartSim,
    DropMidRestore,
    Storm3101,
    Slow,
    DeleteBackup,
    TruncateBackup,
    CorruptCopy,
    DestFull,
    ChatFailOnce,
}

const FAULTS: [Fault; 10] = [
    Fault::KillEngine,
    Fault::RestartSim,
    Fault::DropMidRestore,
    Fault::Storm3101,
    Fault::Slow,
    Fault::DeleteBackup,
    Fault::TruncateBackup,
    Fault::CorruptCopy,
    Fault::DestFull,
    Fault::ChatFailOnce,
];

/// How the re-runs ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    Done,
    /// An error a human must act on, by reason.
    Human(String),
}

#[derive(Default)]
struct Stats {
    seeds: u64,
    injected: BTreeMap<String, u64>,
    /// Drawn but with nothing to act on when its moment came (the run had already ended, no
    /// unapplied log left, no tmpfs): not counted as injected.
    missed: BTreeMap<String, u64>,
    runs: u64,
    reruns: u64,
    human: BTreeMap<String, u64>,
    accepted_gap: u64,
    finished: u64,
}

/// What the harness did to one world, for the invariants' excuses.
#[derive(Default)]
struct Seen {
    /// BLAKE3 of every backup on the share before any fault.
    originals: HashMap<String, String>,
    /// The last LSN of every backup on the share.
    last_lsn: HashMap<String, Lsn>,
    corrupted_copies: HashSet<String>,
    accept_gap: bool,
}

/// A small tmpfs over the copy folder; unmounted on drop (before the world's folder goes).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes over `dir`, keeping what `dir` held. None when not allowed.
    fn over(dir: &Path, hold: &Path, size: u64) -> Option<Tmpfs> {
        let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
        if !ok(Command::new("cp").arg("-a").arg(dir).arg(hold)) {
            return None;
        }
        let opts = format!("size={size}");
        if !ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir))
        {
            return None;
        }
        let t = Tmpfs(dir.to_path_buf());
        let src = format!("{}/.", hold.display());
        // What does not fit stays out: the copy folder is then simply missing those copies.
        let _ = Command::new("cp").args(["-a", &src]).arg(dir).status();
        Some(t)
    }

    /// The operator frees space.
    fn grow(&self) {
        let _ = Command::new("mount")
            .args(["-o", "remount,size=64m"])
            .arg(&self.0)
            .status();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Waits for `child` up to `cap`; kills it past that. The exit code, None when killed or stuck.
fn wait_capped(child: &mut Child, cap: Duration) -> (Option<i32>, bool) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code(), false);
        }
        if t0.elapsed() > cap {
            let _ = child.kill();
            let _ = child.wait();
            return (None, true);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sleeps `delay` unless the child ends first; true if it is still running.
fn still_running_after(child: &mut Child, delay: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.try_wait().unwrap().is_none()
}

struct Chaos {
    /// First, so it is unmounted before the world's folder is removed (fields drop in order).
    tmpfs: Option<Tmpfs>,
    w: World,
    rng: Rng,
    seen: Seen,
    runs: usize,
    violations: Vec<String>,
}

impl Chaos {
    fn spawn(&mut self, accept_gap: bool) -> (Child, String) {
        self.runs += 1;
        let name = format!("run{:02}", self.runs);
        // The report too: the password check reads every file the runs wrote.
        let report = self.w.dir.path().join("report");
        let mut args = vec![
            "failover",
            "--yes",
            "--json",
            "-v",
            "--report",
            report.to_str().unwrap(),
        ];
        if accept_gap {
            args.push("--accept-gap");
        }
        (self.w.spawn_logged(&args, &name), name)
    }

    fn output(&self, name: &str) -> (String, String) {
        let runs = self.w.dir.path().join("runs");
        let read = |ext: &str| {
            std::fs::read_to_string(runs.join(format!("{name}.{ext}"))).unwrap_or_default()
        };
        (read("out"), read("err"))
    }

    /// Logs not yet restored: they end past the database's redo LSN (read from the simulator).
    fn unapplied_logs(&self) -> Vec<String> {
        let redo: Option<Lsn> = self.w.database()["redo_start_lsn"]
            .as_str()
            .and_then(|s| s.parse().ok());
        let Some(redo) = redo else {
            return Vec::new();
        };
        let mut v: Vec<String> = self
            .seen
            .last_lsn
            .iter()
            .filter(|(_, l)| **l > redo)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    fn pick(&mut self, v: &[String]) -> Option<String> {
        (!v.is_empty()).then(|| v[self.rng.below(v.len() as u64) as usize].clone())
    }

    /// Injects a fault on the files; false when there was nothing to do it to.
    fn file_fault(&mut self, f: Fault) -> bool {
        let share = self.w.spec.share_dir();
        let copy = self.w.spec.copy_dir();
        match f {
            Fault::DeleteBackup | Fault::TruncateBackup => {
                let present: Vec<String> = self
                    .unapplied_logs()
                    .into_iter()
                    .filter(|n| share.join(n).exists())
                    .collect();
                let Some(n) = self.pick(&present) else {
                    return false;
                };
                let p = share.join(&n);
                if f == Fault::DeleteBackup {
                    std::fs::remove_file(&p).is_ok()
                } else {
                    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    let keep = self.rng.below(len.max(1));
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&p)
                        .and_then(|f| f.set_len(keep))
                        .is_ok()
                }
            }
            Fault::CorruptCopy => {
                let unapplied: HashSet<String> = self.unapplied_logs().into_iter().collect();
                let copies: Vec<String> = files(&copy)
                    .iter()
                    .map(|p| name_of(p))
                    .filter(|n| unapplied.contains(n))
                    .collect();
                let Some(n) = self.pick(&copies) else {
                    return false;
                };
                let p = copy.join(&n);
                let Ok(mut bytes) = std::fs::read(&p) else {
                    return false;
                };
                if bytes.is_empty() {
                    return false;
                }
                let at = self.rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << self.rng.below(8);
                // In place, same size: what a bad sector or a stray writer leaves.
                if std::fs::write(&p, &bytes).is_ok() {
                    self.seen.corrupted_copies.insert(n);
                    true
                } else {
                    false
                }
            }
            _ => unreachable!("not a file fault: {f:?}"),
        }
    }

    /// Faults set up before a run (simulator state, chat shell, copy folder size).
    fn setup_fault(&mut self, f: Fault) -> bool {
        let db = self.w.spec.database.clone();
        match f {
            Fault::DropMidRestore => {
                let at = 5 + self.rng.below(90);
                self.w
                    .edit_sim_state(|v| v["faults"]["drop_at_percent"] = at.into());
                true
            }
            Fault::Storm3101 => {
                let k = 2 + self.rng.below(5);
                let sessions = 1 + self.rng.below(3);
                self.w.edit_sim_state(|v| {
                    v["faults"]["fail_restores_3101"] = k.into();
                    for _ in 0..sessions {
                        let spid = v["next_spid"].as_u64().unwrap();
                        v["next_spid"] = (spid + 1).into();
                        v["sessions"]
                            .as_array_mut()
                            .unwrap()
                            .push(serde_json::json!({
                                "spid": spid, "database": db, "reconnect": true
                            }));
                    }
                });
                true
            }
            Fault::Slow => {
                let ms = 5 + self.rng.below(25);
                self.w
                    .edit_sim_state(|v| v["faults"]["slow_ms"] = ms.into());
                true
            }
            Fault::ChatFailOnce => {
                let mut c = Command::new(common::logship());
                c.args(["sim", "chat-shell", "--state"])
                    .arg(self.w.spec.chat_dir())
                    .args(["fault", "--fail-next", "1"]);
                if self.rng.below(2) == 0 {
                    c.arg("--after");
                }
                c.status().unwrap().success()
            }
            Fault::DestFull => {
                if self.tmpfs.is_some() {
                    return false;
                }
                let copy = self.w.spec.copy_dir();
                let used: u64 = files(&copy)
                    .iter()
                    .map(|p| {
                        std::fs::metadata(p)
                            .map(|m| m.len().div_ceil(4096) * 4096)
                            .unwrap_or(0)
                    })
                    .sum();
                let room = self.rng.below(3) * self.w.spec.log_size + 8 * KIB;
                let hold = self.w.dir.path().join("hold");
                self.tmpfs = Tmpfs::over(&copy, &hold, used + room);
                if self.tmpfs.is_none() {
                    println!("    destination full: skipped (needs root and tmpfs)");
                }
                self.tmpfs.is_some()
            }
            _ => unreachable!("not a setup fault: {f:?}"),
        }
    }

    /// One run with `f` injected: before it, or at a random moment inside it. True if it landed.
    fn inject(&mut self, f: Fault) -> bool {
        let during = matches!(f, Fault::KillEngine | Fault::RestartSim)
            || matches!(
                f,
                Fault::DeleteBackup | Fault::TruncateBackup | Fault::CorruptCopy
            ) && self.rng.below(10) < 7;
        if !during {
            let landed = match f {
                Fault::DeleteBackup | Fault::TruncateBackup | Fault::CorruptCopy => {
                    self.file_fault(f)
                }
                _ => self.setup_fault(f),
            };
            let (mut child, _) = self.spawn(false);
            if wait_capped(&mut child, RUN_CAP).1 {
                self.violations
                    .push(format!("a run after {f:?} did not end in {RUN_CAP:?}"));
            }
            return landed;
        }
        let (mut child, _) = self.spawn(false);
        let delay = Duration::from_millis(self.rng.below(700));
        if !still_running_after(&mut child, delay) {
            // Ended before the moment came: the fault lands between runs instead.
            return match f {
                Fault::KillEngine => false,
                Fault::RestartSim => {
                    self.w.restart_sim();
                    true
                }
                _ => self.file_fault(f),
            };
        }
        let landed = match f {
            Fault::KillEngine => {
                let _ = child.kill();
                true
            }
            Fault::RestartSim => {
                // Down for a moment, back on the same port (its state kept).
                let port = self.w.port;
                self.w.stop_sim();
                std::thread::sleep(Duration::from_millis(self.rng.below(300)));
                self.w.start_sim_on(port);
                true
            }
            _ => self.file_fault(f),
        };
        if wait_capped(&mut child, RUN_CAP).1 {
            self.violations
                .push(format!("the run hit by {f:?} did not end in {RUN_CAP:?}"));
        }
        landed
    }

    /// Re-runs until done or a stop a human must act on (playing the operator where one would).
    fn rerun(&mut self, stats: &mut Stats) -> Option<End> {
        let mut last_error = String::new();
        let mut same = 0;
        let mut accept_gap = false;
        for _ in 0..MAX_RERUNS {
            stats.reruns += 1;
            let (mut child, name) = self.spawn(accept_gap);
            let (code, stuck) = wait_capped(&mut child, RUN_CAP);
            if stuck {
                self.violations
                    .push(format!("re-run {name} did not end in {RUN_CAP:?}"));
                return None;
            }
            let (out, err) = self.output(&name);
            let report: Option<serde_json::Value> = serde_json::from_str(&out).ok();
            let error = report
                .as_ref()
                .and_then(|r| r["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| err.lines().last().unwrap_or("").to_string());
            match code {
                Some(0) => return Some(End::Done),
                Some(3) => {
                    // A needed log is missing or unreadable: the operator may accept the gap.
                    if !accept_gap && self.rng.below(2) == 0 {
                        accept_gap = true;
                        self.seen.accept_gap = true;
                        stats.accepted_gap += 1;
                        *stats
                            .human
                            .entry("chain broken (then --accept-gap)".into())
                            .or_default() += 1;
                        continue;
                    }
                    return Some(End::Human(
                        "chain broken: a needed log is missing or damaged".into(),
                    ));
                }
                _ if error.contains("No space left") || error.contains("os error 28") => {
                    match &self.tmpfs {
                        Some(t) => {
                            // The operator frees space and runs it again.
                            t.grow();
                            *stats
                                .human
                                .entry("copy folder full (then space freed)".into())
                                .or_default() += 1;
                            continue;
                        }
                        None => return Some(End::Human("copy folder full".into())),
                    }
                }
                _ if error.contains("is damaged: SQL Server cannot read it") => {
                    return Some(End::Human("a log backup on the share is damaged".into()));
                }
                _ if error.contains("changed while SQL Server restored it") => {
                    return Some(End::Human(
                        "a copy changed while SQL Server restored it".into(),
                    ));
                }
                _ if error.contains("no longer matches the hash") => {
                    return Some(End::Human(
                        "a copy is damaged and its source is gone".into(),
                    ));
                }
                Some(2) => {
                    self.violations.push(format!("{name}: usage error {error}"));
                    return None;
                }
                _ => {
                    if error == last_error {
                        same += 1;
                    } else {
                        same = 0;
                        last_error = error.clone();
                    }
                    if same >= 3 {
                        self.violations
                            .push(format!("stuck: {name} exit {code:?}: {error}"));
                        return None;
                    }
                }
            }
        }
        self.violations.push(format!(
            "not finished after {MAX_RERUNS} re-runs: {last_error}"
        ));
        None
    }

    /// The invariants, after the runs ended.
    fn check(&mut self, end: &Option<End>) {
        let w = &self.w;
        let mut v = Vec::new();
        let st = w.sim_state();
        let db = w.database();
        let chat = w.chat_state();
        let history = st["history"].as_array().unwrap().clone();
        let done = *end == Some(End::Done);
        let online = db["state"] == "ONLINE";
        let changed = w.journal_events("log_changed_during_restore");
        let applied_ok: HashSet<String> = history
            .iter()
            .filter(|h| {
                let n = name_of(Path::new(h["path"].as_str().unwrap()));
                h["blake3"].as_str() == self.seen.originals.get(&n).map(String::as_str)
            })
            .map(|h| name_of(Path::new(h["path"].as_str().unwrap())))
            .collect();

        // 1. No copy under a final name that differs from its source.
        for p in files(&w.spec.copy_dir()) {
            let n = name_of(&p);
            if n.starts_with('.') || !p.is_file() {
                continue;
            }
            let Some(orig) = self.seen.originals.get(&n) else {
                continue;
            };
            let got = hash(&p);
            let now = hash(&w.spec.share_dir().join(&n));
            if got.as_ref() == Some(orig) || (now.is_some() && got == now) {
                continue;
            }
            let excused =
                self.seen.corrupted_copies.contains(&n) && (!done || applied_ok.contains(&n));
            if !excused {
                v.push(format!("copy {n} differs from its source"));
            }
        }

        // 2. No log applied twice or out of order; each restored file is the primary's backup.
        let mut at = w.prepared.redo_lsn;
        let mut guids = HashSet::new();
        for h in &history {
            let first: Lsn = h["first_lsn"].as_str().unwrap().parse().unwrap();
            let last: Lsn = h["last_lsn"].as_str().unwrap().parse().unwrap();
            if !guids.insert(h["backup_set_guid"].to_string()) {
                v.push(format!("applied twice: {h}"));
            }
            if !(first <= at && at < last) {
                v.push(format!("out of order at {at}: {h}"));
            }
            at = last;
            let n = name_of(Path::new(h["path"].as_str().unwrap()));
            // Bytes changed under the server while it read them: no client can prevent it; the
            // engine must notice and never bring the database online on top of them.
            let noticed = !online && changed.iter().any(|e| e["name"] == n.as_str());
            if !applied_ok.contains(&n) && !noticed {
                v.push(format!(
                    "restored {n} with content that is not the primary's backup"
                ));
            }
        }

        // 3. ONLINE only with the whole chain (unless the operator accepted the gap). The chain
        // ends at the last log there is evidence of: a file on the share or in the copy folder,
        // readable or not (a last log deleted before anyone copied it leaves no trace at all).
        let chain_end = self
            .seen
            .last_lsn
            .iter()
            .filter(|(n, _)| {
                w.spec.share_dir().join(n).exists() || w.spec.copy_dir().join(n).exists()
            })
            .map(|(_, l)| *l)
            .max()
            .unwrap_or(w.prepared.redo_lsn);
        if online && at < chain_end && !self.seen.accept_gap {
            v.push(format!(
                "ONLINE at {at} before the end of the chain {chain_end}"
            ));
        }

        // 4. PoolState flipped only after the database is ONLINE.
        let log = chat["log"].as_array().unwrap();
        let flips: Vec<&serde_json::Value> = log
            .iter()
            .filter(|e| e["cmdlet"] == "Set-CsPersistentChatState")
            .collect();
        let pool_failed_over = chat["pools"][0]["state"] == "FailedOver";
        if (pool_failed_over || !flips.is_empty()) && !online {
            v.push("pool state set while the database is not ONLINE".into());
        }
        let recovered = db["recovered_unix_ms"].as_u64();
        for f in &flips {
            let t = f["unix_ms"].as_u64().unwrap_or(0);
            if recovered.is_none_or(|r| t < r) {
                v.push(format!(
                    "pool state set at {t} ms, database ONLINE at {recovered:?}"
                ));
            }
        }

        // 5. The journal agrees with the simulator and the chat shell.
        let restored: HashSet<String> = history
            .iter()
            .map(|h| name_of(Path::new(h["path"].as_str().unwrap())))
            .collect();
        for e in w.journal_events("log_applied") {
            let n = e["name"].as_str().unwrap_or("");
            if !restored.contains(n) {
                v.push(format!(
                    "journal says {n} applied, the simulator has no such restore"
                ));
            }
        }
        let steps: HashSet<String> = w
            .journal_events("step_done")
            .iter()
            .filter_map(|e| e["step"].as_str().map(str::to_string))
            .collect();
        let checks = [
            ("recover", online),
            ("pool_state", pool_failed_over),
            (
                "mirror",
                chat["mirrors"].as_object().is_some_and(|m| !m.is_empty()),
            ),
            (
                "active_servers",
                chat["pools"][0]["active_servers"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
            ),
        ];
        for (step, holds) in checks {
            if steps.contains(step) && !holds {
                v.push(format!("journal says {step} done, the state disagrees"));
            }
        }
        let last_outcome = w
            .journal_events("run_finished")
            .last()
            .map(|e| e["outcome"].as_str().unwrap_or("").to_string());
        if done {
            if last_outcome.as_deref() != Some("done") {
                v.push(format!(
                    "finished, but the journal's last outcome is {last_outcome:?}"
                ));
            }
            for (step, holds) in checks {
                if !holds {
                    v.push(format!("finished, but {step} does not hold"));
                }
            }
            for cmdlet in [
                "Set-CsPersistentChatState",
                "Install-CsMirrorDatabase",
                "Set-CsPersistentChatActiveServer",
            ] {
                let n = log.iter().filter(|e| e["cmdlet"] == cmdlet).count();
                if n != 1 {
                    v.push(format!("{cmdlet} took effect {n} times"));
                }
            }
        }

        // 6. No password in any file the runs wrote or any captured output.
        let pw = w.prepared.password.as_bytes();
        for entry in walkdir::WalkDir::new(w.dir.path()).into_iter().flatten() {
            if entry.file_type().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                if bytes.windows(pw.len()).any(|win| win == pw) {
                    v.push(format!("password in {}", entry.path().display()));
                }
            }
        }
        self.violations.extend(v);
    }
}

fn one_seed(seed: u64, stats: &mut Stats) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let logs = 8 + rng.below(8) as u32;
    let rate = 0.5 + rng.below(4) as f64 * 0.5;
    let w = World::new(logs, 32 * KIB, |s| {
        s.seed = seed;
        s.restore_mib_per_s = Some(rate);
    });
    let originals = files(&w.spec.share_dir())
        .iter()
        .filter_map(|p| Some((name_of(p), hash(p)?)))
        .collect();
    let last_lsn = files(&w.spec.share_dir())
        .iter()
        .filter_map(|p| {
            let h = logship::backup::read_file(p).ok()?;
            Some((name_of(p), h.first()?.last_lsn))
        })
        .collect();
    let mut c = Chaos {
        w,
        rng,
        seen: Seen {
            originals,
            last_lsn,
            ..Seen::default()
        },
        runs: 0,
        tmpfs: None,
        violations: Vec::new(),
    };
    // LOGSHIP_CHAOS_FAULTS=KillEngine,CorruptCopy draws only from those kinds.
    let only: Vec<Fault> = std::env::var("LOGSHIP_CHAOS_FAULTS")
        .map(|v| {
            FAULTS
                .into_iter()
                .filter(|f| v.split(',').any(|k| k.trim() == format!("{f:?}")))
                .collect()
        })
        .unwrap_or_else(|_| FAULTS.to_vec());
    let k = (1 + c.rng.below(3)).min(only.len() as u64);
    let mut kinds = Vec::new();
    while kinds.len() < k as usize {
        let f = only[c.rng.below(only.len() as u64) as usize];
        if !kinds.contains(&f) {
            kinds.push(f);
        }
    }
    let mut landed = Vec::new();
    for f in kinds {
        if c.inject(f) {
            landed.push(f);
            *stats.injected.entry(format!("{f:?}")).or_default() += 1;
        } else {
            *stats.missed.entry(format!("{f:?}")).or_default() += 1;
        }
    }
    let end = c.rerun(stats);
    c.check(&end);
    println!(
        "seed {seed}: {logs} logs, faults {landed:?}, {} runs, end {end:?}",
        c.runs
    );
    stats.seeds += 1;
    stats.runs += c.runs as u64;
    match &end {
        Some(End::Done) => stats.finished += 1,
        Some(End::Human(r)) => *stats.human.entry(r.clone()).or_default() += 1,
        None => {}
    }
    let out = c
        .violations
        .iter()
        .map(|v| format!("seed {seed}: {v}"))
        .collect();
    if !c.violations.is_empty() && std::env::var_os("LOGSHIP_CHAOS_KEEP").is_some() {
        drop(c.tmpfs.take());
        let kept = std::mem::replace(&mut c.w.dir, tempfile::tempdir().unwrap()).keep();
        println!("seed {seed}: world kept in {}", kept.display());
    }
    drop(c.tmpfs.take());
    out
}

#[test]
fn chaos_nothing_lost_under_faults() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let n = env("LOGSHIP_CHAOS_SEEDS", 4);
    let first = env("LOGSHIP_CHAOS_SEED", 1);
    println!(
        "chaos: seeds {first}..{} (LOGSHIP_CHAOS_SEED=S LOGSHIP_CHAOS_SEEDS=1 repeats one)",
        first + n
    );
    let t0 = Instant::now();
    let mut stats = Stats::default();
    let mut violations = Vec::new();
    for seed in first..first + n {
        violations.extend(one_seed(seed, &mut stats));
    }
    println!(
        "chaos summary: seeds {} in {:.0} s; finished {}; engine runs {} (re-runs after the faults {}); \
         --accept-gap used {}\n  faults injected: {:?}\n  drawn but missed: {:?}\n  human-action stops: {:?}\n  invariant violations: {}",
        stats.seeds,
        t0.elapsed().as_secs_f64(),
        stats.finished,
        stats.runs,
        stats.reruns,
        stats.accepted_gap,
        stats.injected,
        stats.missed,
        stats.human,
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "invariant violations:\n{}",
        violations.join("\n")
    );
}
