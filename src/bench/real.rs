//! `logship bench --source DIR --dest DIR`: a real share and copy folder measured without any
//! database: read throughput, verified copy throughput (against `cp -r`) and the header rate.
//! Copies go to a temporary folder inside DEST that is removed afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::phases::{copy_logship, cp};
use super::rates::{self, CopyRate, Rates};
use super::stats::{mib_per_s, rate_over, Samples};
use super::{io, BenchError, BenchReport, Figure, Machine};
use crate::backup::read_file;
use crate::copy::{discover_backups, CopyOptions};

/// At most this much of the share is read and copied per run, so a large share stays a
/// benchmark, not a migration.
pub const MAX_BYTES: u64 = 4 << 30;

#[derive(Clone, Debug)]
pub struct RealSpec {
    pub source: PathBuf,
    pub dest: PathBuf,
    pub runs: usize,
    pub verbose: bool,
}

/// Measures the share; returns the report and the copy and header rates it measured.
pub fn run_real(spec: &RealSpec) -> Result<(BenchReport, Rates), BenchError> {
    let started = Instant::now();
    let mut jobs = discover_backups(&spec.source).map_err(|e| BenchError::Failed {
        what: format!("listing {}", spec.source.display()),
        detail: e.to_string(),
    })?;
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut total = 0u64;
    jobs.retain(|j| {
        let keep = total < MAX_BYTES;
        total += if keep { j.size } else { 0 };
        keep
    });
    if jobs.is_empty() {
        return Err(BenchError::Failed {
            what: format!("measuring {}", spec.source.display()),
            detail: "no backup files in it".into(),
        });
    }
    let files: Vec<PathBuf> = jobs.iter().map(|j| j.source.clone()).collect();
    // The sample, hard-linked when possible (else copied) into one folder, so `cp -r` and the
    // engine see the same files. It lives in DEST's temporary folder, removed at the end.
    let work = tempfile::Builder::new()
        .prefix(".logship-bench-")
        .tempdir_in(&spec.dest)
        .map_err(io(format!(
            "creating a temporary folder in {}",
            spec.dest.display()
        )))?;
    let mut read = Samples::default();
    let mut copy = Samples::default();
    let mut cpr = Samples::default();
    let mut hdr_par = Samples::default();
    let mut hdr_one = Samples::default();
    let src = sample_dir(&spec.source, &files, work.path())?;
    for run in 1..=spec.runs {
        if spec.verbose {
            eprintln!("bench: run {run}/{}: read, copy, headers", spec.runs);
        }
        let t = Instant::now();
        files
            .par_iter()
            .try_for_each(|p| read_all(p))
            .map_err(io("reading the share"))?;
        read.push(mib_per_s(total, t.elapsed()));
        for k in 0..2 {
            let dest = work.path().join(format!("dest-{k}"));
            std::fs::create_dir_all(&dest).map_err(io(format!("creating {}", dest.display())))?;
            let t = Instant::now();
            if (k + run) % 2 == 0 {
                copy_logship(&src, &dest)?;
                copy.push(mib_per_s(total, t.elapsed()));
            } else {
                cp(&src, &dest)?;
                cpr.push(mib_per_s(total, t.elapsed()));
            }
            std::fs::remove_dir_all(&dest).map_err(io(format!("removing {}", dest.display())))?;
        }
        let count = |p: &PathBuf| read_file(p).map(|h| h.len()).unwrap_or(0);
        let min = Duration::from_millis(300);
        hdr_par.push(rate_over(min, files.len(), || {
            std::hint::black_box(files.par_iter().map(count).sum::<usize>());
        }));
        hdr_one.push(rate_over(min, files.len(), || {
            std::hint::black_box(files.iter().map(count).sum::<usize>());
        }));
    }
    work.close()
        .map_err(io("removing the temporary folder in DEST"))?;
    let n = files.len();
    let gib = total as f64 / (1u64 << 30) as f64;
    let figures = vec![
        Figure::new(
            "read",
            format!("read the share ({n} files, {gib:.2} GiB, rayon)"),
            "MiB/s",
            true,
            &read,
        ),
        Figure::new(
            "copy_vs_cp",
            format!("verified copy, reread, into {}", spec.dest.display()),
            "MiB/s",
            true,
            &copy,
        )
        .against("cp -r", &cpr),
        Figure::new(
            "headers_rayon",
            format!("native headers, rayon ({n} files)"),
            "headers/s",
            true,
            &hdr_par,
        )
        .against("native headers, 1 thread", &hdr_one),
    ];
    let rates = Rates {
        copy: CopyRate {
            mib_per_s: copy.median(),
            source: format!(
                "logship bench --source {} --dest {}: verified copy ({} workers, reread) of {n} files",
                spec.source.display(),
                spec.dest.display(),
                CopyOptions::default().workers
            ),
            measured_at: rates::now_unix(),
        },
        apply: None,
        headers_per_s: Some(hdr_par.median()),
    };
    let report = BenchReport {
        command: String::new(),
        mode: "real".into(),
        runs: spec.runs,
        machine: Machine::describe(),
        data: None,
        figures,
        estimate_check: None,
        rates_file: None,
        rates: Some(rates.clone()),
        notes: vec![format!(
            "the first {n} backups of the share by name (at most {} GiB); the reads come from the page cache when the share fits in memory",
            MAX_BYTES >> 30
        )],
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((report, rates))
}

fn read_all(p: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(p)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// A folder holding the sample: hard links to the share's files where the file system allows,
/// else the share itself when the sample is the whole share, else copies.
fn sample_dir(source: &Path, files: &[PathBuf], work: &Path) -> Result<PathBuf, BenchError> {
    let all = discover_backups(source).map(|j| j.len()).unwrap_or(0);
    if all == files.len() {
        return Ok(source.to_path_buf());
    }
    let dir = work.join("sample");
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    for f in files {
        let to = dir.join(f.file_name().expect("a file"));
        if std::fs::hard_link(f, &to).is_err() {
            std::fs::copy(f, &to).map_err(io(format!("copying {}", f.display())))?;
        }
    }
    Ok(dir)
}
