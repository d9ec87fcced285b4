//! RESTORE on generated backups (backup::synth): a long restore scaled down whose 3211 messages
//! keep arriving, several backup sets in one file, and damaged media (3241) that leave the
//! database where it was.

mod sim_support;

use logship::backup::synth::{write_sets, SynthBackup};
use logship::backup::MtfDate;
use logship::lsn::Lsn;
use sim_support::*;

const START: Lsn = Lsn::new(40, 1, 1);

fn at(first: Lsn) -> logship::sim::Scenario {
    let mut sc = scenario();
    sc.redo_lsn = first;
    sc
}

#[tokio::test]
async fn long_restore_sends_progress_all_along() {
    let share = tempfile::tempdir().unwrap();
    let (paths, end) = gen_chain(share.path(), "mgc", START, 2, 8 << 20);
    let mut sc = at(START);
    sc.restore_mib_per_s = Some(16.0); // 8 MiB: about half a second
    let (sim, _d) = Sim::with(&sc).await;
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    for p in &paths {
        raw.batch(&format!(
            "RESTORE LOG [mgc] FROM DISK = N'{}' WITH NORECOVERY, STATS = 1",
            p.display()
        ))
        .await;
        let r = raw.response().await.unwrap();
        let pct: Vec<&RawMsg> = r.msgs.iter().filter(|m| m.number == 3211).collect();
        assert_eq!(pct.len(), 100);
        assert_eq!(pct[0].text, "1 percent processed.");
        assert_eq!(pct[99].text, "100 percent processed.");
        let packets: std::collections::BTreeSet<usize> = pct.iter().map(|m| m.packet).collect();
        assert!(
            packets.len() >= 10,
            "spread over the restore: {} packets",
            packets.len()
        );
        // 4035 and 3014 come after the last 3211
        let i4035 = r.msgs.iter().position(|m| m.number == 4035).unwrap();
        let i3014 = r.msgs.iter().position(|m| m.number == 3014).unwrap();
        let last3211 = r.msgs.iter().rposition(|m| m.number == 3211).unwrap();
        assert!(last3211 < i4035 && i4035 < i3014);
        assert!(
            r.msgs[i4035].text.starts_with("Processed 10"),
            "{}",
            r.msgs[i4035].text
        );
    }
    let st = sim.state();
    assert_eq!(st.db("mgc").unwrap().redo_start_lsn, Some(end));
    assert_eq!(st.history.len(), 2);
    assert_eq!(st.history[0].last_lsn, st.history[1].first_lsn);
}

#[tokio::test]
async fn headeronly_lists_every_set_of_a_file() {
    let share = tempfile::tempdir().unwrap();
    let a = SynthBackup::log(
        "mgc",
        START,
        Lsn::new(40, 50, 1),
        MtfDate::from_unix(1_767_571_200),
        1,
    );
    let mut b = SynthBackup::log(
        "mgc",
        Lsn::new(40, 50, 1),
        Lsn::new(40, 90, 1),
        MtfDate::from_unix(1_767_571_500),
        2,
    );
    b.position = 2;
    let p = share.path().join("mgc_noinit.trn");
    write_sets(
        &[a.clone(), b.clone()],
        &mut std::fs::File::create(&p).unwrap(),
    )
    .unwrap();
    let (sim, _d) = Sim::with(&at(START)).await;
    let mut c = sim.client().await;
    let rows = c
        .query(
            "RESTORE HEADERONLY FROM DISK = @P1",
            &[&p.to_str().unwrap()],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for (r, s) in rows.iter().zip([&a, &b]) {
        assert_eq!(r.get::<i16, _>("Position"), Some(s.position as i16));
        let first: tiberius::numeric::Numeric = r.get("FirstLSN").unwrap();
        assert_eq!(first.value() as u128, s.first_lsn.to_decimal());
        assert_eq!(
            r.get::<uuid::Uuid, _>("BackupSetGUID"),
            Some(s.backup_set_guid)
        );
        assert_eq!(
            r.get::<&str, _>("BackupTypeDescription"),
            Some("Transaction Log")
        );
    }
    // RESTORE LOG takes the first set (FILE = 1)
    c.execute(
        "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY",
        &[&"mgc", &p.to_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(
        sim.state().db("mgc").unwrap().redo_start_lsn,
        Some(a.last_lsn)
    );
}

#[tokio::test]
async fn damaged_media_is_3241_and_changes_nothing() {
    let share = tempfile::tempdir().unwrap();
    let (paths, _) = gen_chain(share.path(), "mgc", START, 1, 1 << 20);
    let good = std::fs::read(&paths[0]).unwrap();
    let (sim, _d) = Sim::with(&at(START)).await;
    let mut c = sim.client().await;

    // cut in the middle: headers still readable from the start, the whole file is not
    let cut = share.path().join("cut.trn");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    // a stream header in the middle with a bad checksum: only a whole-file read sees it
    let mut bad = good.clone();
    let mstl = bad.windows(4).position(|w| w == b"MSTL").unwrap();
    let spad = mstl + bad[mstl..].windows(4).position(|w| w == b"SPAD").unwrap();
    bad[spad + 20] ^= 0xff;
    let flipped = share.path().join("flipped.trn");
    std::fs::write(&flipped, &bad).unwrap();

    for p in [&cut, &flipped] {
        let p = p.to_str().unwrap();
        let r = c
            .execute(
                "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 10",
                &[&"mgc", &p],
            )
            .await;
        let (n, class, m) = server_error(r);
        assert_eq!((n, class), (3241, 16), "{p}: {m}");
        let db = sim.state().db("mgc").cloned().unwrap();
        assert_eq!(db.redo_start_lsn, Some(START));
        assert_eq!(db.interrupted, None);
    }
    assert!(sim.state().history.is_empty());
    // the good file restores
    c.execute(
        "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY",
        &[&"mgc", &paths[0].to_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(sim.state().history.len(), 1);
}

/// `WITH FILE = n` restores the n-th set of a file written WITH NOINIT; 4038 when there is none.
#[tokio::test]
async fn restore_log_with_file() {
    let share = tempfile::tempdir().unwrap();
    let mid = Lsn::new(40, 50, 1);
    let a = SynthBackup::log("mgc", START, mid, MtfDate::from_unix(1_767_571_200), 1);
    let mut b = SynthBackup::log(
        "mgc",
        mid,
        Lsn::new(40, 90, 1),
        MtfDate::from_unix(1_767_571_500),
        2,
    );
    b.position = 2;
    let p = share.path().join("mgc_noinit.trn");
    write_sets(&[a, b.clone()], &mut std::fs::File::create(&p).unwrap()).unwrap();
    let (sim, _d) = Sim::with(&at(mid)).await;
    let mut c = sim.client().await;
    let path = p.to_str().unwrap();
    let q = "RESTORE LOG @P1 FROM DISK = @P2 WITH FILE = @P3, NORECOVERY, STATS = 5";
    let (n, _, m) = server_error(c.execute(q, &[&"mgc", &path, &3i32]).await);
    assert_eq!(n, 4038);
    assert_eq!(m, format!("Cannot find file ID 3 on device '{path}'."));
    c.execute(q, &[&"mgc", &path, &2i32]).await.unwrap();
    assert_eq!(
        sim.state().db("mgc").unwrap().redo_start_lsn,
        Some(b.last_lsn)
    );
    assert_eq!(sim.state().history[0].backup_set_guid, b.backup_set_guid);
}
