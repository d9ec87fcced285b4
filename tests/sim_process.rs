//! The `logship sim` binary: `sim init` and `sim show`, and a simulator killed (SIGKILL) in the
//! middle of a restore comes back with the database at the previous LSN, the restore marked
//! interrupted (4319 until WITH RESTART).

mod common;
mod sim_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sim_support::{rows, server_error, PASSWORD};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("logship")
}

async fn client(port: u16) -> Client<Compat<TcpStream>> {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(port);
    config.authentication(AuthMethod::sql_server("failover", PASSWORD));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    Client::connect(config, tcp.compat_write()).await.unwrap()
}

#[test]
fn init_needs_the_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["sim", "init", "--redo-lsn", "1000000000100001", "--state"])
        .arg(dir.path())
        .env_remove("LOGSHIP_SIM_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOGSHIP_SIM_PASSWORD"));
    let out = Command::new(bin())
        .args([
            "sim",
            "init",
            "--redo-lsn",
            "0000001a:000001b8:0001",
            "--sessions",
            "2",
            "--reconnecting",
            "1",
        ])
        .args([
            "--fail-3101",
            "1",
            "--drop-at-percent",
            "40",
            "--restore-mib-per-s",
            "8",
            "--state",
        ])
        .arg(dir.path())
        .env("LOGSHIP_SIM_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let show = Command::new(bin())
        .args(["sim", "show", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["databases"][4]["name"], "mgc");
    assert_eq!(v["databases"][4]["redo_start_lsn"], "26000000044000001");
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(v["faults"]["drop_at_percent"], 40);
    assert_eq!(v["history"].as_array().unwrap().len(), 0);
    assert!(!String::from_utf8_lossy(&show.stdout).contains(PASSWORD));
    assert_eq!(v["password_hash"], "(hidden)");
}

#[tokio::test]
async fn simulator_killed_mid_restore_keeps_a_consistent_lsn() {
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    let log1 = samples.join("RestoreTimeClean_1.trn");
    if !log1.exists() {
        return eprintln!("skipped: {} not found", samples.display());
    }
    let log1 = log1.to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(bin())
        .args([
            "sim",
            "init",
            "--database",
            "RestoreTimeClean",
            "--redo-lsn",
            "39000000048800071",
        ])
        .args(["--restore-mib-per-s", "0.02", "--state"])
        .arg(dir.path())
        .env("LOGSHIP_SIM_PASSWORD", PASSWORD)
        .status()
        .unwrap();
    assert!(st.success());
    let (mut child, port) = common::spawn_sim(dir.path(), "127.0.0.1:0");
    let mut a = client(port).await;
    let mut b = client(port).await;
    let spid: i32 = rows(&mut a, "SELECT @@SPID", &[]).await[0][0]
        .parse()
        .unwrap();
    let restore = tokio::spawn(async move {
        let db = "RestoreTimeClean";
        let _ = a
            .execute(
                "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5",
                &[&db, &log1],
            )
            .await;
    });
    let q = "SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = @P1";
    loop {
        let r = rows(&mut b, q, &[&spid]).await;
        if r[0][1] == "RESTORE LOG" && r[0][2].parse::<f32>().unwrap() > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = restore.await;

    let st = logship::sim::state::load(dir.path()).unwrap();
    let db = st.db("RestoreTimeClean").unwrap();
    assert_eq!(
        db.redo_start_lsn.unwrap().to_decimal(),
        39000000048800071,
        "before that log, not between"
    );
    assert!(db.interrupted.is_some());
    assert!(st.history.is_empty());

    // restarted: the interruption is remembered
    let (mut child, port) = common::spawn_sim(dir.path(), "127.0.0.1:0");
    let mut c = client(port).await;
    let p = samples.join("RestoreTimeClean_1.trn");
    let p = p.to_str().unwrap();
    let (n, _, _) = server_error(
        c.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY",
            &[&"RestoreTimeClean", &p],
        )
        .await,
    );
    assert_eq!(n, 4319);
    drop(c);
    child.kill().unwrap();
    child.wait().unwrap();
}
