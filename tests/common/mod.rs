//! A rehearsal world for integration tests: a generated share, the simulated secondary as its
//! own process on 127.0.0.1, the simulated chat pool, and a configuration file pointing at them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use logship::drill::{self, DrillSpec, Prepared};
use logship::lsn::Lsn;

pub fn logship() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_logship"))
}

/// Starts `logship sim` on `state`, listening on `listen` (port 0 picks one); returns the
/// process and the port it printed on its first line.
pub fn spawn_sim(state: &Path, listen: &str) -> (Child, u16) {
    let mut child = Command::new(logship())
        .args(["sim", "--listen", listen, "--state"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("sim printed {line:?}"));
    (child, addr.port())
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub spec: DrillSpec,
    pub prepared: Prepared,
    pub config_path: PathBuf,
    pub sim: Option<Child>,
    pub port: u16,
}

impl World {
    /// A world of `logs` log backups of `log_size` bytes, built by `tweak`ed drill settings.
    pub fn new(logs: u32, log_size: u64, tweak: impl FnOnce(&mut DrillSpec)) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = DrillSpec::new(dir.path().to_path_buf(), logship());
        spec.logs = logs;
        spec.log_size = log_size;
        spec.already_copied = logs / 4;
        spec.already_applied = logs / 5;
        spec.sessions = 2;
        tweak(&mut spec);
        let prepared = drill::prepare(&spec, 0).unwrap();
        let mut w = World {
            config_path: dir.path().join("logship.toml"),
            dir,
            spec,
            prepared,
            sim: None,
            port: 0,
        };
        w.start_sim();
        w
    }

    /// Starts (or restarts) the simulated secondary and rewrites the configuration's port.
    pub fn start_sim(&mut self) {
        self.start_sim_on(0);
    }

    /// Restarts the simulator on the port it had, as a restarted SQL Server keeps its port.
    pub fn restart_sim(&mut self) {
        let port = self.port;
        self.stop_sim();
        self.start_sim_on(port);
    }

    pub fn start_sim_on(&mut self, port: u16) {
        let (child, port) = spawn_sim(&self.spec.sim_dir(), &format!("127.0.0.1:{port}"));
        self.port = port;
        self.sim = Some(child);
        self.prepared.config.sql.port = Some(self.port);
        std::fs::write(
            &self.config_path,
            toml::to_string(&self.prepared.config).unwrap(),
        )
        .unwrap();
    }

    /// Stops the simulator, changes its saved state (faults, sessions), and starts it again.
    pub fn edit_sim_state(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        let port = self.port;
        self.stop_sim();
        let path = self.spec.sim_dir().join("state.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        self.start_sim_on(port);
    }

    /// Spawns the engine with stdout and stderr kept in `runs/NAME.out` and `runs/NAME.err`.
    pub fn spawn_logged(&self, args: &[&str], name: &str) -> Child {
        let runs = self.dir.path().join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let out = std::fs::File::create(runs.join(format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(runs.join(format!("{name}.err"))).unwrap();
        self.command(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap()
    }

    pub fn stop_sim(&mut self) {
        if let Some(mut c) = self.sim.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(logship());
        c.args(args).arg("--config").arg(&self.config_path).env(
            &self.prepared.config.sql.password_env,
            &self.prepared.password,
        );
        c.env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The simulator's state, as `logship sim show` prints it.
    pub fn sim_state(&self) -> serde_json::Value {
        let out = Command::new(logship())
            .args(["sim", "show", "--state"])
            .arg(self.spec.sim_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn chat_state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.spec.chat_dir().join("chat-pool.json")).unwrap())
            .unwrap()
    }

    pub fn database(&self) -> serde_json::Value {
        let st = self.sim_state();
        st["databases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == self.spec.database.as_str())
            .unwrap()
            .clone()
    }

    pub fn journal_path(&self) -> PathBuf {
        self.prepared.config.journal_path()
    }

    /// Journal records of a kind (`step_done`, `log_applied`, ...).
    pub fn journal_events(&self, kind: &str) -> Vec<serde_json::Value> {
        let Ok(text) = std::fs::read_to_string(self.journal_path()) else {
            return vec![];
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == kind)
            .collect()
    }

    /// Every restore in the simulator's history continues the one before; none is repeated.
    pub fn assert_history_is_one_chain(&self, from: Lsn) {
        let st = self.sim_state();
        let mut at = from;
        let mut seen = std::collections::HashSet::new();
        for h in st["history"].as_array().unwrap() {
            let first: Lsn = h["first_lsn"].as_str().unwrap().parse().unwrap();
            let last: Lsn = h["last_lsn"].as_str().unwrap().parse().unwrap();
            assert!(
                seen.insert(h["backup_set_guid"].clone()),
                "applied twice: {h}"
            );
            assert!(
                first <= at && at < last,
                "out of order: {h} applied at {at}"
            );
            at = last;
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_sim();
    }
}

/// Kills `child` after `delay` (or when it ends by itself). True if it was killed.
pub fn kill_after(child: &mut Child, delay: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// A small deterministic generator for test choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// BLAKE3 of a file's content, in hex; `None` when it cannot be read.
pub fn hash(p: &Path) -> Option<String> {
    std::fs::read(p)
        .ok()
        .map(|b| blake3::hash(&b).to_hex().to_string())
}

/// The entries of a folder, sorted; none when it cannot be listed.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

pub fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}
