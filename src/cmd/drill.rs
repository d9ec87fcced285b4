//! `logship drill`: the built-in rehearsal, end to end, with no arguments.

use anyhow::Context;

use super::{usage, Status};
use crate::cli::{DrillArgs, GlobalArgs};
use crate::config::parse_size;
use crate::drill::{self, DrillSpec};

pub fn run(g: &GlobalArgs, a: &DrillArgs) -> anyhow::Result<Status> {
    let log_size = parse_size(&a.log_size).map_err(|e| usage(format!("--log-size: {e}")))?;
    if a.logs < 2 {
        return Err(usage("--logs must be at least 2"));
    }
    let (dir, _temp) = drill::folder(a.dir.as_deref())?;
    let exe = std::env::current_exe()
        .context("finding the logship program (it stands in for powershell.exe)")?;
    let mut spec = DrillSpec::new(dir.clone(), exe);
    spec.logs = a.logs;
    spec.log_size = log_size;
    spec.already_copied = a.logs / 4;
    spec.already_applied = a.logs / 5;
    spec.restore_mib_per_s = a.restore_mib_per_s;
    spec.workers = a.workers;
    spec.seed = a.seed;
    let quiet = a.json || g.quiet;
    if !quiet {
        eprintln!(
            "drill: {} logs of {} in {}, simulated secondary on 127.0.0.1, simulated chat pool",
            a.logs,
            a.log_size,
            dir.display()
        );
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (report, _prepared) = rt.block_on(drill::run(&spec, quiet, !g.no_progress))?;
    let report_dir = a
        .report
        .clone()
        .or_else(|| a.dir.as_ref().map(|d| d.join("report")));
    let status = super::failover::finish(&report, a.json, report_dir.as_deref())?;
    if let Some(d) = &report_dir {
        if !quiet {
            println!("  report: {}", d.join("failover.html").display());
        }
    }
    if status == Status::Done && !drill::succeeded(&report) {
        return Ok(Status::Failed);
    }
    Ok(status)
}
