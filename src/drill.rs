//! The drill: a whole failover rehearsed against a generated share, the simulated secondary
//! (served in-process over TCP) and the simulated chat pool, through the production code path.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::backup::share::{write_share, FileRole, ShareSpec};
use crate::cmd::failover::{run_failover, Options};
use crate::config::{ChatConfig, Config, CopyConfig, Encrypt, MirrorConfig, SqlAuth, SqlConfig};
use crate::failover::Report;
use crate::lsn::Lsn;
use crate::sim;
use crate::sim::chat_shell::{self, ChatShellState};
use crate::sql::Connector;

/// What to rehearse.
#[derive(Clone, Debug)]
pub struct DrillSpec {
    /// The database (the Persistent Chat database is `mgc`).
    pub database: String,
    /// Faults the simulated secondary starts with.
    pub faults: sim::state::Faults,
    /// Log shipping restores WITH STANDBY (read-only between restores) instead of NORECOVERY.
    pub standby: bool,
    /// Where the share, the copy folder and the simulators' state go.
    pub dir: PathBuf,
    pub logs: u32,
    pub log_size: u64,
    /// Logs log shipping had already copied before the outage.
    pub already_copied: u32,
    /// Logs the secondary had already restored (no more than `already_copied`).
    pub already_applied: u32,
    /// The simulated server's restore throughput; `None` is unthrottled.
    pub restore_mib_per_s: Option<f64>,
    /// User sessions connected to the database (one reconnects after KILL).
    pub sessions: u16,
    pub seed: u64,
    /// The program that stands in for powershell.exe (`logship sim chat-shell`).
    pub logship_exe: PathBuf,
    pub workers: Option<usize>,
}

pub const POOL: &str = "atl-cs-001.litwareinc.com";
pub const SERVERS: [&str; 2] = ["atl-pc-101.litwareinc.com", "atl-pc-102.litwareinc.com"];
pub const BACKUP_SQL: &str = "atl-sql-002.litwareinc.com";
const SITE: &str = "ATL-backup";

impl DrillSpec {
    pub fn new(dir: PathBuf, logship_exe: PathBuf) -> DrillSpec {
        DrillSpec {
            database: "mgc".into(),
            faults: sim::state::Faults::default(),
            standby: false,
            dir,
            logs: 200,
            log_size: 4 << 20,
            already_copied: 50,
            already_applied: 40,
            restore_mib_per_s: None,
            sessions: 3,
            seed: 1,
            logship_exe,
            workers: None,
        }
    }

    pub fn share_dir(&self) -> PathBuf {
        self.dir.join("share")
    }
    pub fn copy_dir(&self) -> PathBuf {
        self.dir.join("copy")
    }
    pub fn sim_dir(&self) -> PathBuf {
        self.dir.join("sim")
    }
    pub fn chat_dir(&self) -> PathBuf {
        self.dir.join("chat")
    }
}

/// The prepared world: the configuration that points at it and the simulator's password.
pub struct Prepared {
    pub config: Config,
    pub password: String,
    pub redo_lsn: Lsn,
    pub final_lsn: Lsn,
}

/// Writes the share, the copies log shipping had made, and both simulators' state.
pub fn prepare(spec: &DrillSpec, port: u16) -> anyhow::Result<Prepared> {
    for d in [spec.copy_dir(), spec.sim_dir(), spec.chat_dir()] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut share = ShareSpec::new(spec.share_dir(), &spec.database);
    share.logs = spec.logs;
    share.log_size = spec.log_size;
    share.seed = spec.seed;
    share.server = "ATL-SQL-001".into();
    let summary = write_share(&share).context("writing the backup share")?;
    let mut logs: Vec<_> = summary
        .files
        .iter()
        .filter(|f| f.role == FileRole::Log)
        .collect();
    logs.sort_by_key(|f| f.header.first_lsn);
    let applied = (spec.already_applied as usize).min(logs.len());
    let copied = (spec.already_copied as usize).clamp(applied, logs.len());
    // Log shipping's copy job had brought these over (no manifest: the engine verifies them).
    for f in &logs[..copied] {
        let name = f.path.file_name().expect("a file name");
        std::fs::copy(&f.path, spec.copy_dir().join(name))
            .with_context(|| format!("copying {}", f.path.display()))?;
    }
    let redo_lsn = if applied == 0 {
        summary.first_lsn
    } else {
        logs[applied - 1].header.last_lsn
    };
    let name_of = |i: usize| {
        logs.get(i).map(|f| {
            f.path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
    };

    let password = format!("drill-{:016x}", rand_u64(spec.seed));
    let share_s = spec.share_dir().to_string_lossy().into_owned();
    let copy_s = spec.copy_dir().to_string_lossy().into_owned();
    let mut sc = sim::Scenario::new(&spec.database, redo_lsn, &share_s, &copy_s, &password);
    sc.faults = spec.faults.clone();
    sc.standby = spec.standby;
    sc.sessions = spec.sessions;
    sc.reconnecting_sessions = spec.sessions.min(1);
    sc.restore_mib_per_s = spec.restore_mib_per_s;
    sc.last_copied_file = copied.checked_sub(1).and_then(name_of);
    sc.last_restored_file = applied.checked_sub(1).and_then(name_of);
    sim::init(&spec.sim_dir(), &sc).context("writing the simulator's scenario")?;

    let servers: Vec<String> = SERVERS.iter().map(|s| s.to_string()).collect();
    let state = ChatShellState::new_pool(POOL, &servers, &[BACKUP_SQL.to_string()]);
    chat_shell::init(&spec.chat_dir(), &state, true).context("writing the chat pool's state")?;

    let shell = chat_shell::shell_command(&spec.logship_exe, &spec.chat_dir());
    let config = Config {
        database: spec.database.clone(),
        source_dir: spec.share_dir(),
        dest_dir: spec.copy_dir(),
        dest_dir_on_server: None,
        sql: SqlConfig {
            host: "127.0.0.1".into(),
            port: Some(port),
            instance: None,
            auth: SqlAuth::Sql,
            user: Some("failover".into()),
            password_env: "LOGSHIP_DRILL_PASSWORD".into(),
            encrypt: Encrypt::NotSupported,
            trust_server_certificate: false,
            connect_timeout_secs: 10,
        },
        chat: Some(ChatConfig {
            pool_fqdn: POOL.into(),
            active_servers: servers.clone(),
            database_site: Some(SITE.into()),
            server_sites: servers
                .iter()
                .map(|s| (s.clone(), SITE.to_string()))
                .collect(),
            mirror: MirrorConfig {
                sql_server_fqdn: BACKUP_SQL.into(),
                sql_instance_name: None,
                file_share: r"\\atl-fs-01\mirror".into(),
                drop_existing_databases_on_mirror: false,
            },
            module: crate::chat::DEFAULT_MODULE.into(),
            shell,
            timeout_secs: 60,
        }),
        copy: CopyConfig {
            workers: spec.workers,
            ..CopyConfig::default()
        },
        journal: Some(spec.dir.join("journal.jsonl")),
    };
    config.validate()?;
    Ok(Prepared {
        config,
        password,
        redo_lsn,
        final_lsn: summary.last_lsn,
    })
}

fn rand_u64(seed: u64) -> u64 {
    let mut p = crate::backup::synth::Prng::new(seed ^ 0x5eed);
    p.next_u64()
}

/// Runs the drill: prepares the world, serves the simulator on 127.0.0.1, fails over.
pub async fn run(
    spec: &DrillSpec,
    quiet: bool,
    progress: bool,
) -> anyhow::Result<(Report, Prepared)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the simulator's port")?;
    let port = listener.local_addr()?.port();
    let prepared = {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || prepare(&spec, port))
            .await
            .expect("prepare thread")?
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim::serve(listener, spec.sim_dir(), async move {
        let _ = stopped.await;
    }));
    let connector = Connector::new(&prepared.config.sql, Some(prepared.password.clone()))?;
    let opts = Options {
        what_if: false,
        allow_remote_site: false,
        accept_gap: false,
        workers: spec.workers,
        verify: None,
        quiet,
        progress,
    };
    let report = run_failover(&prepared.config, connector, &opts).await;
    let _ = stop.send(());
    server
        .await
        .context("simulator task")?
        .context("simulated secondary")?;
    Ok((report?, prepared))
}

/// The drill succeeded: the database ONLINE, the pool FailedOver, mirror and servers in place.
pub fn succeeded(r: &Report) -> bool {
    let f = &r.final_state;
    r.outcome == "done"
        && f.database_state.as_deref() == Some("ONLINE")
        && f.pool_state.as_deref() == Some("FailedOver")
        && f.mirror_installed == Some(true)
        && f.active_servers
            .as_ref()
            .is_some_and(|s| s.len() == SERVERS.len())
}

/// The folder for a drill: the one asked for, or a fresh temporary one.
pub fn folder(dir: Option<&Path>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            Ok((d.to_path_buf(), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("logship-drill-")
                .tempdir()
                .context("creating a temporary folder")?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}
