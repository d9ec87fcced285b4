//! Planning time: `plan::plan` over a continuous chain of 10,000 logs whose headers are
//! synthesized in memory (no disk), from the oldest log and from a redo LSN in the middle.
//! Target: under 50 ms on 2 cores. Run: `cargo bench --bench plan`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logship::bench::synthetic_logs;
use logship::plan::{plan, PlanInput};

fn planner(c: &mut Criterion) {
    let logs = 10_000u32;
    let source = synthetic_logs(logs);
    let middle = source[logs as usize / 2].headers.as_ref().expect("header")[0].first_lsn;
    let mut g = c.benchmark_group("plan");
    g.throughput(Throughput::Elements(logs as u64));
    g.sample_size(30);
    for (name, redo) in [("from_oldest", None), ("redo_in_middle", Some(middle))] {
        g.bench_function(format!("{logs}_logs_{name}"), |b| {
            b.iter(|| {
                plan(&PlanInput {
                    database: "mgc",
                    redo_lsn: redo,
                    dest_dir: Path::new("/copy"),
                    source: &source,
                    dest: &[],
                })
                .to_apply
                .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
