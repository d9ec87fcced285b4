//! The simulator through tiberius over TCP: every statement, errors with SQL Server's numbers,
//! classes and texts, parameters through sp_executesql, state kept across restarts.

mod sim_support;

use std::time::Duration;

use sim_support::*;
use uuid::Uuid;

#[tokio::test]
async fn login_and_server_identity() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let (n, class, m) = server_error(sim.client_as("failover", "wrong").await);
    assert_eq!(
        (n, class, m.as_str()),
        (18456, 14, "Login failed for user 'failover'.")
    );
    let (n, _, m) = server_error(sim.client_as("sa", PASSWORD).await);
    assert_eq!((n, m.as_str()), (18456, "Login failed for user 'sa'."));

    let mut c = sim.client().await;
    let v = rows(&mut c, "SELECT @@VERSION", &[]).await;
    assert!(v[0][0].starts_with("Microsoft SQL Server 2016"), "{v:?}");
    let spid: i64 = rows(&mut c, "select @@spid", &[]).await[0][0]
        .parse()
        .unwrap();
    assert!(spid >= 51);
    let pv = rows(&mut c, "SELECT SERVERPROPERTY('ProductVersion')", &[]).await;
    assert_eq!(pv, vec![vec!["13.0.5081.1".to_string()]]);
    let sn = rows(&mut c, "SELECT SERVERPROPERTY(@P1)", &[&"ServerName"]).await;
    assert_eq!(sn, vec![vec!["ATL-SQL-002".to_string()]]);
    let ed = rows(&mut c, "SELECT SERVERPROPERTY('Edition')", &[]).await;
    assert!(ed[0][0].contains("Edition"));
    let mn = rows(&mut c, "SELECT SERVERPROPERTY('MachineName')", &[]).await;
    assert_eq!(mn[0][0], "ATL-SQL-002");
}

#[tokio::test]
async fn databases_and_redo_lsn() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let mut c = sim.client().await;
    let q = "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1";
    assert_eq!(
        rows(&mut c, q, &[&"mgc"]).await,
        vec![vec!["mgc", "RESTORING", "0"]]
    );
    assert_eq!(rows(&mut c, q, &[&"nosuch"]).await.len(), 0);
    let all = rows(
        &mut c,
        "SELECT name, state_desc, is_in_standby FROM sys.databases",
        &[],
    )
    .await;
    let names: Vec<&str> = all.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["master", "tempdb", "model", "msdb", "mgc"]);
    let star = rows(&mut c, "select * from [sys].[databases]", &[]).await;
    assert_eq!(star.len(), 5);
    assert_eq!(star[4][0..4], ["mgc", "5", "1", "RESTORING"]);

    let q = "SELECT redo_start_lsn, redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(@P1) AND file_id = 1";
    let mut stream = c
        .query(q, &[&"mgc"])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let row = stream.remove(0);
    let lsn: tiberius::numeric::Numeric = row.get(0).unwrap();
    assert_eq!(lsn.value() as u128, REDO.to_decimal());
    assert_eq!(lsn.value(), 39000000048800071);
    let fork: Uuid = row.get(1).unwrap();
    assert_eq!(fork, scenario().fork_guid);
    // master is online: NULL
    assert_eq!(
        rows(&mut c, q, &[&"master"]).await,
        vec![vec!["NULL", "NULL"]]
    );
}

#[tokio::test]
async fn standby_scenario_is_in_standby() {
    let mut sc = scenario();
    sc.standby = true;
    let (sim, _d) = Sim::with(&sc).await;
    let mut c = sim.client().await;
    let q = "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = N'mgc'";
    assert_eq!(
        rows(&mut c, q, &[]).await,
        vec![vec!["mgc", "RESTORING", "1"]]
    );
}

#[tokio::test]
async fn sessions_kill_and_reconnect() {
    let mut sc = scenario();
    sc.sessions = 3;
    sc.reconnecting_sessions = 1;
    sc.reconnect_after_ms = 50;
    let (sim, _d) = Sim::with(&sc).await;
    let mut c = sim.client().await;
    let q = "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID";
    let ids = rows(&mut c, q, &[&"mgc"]).await;
    assert_eq!(ids, vec![vec!["51"], vec!["52"], vec!["53"]]);
    // the runbook's manual way
    let who = rows(&mut c, "sp_who2", &[]).await;
    let in_mgc: Vec<&str> = who
        .iter()
        .filter(|r| r[5] == "mgc")
        .map(|r| r[0].trim())
        .collect();
    assert_eq!(in_mgc, ["51", "52", "53"]);
    assert!(
        who.iter().any(|r| r[2] == "failover" && r[5] == "master"),
        "{who:?}"
    );

    // recovery refused while they are there
    let (n, class, m) = server_error(
        c.execute("RESTORE DATABASE @P1 WITH RECOVERY", &[&"mgc"])
            .await,
    );
    assert_eq!((n, class), (3101, 16));
    assert_eq!(
        m,
        "Exclusive access could not be obtained because the database is in use."
    );

    for id in ["51", "52", "53"] {
        c.execute(format!("KILL {id}"), &[]).await.unwrap();
    }
    let (n, class, m) = server_error(c.execute("KILL 57", &[]).await);
    assert_eq!(
        (n, class, m.as_str()),
        (6106, 16, "Process ID 57 is not an active process ID.")
    );
    let (n, _, _) = server_error(c.execute("KILL 51", &[]).await);
    assert_eq!(n, 6106);

    // session 53 comes back under a new id
    let mut back = Vec::new();
    for _ in 0..200 {
        back = rows(&mut c, q, &[&"mgc"]).await;
        if !back.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(back.len(), 1, "the reconnecting session came back");
    let new_id: u16 = back[0][0].parse().unwrap();
    assert!(new_id > 53);
    assert!(sim
        .state()
        .sessions
        .iter()
        .any(|s| s.spid == new_id && s.reconnect));

    c.execute(format!("KILL {new_id}"), &[]).await.unwrap();
    // recovery wins the race when it comes before the reconnection
    let mut recovered = false;
    for _ in 0..50 {
        match c.execute("RESTORE DATABASE [mgc] WITH RECOVERY", &[]).await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(tiberius::error::Error::Server(e)) if e.code() == 3101 => {
                let ids = rows(&mut c, q, &[&"mgc"]).await;
                for r in ids {
                    c.execute(format!("KILL {}", r[0]), &[]).await.unwrap();
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(recovered);
    let st = rows(
        &mut c,
        "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1",
        &[&"mgc"],
    )
    .await;
    assert_eq!(st[0][1], "ONLINE");
    let lsn = rows(
        &mut c,
        "SELECT redo_start_lsn, redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(@P1) AND file_id = 1",
        &[&"mgc"],
    )
    .await;
    assert_eq!(lsn, vec![vec!["NULL", "NULL"]]);
    // and a second recovery is refused as SQL Server refuses it
    let (n, _, _) = server_error(c.execute("RESTORE DATABASE [mgc] WITH RECOVERY", &[]).await);
    assert_eq!(n, 4306);
}

#[tokio::test]
async fn kill_ends_a_real_connection() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let mut a = sim.client().await;
    let mut b = sim.client().await;
    let b_spid = rows(&mut b, "SELECT @@SPID", &[]).await[0][0].clone();
    let req = rows(
        &mut a,
        "SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = @P1",
        &[&b_spid.parse::<i32>().unwrap()],
    )
    .await;
    assert_eq!(
        req,
        vec![vec![b_spid.clone(), "AWAITING COMMAND".into(), "0".into()]]
    );
    a.execute(format!("KILL {b_spid}"), &[]).await.unwrap();
    // the killed connection is closed by the server (it may answer one last query in between)
    let mut closed = false;
    for _ in 0..100 {
        if b.simple_query("SELECT @@SPID").await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed);
    let q = "SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = @P1";
    assert!(rows(&mut a, q, &[&b_spid.parse::<i32>().unwrap()])
        .await
        .is_empty());
    let me = a_spid(&mut a).await;
    let (n, _, m) = server_error(a.execute("KILL @P1", &[&me]).await);
    assert_eq!(
        (n, m.as_str()),
        (6104, "Cannot use KILL to kill your own process.")
    );
}

async fn a_spid(
    c: &mut tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>>,
) -> i32 {
    rows(c, "SELECT @@SPID", &[]).await[0][0].parse().unwrap()
}

#[tokio::test]
async fn msdb_log_shipping_jobs_and_delete() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let mut c = sim.client().await;
    let join = "SELECT s.secondary_id, s.primary_server, s.primary_database, s.backup_source_directory, \
        s.backup_destination_directory, s.file_retention_period, s.last_copied_file, s.copy_job_id, s.restore_job_id, \
        d.restore_mode, d.disconnect_users, d.last_restored_file, d.restore_delay \
        FROM msdb.dbo.log_shipping_secondary s JOIN msdb.dbo.log_shipping_secondary_databases d \
        ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1";
    let r = rows(&mut c, join, &[&"mgc"]).await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0][1..7],
        [
            "ATL-SQL-001",
            "mgc",
            r"\\backupsrv\mgc_logship",
            r"D:\LSCopy\mgc",
            "4320",
            "NULL"
        ]
    );
    assert_eq!(r[0][9..], ["0", "0", "NULL", "0"]);
    let copy_job: Uuid = r[0][7].parse().unwrap();
    let restore_job: Uuid = r[0][8].parse().unwrap();

    let jq = "SELECT job_id, name, enabled FROM msdb.dbo.sysjobs WHERE job_id = @P1";
    let j = rows(&mut c, jq, &[&copy_job]).await;
    assert_eq!(
        j,
        vec![vec![
            copy_job.to_string(),
            "LSCopy_ATL-SQL-001_mgc".into(),
            "1".into()
        ]]
    );
    c.execute(
        "EXEC msdb.dbo.sp_update_job @job_id = @P1, @enabled = @P2",
        &[&copy_job, &false],
    )
    .await
    .unwrap();
    c.execute(
        format!("exec msdb.dbo.sp_update_job @job_id = N'{restore_job}', @enabled = 0"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(rows(&mut c, jq, &[&copy_job]).await[0][2], "0");
    assert_eq!(rows(&mut c, jq, &[&restore_job]).await[0][2], "0");
    c.execute(
        "EXEC msdb.dbo.sp_update_job @job_id = @P1, @enabled = @P2",
        &[&copy_job, &1i32],
    )
    .await
    .unwrap();
    assert_eq!(rows(&mut c, jq, &[&copy_job]).await[0][2], "1");
    let unknown = Uuid::from_u128(7);
    let (n, class, m) = server_error(
        c.execute(
            "EXEC msdb.dbo.sp_update_job @job_id = @P1, @enabled = @P2",
            &[&unknown, &true],
        )
        .await,
    );
    assert_eq!((n, class), (14262, 16));
    assert!(m.contains("does not exist"), "{m}");

    assert_eq!(
        rows(&mut c, "SELECT * FROM msdb.dbo.log_shipping_secondary", &[])
            .await
            .len(),
        1
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT * FROM msdb.dbo.log_shipping_secondary_databases",
            &[]
        )
        .await
        .len(),
        1
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT * FROM msdb.dbo.log_shipping_monitor_secondary",
            &[]
        )
        .await
        .len(),
        1
    );

    // the runbook's literal form
    c.execute("exec sp_delete_log_shipping_secondary_database N'mgc'", &[])
        .await
        .unwrap();
    assert_eq!(rows(&mut c, join, &[&"mgc"]).await.len(), 0);
    assert_eq!(
        rows(&mut c, "SELECT * FROM msdb.dbo.log_shipping_secondary", &[])
            .await
            .len(),
        0
    );
    assert_eq!(
        rows(&mut c, jq, &[&copy_job]).await.len(),
        0,
        "jobs removed with the last database"
    );
    assert_eq!(rows(&mut c, jq, &[&restore_job]).await.len(), 0);
    // again, through the parameter form: nothing left, no error
    c.execute(
        "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1",
        &[&"mgc"],
    )
    .await
    .unwrap();
    // the database itself is untouched
    let st = sim.state();
    assert!(st.db("mgc").is_some());
}

#[tokio::test]
async fn errors_for_unsupported_and_bad_restores() {
    let (sim, d) = Sim::with(&scenario()).await;
    let mut c = sim.client().await;
    let (n, class, m) = server_error(c.execute("DROP DATABASE mgc", &[]).await);
    assert_eq!((n, class), (102, 15));
    assert!(m.contains("DROP DATABASE mgc"), "{m}");

    let missing = d.path().join("nope.trn");
    let p = missing.to_str().unwrap();
    let (n, class, m) = server_error(
        c.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5",
            &[&"mgc", &p],
        )
        .await,
    );
    assert_eq!((n, class), (3201, 16));
    assert_eq!(m, format!("Cannot open backup device '{p}'. Operating system error 2(The system cannot find the file specified.)."));
    let (n, _, _) = server_error(c.query("RESTORE HEADERONLY FROM DISK = @P1", &[&p]).await);
    assert_eq!(n, 3201);

    let junk = d.path().join("junk.trn");
    std::fs::write(&junk, vec![0x5a; 10_000]).unwrap();
    let j = junk.to_str().unwrap();
    let (n, class, m) = server_error(c.query("RESTORE HEADERONLY FROM DISK = @P1", &[&j]).await);
    assert_eq!((n, class), (3241, 16));
    assert_eq!(m, format!("The media family on device '{j}' is incorrectly formed. SQL Server cannot process this media family."));
    let (n, _, _) = server_error(
        c.execute(
            format!("RESTORE LOG [mgc] FROM DISK = N'{j}' WITH NORECOVERY"),
            &[],
        )
        .await,
    );
    assert_eq!(n, 3241);

    let (n, class, m) = server_error(
        c.execute(
            "RESTORE LOG [master] FROM DISK = @P1 WITH NORECOVERY",
            &[&j],
        )
        .await,
    );
    assert_eq!((n, class), (3117, 16));
    assert!(m.starts_with("The log or differential backup cannot be restored"));
    let (n, _, m) = server_error(
        c.execute("RESTORE LOG [nodb] FROM DISK = @P1 WITH NORECOVERY", &[&j])
            .await,
    );
    assert_eq!(n, 3118, "{m}");

    // a failed restore changes nothing and the connection keeps serving
    assert_eq!(sim.state().db("mgc").unwrap().redo_start_lsn, Some(REDO));
    assert_eq!(rows(&mut c, "SELECT 1", &[]).await, vec![vec!["1"]]);
}

#[tokio::test]
async fn interrupted_restore_needs_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = scenario().build();
    st.db_mut("mgc").unwrap().interrupted = Some(r"D:\LSCopy\mgc\mgc_20240101000000.trn".into());
    logship::sim::state::save(dir.path(), &mut st).unwrap();
    let sim = Sim::start(dir.path()).await;
    let mut c = sim.client().await;
    let (n, class, m) = server_error(
        c.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY",
            &[&"mgc", &"/nonexistent.trn"],
        )
        .await,
    );
    assert_eq!((n, class), (4319, 16));
    assert_eq!(
        m,
        "A previous restore operation was interrupted and did not complete processing on file \
         'D:\\LSCopy\\mgc\\mgc_20240101000000.trn'. Either restore the backup set that was interrupted or restart the restore sequence."
    );
    // WITH RESTART goes past that check (and fails later, on the missing device)
    let (n, _, _) = server_error(
        c.execute(
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, RESTART",
            &[&"mgc", &"/nonexistent.trn"],
        )
        .await,
    );
    assert_eq!(n, 3201);
}

#[tokio::test]
async fn fault_fails_next_restores_with_3101() {
    let mut sc = scenario();
    sc.faults.fail_restores_3101 = 2;
    let (sim, _d) = Sim::with(&sc).await;
    let mut c = sim.client().await;
    for _ in 0..2 {
        let (n, _, _) = server_error(
            c.execute("RESTORE LOG mgc FROM DISK = '/x.trn' WITH NORECOVERY", &[])
                .await,
        );
        assert_eq!(n, 3101);
    }
    let (n, _, _) = server_error(
        c.execute("RESTORE LOG mgc FROM DISK = '/x.trn' WITH NORECOVERY", &[])
            .await,
    );
    assert_eq!(n, 3201, "the fault is used up");
    assert_eq!(sim.state().faults.fail_restores_3101, 0);
}

#[tokio::test]
async fn restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    logship::sim::state::init(dir.path(), &scenario()).unwrap();
    let sim = Sim::start(dir.path()).await;
    let mut c = sim.client().await;
    c.execute("exec sp_delete_log_shipping_secondary_database N'mgc'", &[])
        .await
        .unwrap();
    drop(c);
    sim.stop().await;
    let sim = Sim::start(dir.path()).await;
    let mut c = sim.client().await;
    assert_eq!(
        rows(&mut c, "SELECT * FROM msdb.dbo.log_shipping_secondary", &[])
            .await
            .len(),
        0
    );
    let q = "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1";
    assert_eq!(
        rows(&mut c, q, &[&"mgc"]).await,
        vec![vec!["mgc", "RESTORING", "0"]]
    );
}

#[tokio::test]
async fn large_messages_cross_packets_both_ways() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let mut c = sim.client().await;
    // a statement far larger than one 4096-byte packet, padded with a comment
    let pad = "x".repeat(20_000);
    let q = format!(
        "SELECT name, state_desc, is_in_standby FROM sys.databases /* {pad} */ WHERE name = @P1"
    );
    assert_eq!(rows(&mut c, &q, &[&"mgc"]).await.len(), 1);
    // a parameter beyond 4000 characters travels as nvarchar(max) (PLP)
    let long = "y".repeat(5000);
    let r = rows(
        &mut c,
        "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1",
        &[&long.as_str()],
    )
    .await;
    assert!(r.is_empty());
}

/// Answers are split at the packet size the client asked for in LOGIN7.
#[tokio::test]
async fn answers_follow_the_negotiated_packet_size() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let (mut raw, login) = Raw::login_sized(sim.addr, "failover", PASSWORD, 512).await;
    assert!(login
        .msgs
        .iter()
        .any(|m| m.number == 5701 && m.text == "Changed database context to 'master'."));
    raw.batch("SELECT * FROM msdb.dbo.log_shipping_secondary")
        .await;
    let mut sizes = Vec::new();
    loop {
        let (st, body) = raw.read_packet().await.unwrap();
        sizes.push(body.len() + 8);
        if st & 1 != 0 {
            break;
        }
    }
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 512),
        "{sizes:?}"
    );
    assert!(*sizes.last().unwrap() <= 512);
}

/// A failed RESTORE sends its error and then 3013, as SQL Server does (seen with the raw client).
#[tokio::test]
async fn failed_restore_is_followed_by_3013() {
    let (sim, d) = Sim::with(&scenario()).await;
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    let missing = d.path().join("gone.trn");
    raw.batch(&format!(
        "RESTORE LOG [mgc] FROM DISK = N'{}' WITH NORECOVERY",
        missing.display()
    ))
    .await;
    let r = raw.response().await.unwrap();
    let got: Vec<(u32, u8, bool)> = r
        .msgs
        .iter()
        .map(|m| (m.number, m.class, m.error))
        .collect();
    assert_eq!(got, vec![(3201, 16, true), (3013, 16, true)]);
    assert_eq!(r.msgs[1].text, "RESTORE LOG is terminating abnormally.");
    assert_eq!(r.done_status, vec![0x02], "DONE with the error flag");
    raw.batch("RESTORE DATABASE [nosuch] WITH RECOVERY").await;
    let r = raw.response().await.unwrap();
    assert_eq!(
        r.msgs.iter().map(|m| m.number).collect::<Vec<_>>(),
        vec![3118, 3013]
    );
    assert_eq!(
        r.msgs[1].text,
        "RESTORE DATABASE is terminating abnormally."
    );
}

/// The slow-response fault delays every answer by at least the configured time.
#[tokio::test]
async fn slow_fault_delays_answers() {
    let mut sc = scenario();
    sc.faults.slow_ms = 150;
    let (sim, _d) = Sim::with(&sc).await;
    let mut c = sim.client().await;
    let t = std::time::Instant::now();
    assert_eq!(rows(&mut c, "SELECT 1", &[]).await, vec![vec!["1"]]);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

/// A session killed just before the simulator stops still comes back after the restart.
#[tokio::test]
async fn reconnecting_session_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = scenario();
    sc.sessions = 1;
    sc.reconnecting_sessions = 1;
    sc.reconnect_after_ms = 300;
    logship::sim::state::init(dir.path(), &sc).unwrap();
    let sim = Sim::start(dir.path()).await;
    let mut c = sim.client().await;
    c.execute("KILL 51", &[]).await.unwrap();
    drop(c);
    sim.stop().await;
    let st = logship::sim::state::load(dir.path()).unwrap();
    assert!(st.sessions.is_empty());
    assert_eq!(st.returning.len(), 1);

    let sim = Sim::start(dir.path()).await;
    let mut c = sim.client().await;
    let q = "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID";
    let mut back = Vec::new();
    for _ in 0..400 {
        back = rows(&mut c, q, &[&"mgc"]).await;
        if !back.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(back.len(), 1);
    assert!(sim.state().returning.is_empty());
}

/// datetime and datetime2 as tiberius decodes them.
#[tokio::test]
async fn datetime_and_datetime2() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let mut c = sim.client().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days_1900 = now / 86400 + 25567;
    let days_0001 = now / 86400 + 719162;
    let secs_of_day = now % 86400;
    let r = c
        .query("SELECT GETDATE()", &[])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    match r.cells().next().unwrap().1 {
        tiberius::ColumnData::DateTime(Some(dt)) => {
            assert!((dt.days() as i64 - days_1900).abs() <= 1);
            if dt.days() as i64 == days_1900 {
                assert!((dt.seconds_fragments() as i64 / 300 - secs_of_day).abs() <= 5);
            }
        }
        other => panic!("{other:?}"),
    }
    let r = c
        .query("select sysutcdatetime()", &[])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    match r.cells().next().unwrap().1 {
        tiberius::ColumnData::DateTime2(Some(dt)) => {
            assert!((dt.date().days() as i64 - days_0001).abs() <= 1);
            assert_eq!(dt.time().scale(), 7);
            if dt.date().days() as i64 == days_0001 {
                assert!((dt.time().increments() as i64 / 10_000_000 - secs_of_day).abs() <= 5);
            }
        }
        other => panic!("{other:?}"),
    };
}
