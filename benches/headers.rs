//! Header reads per second: `read_file` over a generated share (2,000 logs of 64 KiB, warm
//! cache), on one thread and with rayon on every core. Target: 50,000 headers/s on 2 cores.
//! Run: `cargo bench --bench headers` (LOGSHIP_BENCH_LOGS changes the number of logs).

use std::io::Read;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logship::backup::read_file;
use logship::bench::header_share;
use rayon::prelude::*;

fn share() -> (tempfile::TempDir, Vec<PathBuf>) {
    let logs = std::env::var("LOGSHIP_BENCH_LOGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("temp dir");
    // Written and read once: the figure is about parsing and system calls, not the disk.
    let paths = header_share(dir.path(), logs, 64 * 1024).expect("generated share");
    (dir, paths)
}

fn headers(c: &mut Criterion) {
    let (_dir, paths) = share();
    let mut g = c.benchmark_group("read_file");
    g.throughput(Throughput::Elements(paths.len() as u64));
    g.sample_size(20);
    // Baselines in the same run: the I/O floor of opening each file and reading part of it.
    for kib in [4, 64] {
        g.bench_function(format!("baseline_open_read_{kib}KiB"), |b| {
            let mut buf = vec![0u8; kib * 1024];
            b.iter(|| {
                paths
                    .iter()
                    .map(|p| {
                        std::fs::File::open(p)
                            .and_then(|mut f| f.read(&mut buf))
                            .unwrap_or(0)
                    })
                    .sum::<usize>()
            })
        });
    }
    g.bench_function("one_thread", |b| {
        b.iter(|| {
            paths
                .iter()
                .map(|p| read_file(p).map(|h| h.len()).unwrap_or(0))
                .sum::<usize>()
        })
    });
    g.bench_function(
        format!("rayon_{}_threads", rayon::current_num_threads()),
        |b| {
            b.iter(|| {
                paths
                    .par_iter()
                    .map(|p| read_file(p).map(|h| h.len()).unwrap_or(0))
                    .sum::<usize>()
            })
        },
    );
    g.finish();
}

criterion_group!(benches, headers);
criterion_main!(benches);
