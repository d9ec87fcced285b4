//! The phases measured alone: native header reads against RESTORE HEADERONLY through the
//! simulator, planning over synthesized headers, and the verified copy against `cp -r` and
//! `cp -r` then `b3sum` of both sides.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::pipeline::{Sim, World};
use super::stats::{files_in, mib_per_s, on_path, rate_over, run_quiet, Samples};
use super::{io, BenchError, Data, Figure};
use crate::backup::share::{write_share, ShareSpec};
use crate::backup::synth::SynthBackup;
use crate::backup::{read_file, MtfDate};
use crate::copy::{copy_files, discover_backups, CopyOptions, NoProgress};
use crate::lsn::Lsn;
use crate::plan::{self, PlanInput};
use crate::scan::{FileKind, ScannedFile};
use crate::sql::Statement;

/// A share of small logs, for the header rate.
pub struct HeaderData {
    pub paths: Vec<PathBuf>,
}

impl HeaderData {
    pub fn generate(work: &Path, data: &Data) -> Result<HeaderData, BenchError> {
        let paths = header_share(
            &work.join("headers"),
            data.header_logs,
            data.header_log_size,
        )?;
        Ok(HeaderData { paths })
    }
}

/// Writes `logs` logs of `log_size` into `dir` and reads each once, so header reads afterwards
/// measure parsing and system calls, not the disk. Returns the files (also `benches/headers.rs`).
pub fn header_share(
    dir: &Path,
    logs: u32,
    log_size: u64,
) -> Result<Vec<PathBuf>, crate::backup::share::ShareError> {
    let mut spec = ShareSpec::new(dir, "mgc");
    spec.logs = logs;
    spec.log_size = log_size;
    let summary = write_share(&spec)?;
    let paths: Vec<PathBuf> = summary.files.iter().map(|f| f.path.clone()).collect();
    for p in &paths {
        let _ = read_file(p);
    }
    Ok(paths)
}

/// Headers of a 10,000-log share, synthesized in memory: the planner's input without the disk.
pub struct PlanData {
    pub source: Vec<ScannedFile>,
    pub logs: u32,
}

impl PlanData {
    pub fn synthesize(logs: u32) -> PlanData {
        PlanData {
            source: synthetic_logs(logs),
            logs,
        }
    }
}

/// A continuous chain of `logs` log backups of `mgc` in `/share`, as a scan would return them,
/// built in memory (the planner's input without the disk; also `benches/plan.rs`).
pub fn synthetic_logs(logs: u32) -> Vec<ScannedFile> {
    let dir = Path::new("/share");
    (0..logs)
        .map(|i| {
            // 64 KiB of log per backup: 8 pages of 16 blocks.
            let first = Lsn::new(40 + i / 20_000, 1000 + (i % 20_000) * 128, 1);
            let last = Lsn::new(40 + (i + 1) / 20_000, 1000 + ((i + 1) % 20_000) * 128, 1);
            let start = MtfDate::from_unix(1_767_571_200 + 300 * i as u64);
            let set = SynthBackup::log("mgc", first, last, start, i as u64 + 1);
            let path = dir.join(format!("mgc_{i:08}.trn"));
            ScannedFile {
                kind: FileKind::Backup,
                size: 100_864,
                modified: None,
                headers: Ok(vec![set.header(&path)]),
                path,
            }
        })
        .collect()
}

/// Raw samples of the phases measured alone.
#[derive(Default)]
pub struct Measured {
    pub headers_rayon: Samples,
    pub headers_one: Samples,
    pub headers_sim: Samples,
    pub plan_ms: Samples,
    pub copy_logship: Samples,
    pub copy_cp: Samples,
    pub copy_cp_b3sum: Samples,
}

/// Header reads per second: rayon, one thread, and the simulator's RESTORE HEADERONLY.
pub fn headers(
    rt: &tokio::runtime::Runtime,
    h: &HeaderData,
    world: &World,
    m: &mut Measured,
) -> Result<(), BenchError> {
    let min = Duration::from_millis(300);
    let count = |p: &PathBuf| read_file(p).map(|h| h.len()).unwrap_or(0);
    m.headers_rayon.push(rate_over(min, h.paths.len(), || {
        std::hint::black_box(h.paths.par_iter().map(count).sum::<usize>());
    }));
    m.headers_one.push(rate_over(min, h.paths.len(), || {
        std::hint::black_box(h.paths.iter().map(count).sum::<usize>());
    }));
    let files = &h.paths[..h.paths.len().min(world.data.sim_header_files)];
    let rate = rt.block_on(async {
        let sim = Sim::start(world, "headers", None).await?;
        let mut conn = sim
            .connector
            .connect(Some(Duration::from_secs(30)))
            .await
            .map_err(|e| failed("connecting to the simulator", e))?;
        let t = Instant::now();
        for p in files {
            let rows = conn
                .query(&Statement::headers_only(&p.to_string_lossy()))
                .await
                .map_err(|e| failed("RESTORE HEADERONLY through the simulator", e))?;
            if rows.is_empty() {
                return Err(BenchError::Failed {
                    what: "RESTORE HEADERONLY through the simulator".into(),
                    detail: format!("no row for {}", p.display()),
                });
            }
        }
        let rate = files.len() as f64 / t.elapsed().as_secs_f64();
        conn.close().await;
        sim.stop().await?;
        Ok::<f64, BenchError>(rate)
    })?;
    m.headers_sim.push(rate);
    Ok(())
}

pub(crate) fn failed(what: &str, e: impl std::error::Error) -> BenchError {
    BenchError::Failed {
        what: what.into(),
        detail: crate::catchup::error_chain(&e),
    }
}

/// Plan time in milliseconds over the synthesized headers (the median of a few plans).
pub fn plan(p: &PlanData, m: &mut Measured) {
    let dest = Path::new("/copy");
    let mut one = Samples::default();
    for _ in 0..5 {
        let t = Instant::now();
        let plan = plan::plan(&PlanInput {
            database: "mgc",
            redo_lsn: None,
            dest_dir: dest,
            source: &p.source,
            dest: &[],
        });
        one.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(plan.to_apply.len(), p.logs as usize, "a continuous chain");
    }
    m.plan_ms.push(one.median());
}

/// The verified copy (default mode), `cp -r`, and `cp -r` then `b3sum` of both sides, each into
/// a fresh folder; the order rotates with the run so no tool always goes first.
pub fn copy(world: &World, run: usize, m: &mut Measured) -> Result<(), BenchError> {
    let bytes = world.bytes;
    let b3 = on_path("b3sum");
    for k in 0..3 {
        let which = (k + run) % 3;
        let dest = world.work.join(format!("copy-{which}"));
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).map_err(io(format!("creating {}", dest.display())))?;
        super::stats::touch_memory(bytes);
        let t = Instant::now();
        match which {
            0 => {
                copy_logship(&world.share, &dest)?;
                m.copy_logship.push(mib_per_s(bytes, t.elapsed()));
            }
            1 => {
                cp(&world.share, &dest)?;
                m.copy_cp.push(mib_per_s(bytes, t.elapsed()));
            }
            _ if b3 => {
                cp(&world.share, &dest)?;
                b3sum(&world.share)?;
                b3sum(&dest)?;
                m.copy_cp_b3sum.push(mib_per_s(bytes, t.elapsed()));
            }
            _ => {}
        }
        std::fs::remove_dir_all(&dest).map_err(io(format!("removing {}", dest.display())))?;
    }
    Ok(())
}

/// `logship copy` of every backup in `src`, default options; fails unless every file verified.
pub fn copy_logship(src: &Path, dest: &Path) -> Result<crate::copy::CopyReport, BenchError> {
    let jobs = discover_backups(src).map_err(|e| BenchError::Failed {
        what: format!("listing {}", src.display()),
        detail: e.to_string(),
    })?;
    let r = copy_files(
        &jobs,
        dest,
        &CopyOptions::default(),
        &NoProgress,
        &|_| {},
        &AtomicBool::new(false),
    )?;
    if !r.ok() {
        return Err(BenchError::Failed {
            what: format!("copying {}", src.display()),
            detail: r
                .failed
                .iter()
                .map(|f| crate::catchup::error_chain(&f.error))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(r)
}

/// `cp -r SRC/. DEST/`.
pub fn cp(src: &Path, dest: &Path) -> Result<(), BenchError> {
    let (s, d) = (src.join("."), dest.join(""));
    if run_quiet("cp", &[OsStr::new("-r"), s.as_os_str(), d.as_os_str()]) {
        Ok(())
    } else {
        Err(BenchError::Failed {
            what: format!("cp -r {} {}", s.display(), d.display()),
            detail: "cp failed".into(),
        })
    }
}

/// `b3sum DIR/*`.
pub fn b3sum(dir: &Path) -> Result<(), BenchError> {
    let files = files_in(dir).map_err(io(format!("listing {}", dir.display())))?;
    let args: Vec<&OsStr> = files.iter().map(|p| p.as_os_str()).collect();
    if run_quiet("b3sum", &args) {
        Ok(())
    } else {
        Err(BenchError::Failed {
            what: format!("b3sum {}/*", dir.display()),
            detail: "b3sum failed".into(),
        })
    }
}

impl Measured {
    pub fn figures(&self, h: &HeaderData, data: &Data) -> Vec<Figure> {
        let threads = rayon::current_num_threads();
        let sim = format!(
            "RESTORE HEADERONLY via simulator (tiberius, 1 round trip/file, {} files)",
            data.sim_header_files.min(h.paths.len())
        );
        let mut out = vec![
            Figure::new(
                "headers_rayon",
                format!(
                    "native headers, rayon {threads} threads ({} logs)",
                    h.paths.len()
                ),
                "headers/s",
                true,
                &self.headers_rayon,
            )
            .against(&sim, &self.headers_sim)
            .target(">= 50,000 headers/s"),
            Figure::new(
                "headers_one_thread",
                format!("native headers, 1 thread ({} logs)", h.paths.len()),
                "headers/s",
                true,
                &self.headers_one,
            )
            .against(&sim, &self.headers_sim),
            Figure::new(
                "plan_ms",
                format!("plan over {} logs (headers in memory)", data.plan_logs),
                "ms",
                false,
                &self.plan_ms,
            )
            .against_target("target 50 ms", 50.0)
            .target("< 50 ms"),
        ];
        let label = format!(
            "verified copy, reread ({} logs of {})",
            data.logs,
            size_label(data.log_size)
        );
        out.push(
            Figure::new("copy_vs_cp", &label, "MiB/s", true, &self.copy_logship)
                .against("cp -r", &self.copy_cp)
                .note("logship fsyncs and re-reads every file; cp does neither"),
        );
        let f = Figure::new(
            "copy_vs_cp_b3sum",
            &label,
            "MiB/s",
            true,
            &self.copy_logship,
        );
        out.push(if self.copy_cp_b3sum.is_empty() {
            f.absent("cp -r, then b3sum both sides", "absent: b3sum not on PATH")
        } else {
            f.against("cp -r, then b3sum both sides", &self.copy_cp_b3sum)
                .target(">= 1.5x")
        });
        out
    }
}

/// 4 MiB, 256 KiB, 100 B.
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}
