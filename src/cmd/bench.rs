//! `logship bench`: runs the benchmark, prints the table (or JSON), saves the measured rates.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::{usage, Status};
use crate::bench::{self, rates, BenchReport, BenchSpec, RealSpec, Size};
use crate::cli::{BenchArgs, GlobalArgs};

pub fn run(g: &GlobalArgs, a: &BenchArgs) -> anyhow::Result<Status> {
    if a.runs == 0 {
        return Err(usage("--runs must be at least 1"));
    }
    let verbose = !g.quiet;
    let (mut report, new_rates) = match (&a.source, &a.dest) {
        (Some(source), Some(dest)) => {
            let spec = RealSpec {
                source: source.clone(),
                dest: dest.clone(),
                runs: a.runs,
                verbose,
            };
            let (report, measured) = bench::run_real(&spec)?;
            (report, measured)
        }
        _ => {
            let size = if a.full {
                Size::Full
            } else if a.quick {
                Size::Quick
            } else {
                Size::Default
            };
            let spec = BenchSpec {
                size,
                runs: a.runs,
                dir: a.dir.clone().unwrap_or_else(default_dir),
                logship_exe: std::env::current_exe()
                    .context("finding the logship program (the drill's chat shell)")?,
                verbose,
            };
            let report = bench::run(&spec)?;
            let measured = report
                .rates
                .clone()
                .expect("a generated run measures rates");
            (report, measured)
        }
    };
    report.command = command_line();
    if !a.no_save {
        if let Some(path) = rates::default_path() {
            // A run on a real share measures no apply rate: keep the last one.
            let mut keep = new_rates;
            if keep.apply.is_none() {
                if let Ok(Some(old)) = rates::load(&path) {
                    keep.apply = old.apply;
                }
            }
            rates::save(&path, &keep)?;
            report.rates_file = Some(path);
        }
    }
    print(&report, a.json)?;
    Ok(Status::Done)
}

fn print(r: &BenchReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, r)?;
        writeln!(out)?;
        return Ok(());
    }
    let m = &r.machine;
    writeln!(
        out,
        "logship bench ({}): {} CPUs, {} MiB, {}",
        r.mode,
        m.nproc,
        m.memory_mib.map(|v| v.to_string()).unwrap_or("?".into()),
        m.cpu.as_deref().unwrap_or("unknown CPU")
    )?;
    writeln!(out, "command: {}\n", r.command)?;
    write!(out, "{}", bench::render(r))?;
    if let Some(p) = &r.rates_file {
        writeln!(
            out,
            "\nrates saved to {} (logship plan estimates from them)",
            p.display()
        )?;
    }
    writeln!(out, "total {:.1} s", r.seconds)?;
    Ok(())
}

/// Generated data goes to a real disk when there is one (/var/tmp), not a RAM-backed /tmp.
fn default_dir() -> PathBuf {
    let var_tmp = PathBuf::from("/var/tmp");
    if var_tmp.is_dir() {
        var_tmp
    } else {
        std::env::temp_dir()
    }
}

/// The command as typed, for the report (arguments with spaces quoted).
fn command_line() -> String {
    let mut args = std::env::args();
    let _ = args.next();
    std::iter::once("logship".to_string())
        .chain(args.map(|a| {
            if a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}
