//! RESTORE through the simulator on the real sample backups (../shared/samples): HEADERONLY, the
//! chain rules (4305, 4326), wrong set (3135) and database (3154), progress messages that arrive
//! while the restore runs, ATTENTION, a client killed mid-restore (4319, then RESTART) and the
//! drop fault; the history's hash of what was restored, and the scenario that turns it off. Skips
//! with a message when the samples are missing.

mod sim_support;

use std::path::PathBuf;
use std::time::Duration;

use logship::lsn::Lsn;
use logship::sim::Scenario;
use sim_support::*;

fn samples() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    if p.join("RestoreTimeClean_1.trn").exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} not found", p.display());
        None
    }
}

fn sample(name: &str) -> String {
    samples().unwrap().join(name).to_str().unwrap().to_string()
}

const FULL_CHECKPOINT: u128 = 39000000048800071;

fn rtc() -> Scenario {
    let mut sc = Scenario::new(
        "RestoreTimeClean",
        Lsn::from_decimal(FULL_CHECKPOINT).unwrap(),
        "/share",
        "/copy",
        PASSWORD,
    );
    sc.server_name = "WIN-JNMR8KM0U3B\\SQL2016".into();
    sc
}

fn redo(sim: &Sim) -> u128 {
    sim.state()
        .db("RestoreTimeClean")
        .unwrap()
        .redo_start_lsn
        .unwrap()
        .to_decimal()
}

#[tokio::test]
async fn headeronly_columns_and_values() {
    if samples().is_none() {
        return;
    }
    let (sim, _d) = Sim::with(&rtc()).await;
    let mut c = sim.client().await;
    let rs = c
        .query(
            "RESTORE HEADERONLY FROM DISK = @P1",
            &[&sample("RestoreTimeClean_2.trn")],
        )
        .await
        .unwrap();
    let rows = rs.into_first_result().await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    let names: Vec<&str> = r.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names[..19],
        [
            "BackupName",
            "BackupDescription",
            "BackupType",
            "ExpirationDate",
            "Compressed",
            "Position",
            "DeviceType",
            "UserName",
            "ServerName",
            "DatabaseName",
            "DatabaseVersion",
            "DatabaseCreationDate",
            "BackupSize",
            "FirstLSN",
            "LastLSN",
            "CheckpointLSN",
            "DatabaseBackupLSN",
            "BackupStartDate",
            "BackupFinishDate"
        ]
    );
    for n in [
        "SoftwareVersionMajor",
        "SoftwareVersionMinor",
        "SoftwareVersionBuild",
        "DifferentialBaseLSN",
        "BackupSetGUID",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let num = |k: &str| r.get::<tiberius::numeric::Numeric, _>(k).unwrap().value();
    assert_eq!(r.get::<i16, _>("BackupType"), Some(2));
    assert_eq!(r.get::<i16, _>("Position"), Some(1));
    assert_eq!(r.get::<&str, _>("DatabaseName"), Some("RestoreTimeClean"));
    assert_eq!(
        r.get::<&str, _>("ServerName"),
        Some("WIN-JNMR8KM0U3B\\SQL2016")
    );
    assert_eq!(num("FirstLSN"), 39000000054100001);
    assert_eq!(num("LastLSN"), 39000000057100001);
    assert_eq!(num("CheckpointLSN"), 39000000054300002);
    assert_eq!(num("DatabaseBackupLSN"), 39000000048800071);
    assert_eq!(r.get::<i32, _>("SoftwareVersionMajor"), Some(13));
    assert_eq!(r.get::<i32, _>("SoftwareVersionBuild"), Some(5081));
    assert_eq!(r.get::<i32, _>("DatabaseVersion"), Some(852));
    assert!(r.get::<uuid::Uuid, _>("BackupSetGUID").is_some());
    assert!(r
        .get::<tiberius::numeric::Numeric, _>("DifferentialBaseLSN")
        .is_none());
}

#[tokio::test]
async fn restore_log_chain_rules() {
    if samples().is_none() {
        return;
    }
    let (sim, _d) = Sim::with(&rtc()).await;
    let mut c = sim.client().await;
    let restore = "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5";
    c.execute(
        restore,
        &[&"RestoreTimeClean", &sample("RestoreTimeClean_1.trn")],
    )
    .await
    .unwrap();
    assert_eq!(redo(&sim), 39000000054100001);

    // the same log again: too early
    let (n, class, m) = server_error(
        c.execute(
            restore,
            &[&"RestoreTimeClean", &sample("RestoreTimeClean_1.trn")],
        )
        .await,
    );
    assert_eq!((n, class), (4326, 16));
    assert_eq!(
        m,
        "The log in this backup set terminates at LSN 39000000054100001, which is too early to apply to the database. \
         A more recent log backup that includes LSN 39000000054100001 can be restored."
    );
    // a log after a gap: too recent
    let (n, class, m) = server_error(
        c.execute(
            restore,
            &[&"RestoreTimeClean", &sample("RestoreTimeClean2_1.trn")],
        )
        .await,
    );
    assert_eq!((n, class), (4305, 16));
    assert_eq!(
        m,
        "The log in this backup set begins at LSN 39000000058800001, which is too recent to apply to the database. \
         An earlier log backup that includes LSN 39000000054100001 can be restored."
    );
    // a full backup is no log; another database's log is refused
    let (n, _, m) = server_error(
        c.execute(
            restore,
            &[&"RestoreTimeClean", &sample("RestoreTimeClean.bak")],
        )
        .await,
    );
    assert_eq!(n, 3135, "{m}");
    let (n, _, m) = server_error(
        c.execute(
            restore,
            &[&"RestoreTimeClean", &sample("test_LOG_20160629_141500.trn")],
        )
        .await,
    );
    assert_eq!(n, 3154, "{m}");

    // literal form, STANDBY
    let undo = sim.dir.join("undo.tuf");
    c.execute(
        format!(
            "RESTORE LOG [RestoreTimeClean] FROM DISK = N'{}' WITH STANDBY = N'{}'",
            sample("RestoreTimeClean_2.trn"),
            undo.display()
        ),
        &[],
    )
    .await
    .unwrap();
    assert!(undo.exists());
    let q = "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1";
    assert_eq!(
        rows(&mut c, q, &[&"RestoreTimeClean"]).await,
        vec![vec!["RestoreTimeClean", "RESTORING", "1"]]
    );
    c.execute(
        restore,
        &[&"RestoreTimeClean", &sample("RestoreTimeClean_3.trn")],
    )
    .await
    .unwrap();
    assert_eq!(redo(&sim), 39000000058800001);
    assert_eq!(rows(&mut c, q, &[&"RestoreTimeClean"]).await[0][2], "0");

    let h = sim.state().history;
    let names: Vec<&str> = h
        .iter()
        .map(|e| e.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "RestoreTimeClean_1.trn",
            "RestoreTimeClean_2.trn",
            "RestoreTimeClean_3.trn"
        ]
    );
    for w in h.windows(2) {
        assert_eq!(
            w[0].last_lsn, w[1].first_lsn,
            "applied in chain order, once each"
        );
    }
    c.execute("RESTORE DATABASE @P1 WITH RECOVERY", &[&"RestoreTimeClean"])
        .await
        .unwrap();
    assert_eq!(
        rows(&mut c, q, &[&"RestoreTimeClean"]).await[0][1],
        "ONLINE"
    );
}

/// Raw client: the 3211 messages of a throttled restore come in packets sent before the end.
#[tokio::test]
async fn progress_messages_arrive_while_restoring() {
    if samples().is_none() {
        return;
    }
    let mut sc = rtc();
    sc.restore_mib_per_s = Some(0.2); // ~100 KB: about half a second
    let (sim, _d) = Sim::with(&sc).await;
    let (mut raw, login) = Raw::login(sim.addr, "failover", PASSWORD).await;
    assert!(login.msgs.iter().all(|m| !m.error));
    raw.batch(&format!(
        "RESTORE LOG [RestoreTimeClean] FROM DISK = N'{}' WITH NORECOVERY, STATS = 10",
        sample("RestoreTimeClean_1.trn")
    ))
    .await;
    let r = raw.response().await.unwrap();
    let pct: Vec<&RawMsg> = r.msgs.iter().filter(|m| m.number == 3211).collect();
    let texts: Vec<&str> = pct.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        (1..=10)
            .map(|k| format!("{} percent processed.", k * 10))
            .collect::<Vec<_>>()
    );
    let early_packets: std::collections::BTreeSet<usize> = pct
        .iter()
        .filter(|m| !m.in_last_packet)
        .map(|m| m.packet)
        .collect();
    assert!(
        early_packets.len() >= 3,
        "3211 spread over packets sent during the restore: {early_packets:?}"
    );
    let n4035 = r.msgs.iter().find(|m| m.number == 4035).unwrap();
    assert!(n4035.text.starts_with("Processed 13 pages for database 'RestoreTimeClean', file 'RestoreTimeClean_log' on file 1."));
    let n3014 = r.msgs.iter().find(|m| m.number == 3014).unwrap();
    assert!(
        n3014
            .text
            .starts_with("RESTORE LOG successfully processed 13 pages in "),
        "{}",
        n3014.text
    );
    assert!(r.msgs.iter().all(|m| !m.error && m.class == 0));
    assert_eq!(r.done_status.last().map(|s| s & 0x02), Some(0));
}

/// A second connection sees percent_complete of the running restore.
#[tokio::test]
async fn percent_complete_from_another_connection() {
    if samples().is_none() {
        return;
    }
    let mut sc = rtc();
    sc.restore_mib_per_s = Some(0.1);
    let (sim, _d) = Sim::with(&sc).await;
    let mut a = sim.client().await;
    let mut b = sim.client().await;
    let spid: i32 = rows(&mut a, "SELECT @@SPID", &[]).await[0][0]
        .parse()
        .unwrap();
    let path = sample("RestoreTimeClean_1.trn");
    let db = "RestoreTimeClean";
    let params: [&dyn tiberius::ToSql; 2] = [&db, &path];
    let restore = a.execute(
        "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5",
        &params,
    );
    let watch = async {
        let q = "SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = @P1";
        loop {
            let r = rows(&mut b, q, &[&spid]).await;
            let pct: f32 = r[0][2].parse().unwrap();
            if r[0][1] == "RESTORE LOG" && pct > 0.0 && pct < 100.0 {
                return pct;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::pin!(restore);
    let pct = tokio::select! {
        r = &mut restore => panic!("restore ended before progress was seen: {r:?}"),
        p = watch => p,
    };
    assert!(pct > 0.0);
    restore.await.unwrap();
}

/// ATTENTION mid-restore: DONE with the attention flag, database still at the previous LSN.
#[tokio::test]
async fn attention_rolls_back_the_restore() {
    if samples().is_none() {
        return;
    }
    let mut sc = rtc();
    sc.restore_mib_per_s = Some(0.02); // ~5 s
    let (sim, _d) = Sim::with(&sc).await;
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    raw.batch(&format!(
        "RESTORE LOG [RestoreTimeClean] FROM DISK = N'{}' WITH NORECOVERY, STATS = 5",
        sample("RestoreTimeClean_1.trn")
    ))
    .await;
    // wait for the first progress packet, then cancel
    let (st, _) = raw.read_packet().await.unwrap();
    assert_eq!(st & 1, 0, "a progress packet, not the end");
    raw.attention().await;
    let r = raw.response().await.unwrap();
    assert!(
        r.done_status.iter().any(|s| s & 0x20 != 0),
        "DONE with DONE_ATTN: {:?}",
        r.done_status
    );
    let db = sim.state().db("RestoreTimeClean").cloned().unwrap();
    assert_eq!(db.redo_start_lsn.unwrap().to_decimal(), FULL_CHECKPOINT);
    assert_eq!(db.interrupted, None);
    assert!(sim.state().history.is_empty());
    // the connection is still usable, and tiberius' cancel works the same way
    let mut c = sim.client().await;
    {
        let (db, p) = ("RestoreTimeClean", sample("RestoreTimeClean_1.trn"));
        let params: [&dyn tiberius::ToSql; 2] = [&db, &p];
        let fut = c.execute("RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY", &params);
        let r = tokio::time::timeout(Duration::from_millis(300), fut).await;
        assert!(r.is_err(), "still running");
    }
    c.cancel_query().await.unwrap();
    assert_eq!(rows(&mut c, "SELECT 1", &[]).await, vec![vec!["1"]]);
    assert_eq!(redo(&sim), FULL_CHECKPOINT);
    raw.batch("SELECT @@SPID").await;
}

/// A client killed mid-restore leaves the database at the previous LSN, marked interrupted:
/// 4319 until WITH RESTART.
#[tokio::test]
async fn killed_client_leaves_consistent_lsn() {
    if samples().is_none() {
        return;
    }
    let mut sc = rtc();
    sc.restore_mib_per_s = Some(0.05);
    let (sim, _d) = Sim::with(&sc).await;
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    let p1 = sample("RestoreTimeClean_1.trn");
    raw.batch(&format!(
        "RESTORE LOG [RestoreTimeClean] FROM DISK = N'{p1}' WITH NORECOVERY, STATS = 5"
    ))
    .await;
    let (st, _) = raw.read_packet().await.unwrap();
    assert_eq!(st & 1, 0);
    drop(raw);
    let mut db = None;
    for _ in 0..400 {
        let d = sim.state().db("RestoreTimeClean").cloned().unwrap();
        if d.interrupted.is_some() && sim.state().history.is_empty() && sim_idle(&sim).await {
            db = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let db = db.expect("restore abandoned");
    assert_eq!(
        db.redo_start_lsn.unwrap().to_decimal(),
        FULL_CHECKPOINT,
        "not between two LSNs"
    );
    let mut c = sim.client().await;
    let restore = "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY";
    let (n, _, m) = server_error(c.execute(restore, &[&"RestoreTimeClean", &p1]).await);
    assert_eq!(n, 4319, "{m}");
    assert!(m.contains(&p1));
    c.execute(
        "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, RESTART",
        &[&"RestoreTimeClean", &p1],
    )
    .await
    .unwrap();
    assert_eq!(redo(&sim), 39000000054100001);
    assert_eq!(
        sim.state().db("RestoreTimeClean").unwrap().interrupted,
        None
    );
}

/// The connection is gone once no RESTORE holds the database (a new one gets past 3101).
async fn sim_idle(sim: &Sim) -> bool {
    let mut c = sim.client().await;
    let q = "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID";
    rows(&mut c, q, &[&"RestoreTimeClean"]).await.is_empty()
}

#[tokio::test]
async fn drop_fault_cuts_the_connection() {
    if samples().is_none() {
        return;
    }
    let mut sc = rtc();
    sc.faults.drop_at_percent = Some(50);
    sc.restore_mib_per_s = Some(1.0);
    let (sim, _d) = Sim::with(&sc).await;
    let mut c = sim.client().await;
    let p1 = sample("RestoreTimeClean_1.trn");
    let r = c
        .execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 10",
            &[&"RestoreTimeClean", &p1],
        )
        .await;
    assert!(r.is_err(), "connection dropped: {r:?}");
    let st = sim.state();
    assert_eq!(st.faults.drop_at_percent, None, "the fault fires once");
    let db = st.db("RestoreTimeClean").unwrap();
    assert_eq!(db.redo_start_lsn.unwrap().to_decimal(), FULL_CHECKPOINT);
    assert_eq!(db.interrupted.as_deref(), Some(p1.as_str()));
}

/// KILL of the session running a RESTORE ends it like a lost connection: previous LSN kept,
/// the restore marked interrupted.
#[tokio::test]
async fn kill_of_a_restoring_session() {
    if samples().is_none() {
        return;
    }
    let mut sc = rtc();
    sc.restore_mib_per_s = Some(0.02);
    let (sim, _d) = Sim::with(&sc).await;
    let mut a = sim.client().await;
    let mut b = sim.client().await;
    let spid: i32 = rows(&mut a, "SELECT @@SPID", &[]).await[0][0]
        .parse()
        .unwrap();
    let path = sample("RestoreTimeClean_1.trn");
    let db = "RestoreTimeClean";
    let restore = tokio::spawn(async move {
        a.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5",
            &[&db, &path],
        )
        .await
        .map(|_| ())
    });
    let q = "SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = @P1";
    loop {
        let r = rows(&mut b, q, &[&spid]).await;
        if r[0][1] == "RESTORE LOG" && r[0][2].parse::<f32>().unwrap() > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.execute(format!("KILL {spid}"), &[]).await.unwrap();
    assert!(
        restore.await.unwrap().is_err(),
        "the killed session's restore does not succeed"
    );
    let st = sim.state();
    let d = st.db(db).unwrap();
    assert_eq!(d.redo_start_lsn.unwrap().to_decimal(), FULL_CHECKPOINT);
    assert!(d.interrupted.is_some());
    assert!(st.history.is_empty());
}

#[tokio::test]
async fn a_restore_records_the_hash_of_what_it_read_unless_the_scenario_turns_it_off() {
    if samples().is_none() {
        return;
    }
    let file = sample("RestoreTimeClean_1.trn");
    let want = blake3::hash(&std::fs::read(&file).unwrap())
        .to_hex()
        .to_string();
    for hash in [true, false] {
        let mut sc = rtc();
        sc.hash_restores = hash;
        let (sim, _d) = Sim::with(&sc).await;
        let mut c = sim.client().await;
        c.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY",
            &[&"RestoreTimeClean", &file],
        )
        .await
        .unwrap();
        assert_eq!(redo(&sim), 39000000054100001, "hash_restores = {hash}");
        let h = sim.state().history;
        assert_eq!(h.len(), 1);
        assert_eq!(
            h[0].blake3,
            hash.then(|| want.clone()),
            "hash_restores = {hash}"
        );
    }
}
