//! The copy loop alone: `copy_files` of 32 files of 1 MiB from the page cache, in each verify
//! mode, without fsync (the device's write-back is `benches/copy.rs`'s and `logship bench`'s
//! business; this measures reading, hashing, writing and renaming). Run:
//! `cargo bench --bench copy_loop`.

use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logship::copy::{copy_files, CopyJob, CopyOptions, NoProgress, VerifyMode};

const FILES: usize = 32;
const SIZE: usize = 1 << 20;

fn copy_loop(c: &mut Criterion) {
    let src = tempfile::tempdir().expect("temp dir");
    let mut jobs = Vec::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..FILES {
        let mut buf = vec![0u8; SIZE];
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let name = format!("mgc_{i:03}.trn");
        std::fs::write(src.path().join(&name), &buf).expect("write");
        jobs.push(CopyJob {
            source: src.path().join(&name),
            name,
            size: SIZE as u64,
        });
    }
    let mut g = c.benchmark_group("copy_files");
    g.throughput(Throughput::Bytes((FILES * SIZE) as u64));
    g.sample_size(10);
    for verify in [VerifyMode::Inline, VerifyMode::Reread] {
        let opts = CopyOptions {
            verify,
            fsync: false,
            ..CopyOptions::default()
        };
        g.bench_function(format!("{FILES}x1MiB_{verify}_no_fsync"), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("dest"),
                |dest| {
                    let r = copy_files(
                        &jobs,
                        dest.path(),
                        &opts,
                        &NoProgress,
                        &|_| {},
                        &AtomicBool::new(false),
                    )
                    .expect("copy");
                    assert!(r.ok());
                    dest
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, copy_loop);
criterion_main!(benches);
