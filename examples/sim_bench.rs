//! Benchmark of the simulated secondary, with its baseline in the same run:
//! - RESTORE LOG throughput (unthrottled) over generated logs, against `backup::check_whole` of
//!   the same files without a server (the floor: the simulator reads each file once, as here);
//! - round trips of a small query (`SELECT @@SPID`) through tiberius.
//!
//! `cargo run --release --example sim_bench -- [LOGS] [MIB_PER_LOG]` (defaults 20 and 8).

use std::time::Instant;

use logship::backup::synth::SynthBackup;
use logship::backup::{self, MtfDate};
use logship::lsn::Lsn;
use logship::sim::{self, Scenario};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio_util::compat::TokioAsyncWriteCompatExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let logs: u32 = args.next().map_or(Ok(20), |a| a.parse())?;
    let mib: u64 = args.next().map_or(Ok(8), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share)?;
    let first = Lsn::new(40, 1, 1);
    let mut lsn = first;
    let mut paths = Vec::new();
    let mut bytes = 0u64;
    for i in 0..logs {
        let next = Lsn::new(lsn.vlf + 1, 100 + i, 1);
        let start = MtfDate::from_unix(1_767_571_200 + 300 * i as u64);
        let mut b = SynthBackup::log("mgc", lsn, next, start, i as u64);
        b.log_bytes = mib << 20;
        let p = share.join(format!("mgc_{}.trn", start.compact()));
        bytes += b.write_to(&mut std::fs::File::create(&p)?)?;
        paths.push(p);
        lsn = next;
    }
    let total_mib = bytes as f64 / (1024.0 * 1024.0);

    // baseline: the whole-file check alone (warm cache, as the restores below)
    let t = Instant::now();
    for p in &paths {
        backup::check_whole(p, &mut |_, _| {})?;
    }
    let base = t.elapsed().as_secs_f64();

    let state = dir.path().join("state");
    sim::init(
        &state,
        &Scenario::new("mgc", first, "/share", "/copy", "bench-pw"),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim::serve(listener, state, async {
        let _ = rx.await;
    }));
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server("failover", "bench-pw"));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut c = Client::connect(config, tcp.compat_write()).await?;

    let t = Instant::now();
    for p in &paths {
        let p = p.to_str().unwrap_or_default();
        c.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5",
            &[&"mgc", &p],
        )
        .await?;
    }
    let restore = t.elapsed().as_secs_f64();

    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        c.query("SELECT @@SPID", &[]).await?.into_row().await?;
    }
    let rt = t.elapsed().as_secs_f64();
    drop(c);
    let _ = tx.send(());
    server.await??;

    println!("{logs} logs x {mib} MiB ({total_mib:.0} MiB)");
    println!(
        "check_whole alone (baseline): {base:.2} s, {:.0} MiB/s",
        total_mib / base
    );
    println!(
        "RESTORE LOG through the simulator: {restore:.2} s, {:.0} MiB/s, {:.1} ms per log ({:.2}x the baseline)",
        total_mib / restore,
        restore * 1000.0 / logs as f64,
        restore / base
    );
    println!(
        "SELECT @@SPID round trip: {:.0} us ({n} queries)",
        rt * 1e6 / n as f64
    );
    Ok(())
}
