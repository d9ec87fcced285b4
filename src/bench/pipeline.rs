//! The pipeline measured against the simulated secondary (served in-process on 127.0.0.1):
//! catch-up wall time against max(copy-only, apply-only) at three restore rates, and the drill's
//! time to ONLINE.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::phases::{copy_logship, failed};
use super::rates::{self, ApplyRate, CopyRate, Rates};
use super::stats::{mib_per_s, Samples};
use super::{io, BenchError, BenchSpec, Data, EstimateCheck, Figure};
use crate::backup::share::{write_share, FileRole, ShareSpec};
use crate::catchup::{self, Outcome, Settings};
use crate::config::{Encrypt, SqlAuth, SqlConfig};
use crate::copy::{copy_files, CopyOptions, NoProgress};
use crate::drill::{self, DrillSpec};
use crate::journal::Journal;
use crate::lsn::Lsn;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::sim;
use crate::sql::restore::{Restorer, RetryPolicy};
use crate::sql::{Connector, RestoreMode};

const DB: &str = "mgc";

/// The catch-up share and what the phases share about it.
pub struct World {
    pub work: PathBuf,
    pub share: PathBuf,
    /// A verified copy of the whole chain (with its manifest): apply-only runs start from it.
    pub precopied: PathBuf,
    pub redo: Lsn,
    pub logs: usize,
    /// Bytes of the chain's files.
    pub bytes: u64,
    pub data: Data,
    /// What a catch-up from an empty copy folder does.
    pub plan: Plan,
    counter: AtomicUsize,
}

impl World {
    pub fn generate(work: &Path, data: &Data) -> Result<World, BenchError> {
        let share = work.join("share");
        let mut spec = ShareSpec::new(&share, DB);
        spec.logs = data.logs;
        spec.log_size = data.log_size;
        let summary = write_share(&spec)?;
        let logs: Vec<_> = summary
            .files
            .iter()
            .filter(|f| f.role == FileRole::Log)
            .collect();
        let world = World {
            work: work.to_path_buf(),
            precopied: work.join("precopied"),
            redo: summary.first_lsn,
            logs: logs.len(),
            bytes: logs.iter().map(|f| f.bytes).sum(),
            data: data.clone(),
            plan: Plan {
                database: DB.into(),
                redo_lsn: None,
                to_copy: vec![],
                to_apply: vec![],
                skipped: vec![],
                gaps: vec![],
                final_lsn: None,
            },
            share,
            counter: AtomicUsize::new(0),
        };
        let plan = catchup::plan_now(&world.settings(&work.join("empty")), Some(world.redo));
        Ok(World { plan, ..world })
    }

    fn settings(&self, dest: &Path) -> Settings {
        Settings {
            database: DB.into(),
            source_dir: self.share.clone(),
            dest_dir: dest.to_path_buf(),
            dest_on_server: dest.to_string_lossy().into_owned(),
            standby_undo: dest.join("mgc_undo.tuf").to_string_lossy().into_owned(),
            pause_jobs: false,
            copy: CopyOptions::default(),
        }
    }

    fn fresh(&self, tag: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.work.join(format!("{tag}-{n}"))
    }

    /// Copies the chain once, untimed for the figures: warms the page cache and leaves the
    /// verified copy apply-only runs start from. Then times two more copy-only runs, on the warm
    /// cache as the measured runs have it, and returns the faster one's rate (MiB/s), which the
    /// simulator's restore rate is then set to. (The first copy reads a cold share.)
    pub fn warm_up(&self) -> Result<f64, BenchError> {
        std::fs::create_dir_all(&self.precopied)
            .map_err(io(format!("creating {}", self.precopied.display())))?;
        copy_logship(&self.share, &self.precopied)?;
        // The best of two: a copy right after another one's writes can find the disk busy.
        let mut best = f64::MAX;
        for _ in 0..2 {
            settle();
            let dest = self.fresh("warm-up");
            best = best.min(copy_only(self, &dest)?);
            remove(&dest)?;
        }
        Ok(mib_per_s(
            self.bytes,
            std::time::Duration::from_secs_f64(best),
        ))
    }
}

/// The simulated secondary, served on 127.0.0.1 with a fresh state, the database RESTORING at
/// the start of the chain.
pub struct Sim {
    pub connector: Connector,
    dir: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), sim::SimError>>,
}

impl Sim {
    pub async fn start(
        world: &World,
        tag: &str,
        restore_mib_per_s: Option<f64>,
    ) -> Result<Sim, BenchError> {
        let dir = sim_state_dir(&world.fresh(&format!("sim-{tag}")));
        let password = format!("bench-{}", std::process::id());
        let share = world.share.to_string_lossy();
        let mut sc = sim::Scenario::new(DB, world.redo, &share, &share, &password);
        sc.jobs_enabled = false;
        sc.restore_mib_per_s = restore_mib_per_s;
        // The stand-in's test hash is not part of the restore it models, and on two cores it
        // would take CPU from the engine being measured.
        sc.hash_restores = false;
        sim::init(&dir, &sc).map_err(|e| failed("writing the simulator's state", e))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("binding the simulator's port"))?;
        let port = listener
            .local_addr()
            .map_err(io("the simulator's port"))?
            .port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sim::serve(listener, dir.clone(), async move {
            let _ = stopped.await;
        }));
        let sql = SqlConfig {
            host: "127.0.0.1".into(),
            port: Some(port),
            instance: None,
            auth: SqlAuth::Sql,
            user: Some("failover".into()),
            password_env: "LOGSHIP_BENCH_PASSWORD".into(),
            encrypt: Encrypt::NotSupported,
            trust_server_certificate: false,
            connect_timeout_secs: 10,
        };
        let connector =
            Connector::new(&sql, Some(password)).map_err(|e| failed("simulator connector", e))?;
        Ok(Sim {
            connector,
            dir,
            stop,
            task,
        })
    }

    pub async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        let r = match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed("the simulated secondary", e)),
            Err(e) => Err(failed("the simulator task", e)),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        r
    }
}

/// Where a simulator keeps its state: in memory (/dev/shm) where there is one, else `fallback`.
///
/// The simulator rewrites its state file twice per RESTORE LOG. On the copy folder's
/// filesystem those small rename-over writes queue behind the copy's fsyncs in the filesystem
/// journal, and the simulated restores slow down only because the stand-in keeps its books on
/// the same disk: a SQL Server keeps msdb and the database's files on their own volumes, and its
/// restore's cost is what the restore rate models.
fn sim_state_dir(fallback: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    match fallback.file_name() {
        Some(name) if shm.is_dir() => shm.join(format!(
            "logship-bench-{}-{}",
            std::process::id(),
            name.to_string_lossy()
        )),
        _ => fallback.to_path_buf(),
    }
}

/// One catch-up into `dest` against a fresh simulator; returns its wall time in seconds.
async fn catchup_once(world: &World, dest: &Path, rate: f64) -> Result<f64, BenchError> {
    let sim = Sim::start(world, "catchup", Some(rate)).await?;
    let mut restorer = Restorer::new(
        sim.connector.clone(),
        DB,
        RestoreMode::NoRecovery,
        RetryPolicy::default(),
    );
    let journal_path = world.fresh("journal").with_extension("jsonl");
    let mut journal =
        Journal::open(&journal_path).map_err(|e| failed("opening the bench journal", e))?;
    let settings = world.settings(dest);
    let t = Instant::now();
    let report = catchup::run(
        &settings,
        &mut restorer,
        &mut journal,
        Arc::new(Progress::hidden()),
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .map_err(|e| failed("catch-up against the simulator", e))?;
    let secs = t.elapsed().as_secs_f64();
    restorer.close().await;
    sim.stop().await?;
    let _ = std::fs::remove_file(&journal_path);
    if report.outcome != Outcome::Done || report.applied.len() != world.plan.to_apply.len() {
        return Err(BenchError::Failed {
            what: "catch-up against the simulator".into(),
            detail: format!(
                "{:?} after {} of {} logs: {}",
                report.outcome,
                report.applied.len(),
                world.plan.to_apply.len(),
                report.error.unwrap_or_default()
            ),
        });
    }
    Ok(secs)
}

/// Copy-only: what catch-up's copy side does (scan, plan, verified copy of the chain).
fn copy_only(world: &World, dest: &Path) -> Result<f64, BenchError> {
    std::fs::create_dir_all(dest).map_err(io(format!("creating {}", dest.display())))?;
    let t = Instant::now();
    let settings = world.settings(dest);
    let plan = catchup::plan_now(&settings, Some(world.redo));
    let jobs = catchup::chain_jobs(&plan);
    let r = copy_files(
        &jobs,
        dest,
        &settings.copy,
        &NoProgress,
        &|_| {},
        &AtomicBool::new(false),
    )?;
    let secs = t.elapsed().as_secs_f64();
    if !r.ok() || r.copied.len() != world.plan.to_apply.len() {
        return Err(BenchError::Failed {
            what: "copy-only run".into(),
            detail: format!("{} of {} files copied", r.copied.len(), jobs.len()),
        });
    }
    Ok(secs)
}

/// The restore rate factors: equal to the copy rate, 3x slower, 3x faster.
pub const FACTORS: [(f64, &str); 3] = [
    (1.0, "= copy rate"),
    (1.0 / 3.0, "3x slower than copy"),
    (3.0, "3x faster than copy"),
];

#[derive(Default)]
pub struct Measured {
    /// Copy-only beside each rate's catch-up, so each ratio compares runs on a disk in the same
    /// state (a catch-up writes the whole chain; the next run's copy finds the device busier).
    pub copy_only: [Samples; 3],
    pub apply_only: [Samples; 3],
    pub catchup: [Samples; 3],
    pub baseline: [Samples; 3],
    pub drill_online: Samples,
    pub drill_catchup: Samples,
}

/// One run of the catch-up phase: at each rate, copy-only, apply-only and catch-up back to back.
pub fn catchups(
    rt: &tokio::runtime::Runtime,
    world: &World,
    copy_rate: f64,
    run: usize,
    m: &mut Measured,
) -> Result<(), BenchError> {
    for (i, (factor, _)) in FACTORS.iter().enumerate() {
        let rate = copy_rate * factor;
        let (mut copy_s, mut apply_s, mut catch_s) = (0.0, 0.0, 0.0);
        // The order rotates with the run and the rate, so none of the three always runs on a
        // warmer machine or right after another one's writes.
        for k in 0..3 {
            settle();
            super::stats::touch_memory(world.bytes);
            match (k + run + i) % 3 {
                0 => {
                    let dest = world.fresh("copy-only");
                    copy_s = copy_only(world, &dest)?;
                    remove(&dest)?;
                }
                1 => apply_s = rt.block_on(catchup_once(world, &world.precopied, rate))?,
                _ => {
                    let dest = world.fresh("catchup");
                    catch_s = rt.block_on(catchup_once(world, &dest, rate))?;
                    remove(&dest)?;
                }
            }
        }
        m.copy_only[i].push(copy_s);
        m.apply_only[i].push(apply_s);
        m.catchup[i].push(catch_s);
        m.baseline[i].push(copy_s.max(apply_s));
    }
    Ok(())
}

/// Writes back what earlier runs left dirty, so a run does not pay for the one before it.
fn settle() {
    #[cfg(unix)]
    rustix::fs::sync();
}

fn remove(dir: &Path) -> Result<(), BenchError> {
    std::fs::remove_dir_all(dir).map_err(io(format!("removing {}", dir.display())))
}

/// One drill: a whole failover against the simulators; time to ONLINE and its catch-up part.
pub fn drill(
    rt: &tokio::runtime::Runtime,
    world: &World,
    data: &Data,
    spec: &BenchSpec,
    _run: usize,
    m: &mut Measured,
) -> Result<(), BenchError> {
    let dir = world.fresh("drill");
    let mut d = DrillSpec::new(dir.clone(), spec.logship_exe.clone());
    d.logs = data.drill_logs;
    d.log_size = data.drill_log_size;
    d.already_copied = data.drill_logs / 4;
    d.already_applied = data.drill_logs / 5;
    let (report, _) = rt
        .block_on(drill::run(&d, true, false))
        .map_err(|e| BenchError::Failed {
            what: "the drill".into(),
            detail: format!("{e:#}"),
        })?;
    if !drill::succeeded(&report) {
        return Err(BenchError::Failed {
            what: "the drill".into(),
            detail: format!(
                "ended {}: {}",
                report.outcome,
                report.error.unwrap_or_default()
            ),
        });
    }
    m.drill_online.push(report.seconds);
    m.drill_catchup
        .push(report.catchup.as_ref().map(|c| c.seconds).unwrap_or(0.0));
    remove(&dir)
}

impl Measured {
    pub fn figures(&self, copy_rate: f64) -> Vec<Figure> {
        let mut out = Vec::new();
        for (i, (factor, label)) in FACTORS.iter().enumerate() {
            let key = ["catchup_equal", "catchup_slower", "catchup_faster"][i];
            out.push(
                Figure::new(
                    key,
                    format!(
                        "catch-up, restore {label} ({:.0} MiB/s)",
                        copy_rate * factor
                    ),
                    "s",
                    false,
                    &self.catchup[i],
                )
                .against("max(copy-only, apply-only)", &self.baseline[i])
                .target("<= 1.1")
                .note(format!(
                    "copy-only {:.2} s, apply-only {:.2} s (medians)",
                    self.copy_only[i].median(),
                    self.apply_only[i].median()
                )),
            );
        }
        out.push(
            Figure::new(
                "drill_online",
                "drill: failover to ONLINE",
                "s",
                false,
                &self.drill_online,
            )
            .against("its catch-up part", &self.drill_catchup)
            .note("the ratio shows what the finishing steps add"),
        );
        out
    }

    /// The rates this run measured: copy from the copy-only runs, apply from the apply-only runs
    /// with the restore rate equal to the copy rate (a fixed cost per log on top of the rate).
    pub fn rates(&self, world: &World, copy_rate: f64, m: &super::phases::Measured) -> Rates {
        let now = rates::now_unix();
        let mib = world.bytes as f64 / (1024.0 * 1024.0);
        let all = Samples {
            values: self
                .copy_only
                .iter()
                .flat_map(|c| c.values.clone())
                .collect(),
        };
        let copy = mib / all.median().max(1e-9);
        let apply_s = self.apply_only[0].median();
        let per_log = ((apply_s - mib / copy_rate) / world.logs.max(1) as f64).max(0.0);
        Rates {
            copy: CopyRate {
                mib_per_s: copy,
                source: format!(
                    "logship bench: verified copy ({} workers, reread) of {} generated logs of {} in {}",
                    CopyOptions::default().workers,
                    world.logs,
                    super::phases::size_label(world.data.log_size),
                    world.work.parent().unwrap_or(&world.work).display()
                ),
                measured_at: now,
            },
            apply: Some(ApplyRate {
                mib_per_s: copy_rate,
                seconds_per_log: per_log,
                source: format!(
                    "logship bench: the simulated secondary with its restore rate set to {copy_rate:.0} MiB/s \
                     (not a real SQL Server)"
                ),
                measured_at: now,
            }),
            headers_per_s: Some(m.headers_rayon.median()),
        }
    }

    /// The estimate `logship plan` would print for this data, against the measured catch-up.
    pub fn estimate_check(&self, world: &World, r: &Rates) -> Option<EstimateCheck> {
        let measured = self.catchup[0].median();
        if measured <= 0.0 {
            return None;
        }
        let e = rates::estimate(&world.plan, r, None);
        let error = (e.seconds - measured) / measured;
        Some(EstimateCheck {
            estimate_seconds: e.seconds,
            measured_seconds: measured,
            error,
            within_25_percent: error.abs() <= 0.25,
        })
    }
}
