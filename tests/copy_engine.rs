//! The copy engine through its library API, on generated folders: byte-identical copies, the
//! manifest, re-runs that read nothing, hash checks of files in place, and per-file faults.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use logship::copy::{
    copy_files, discover_backups, part_name, select_uncopied, Action, CopyError, CopyJob,
    CopyOptions, CopyProgress, CopyReport, Manifest, NoProgress, VerifiedBy, VerifyMode,
};

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A share with `sizes.len()` backups plus files that are not backups.
fn share(dir: &Path, sizes: &[usize]) -> Vec<CopyJob> {
    for (i, &n) in sizes.iter().enumerate() {
        fs::write(dir.join(format!("mgc_{i:03}.trn")), bytes(i as u64 + 1, n)).unwrap();
    }
    fs::write(dir.join("mgc_999.wrk"), b"in flight").unwrap();
    fs::write(dir.join(".mgc_000.trn.logship-part"), b"not a backup").unwrap();
    fs::write(dir.join("notes.txt"), b"no").unwrap();
    discover_backups(dir).unwrap()
}

fn opts(verify: VerifyMode) -> CopyOptions {
    // Small buffers so the multi-buffer (reader + writer thread) path runs on small files.
    CopyOptions {
        workers: 3,
        verify,
        buffer_size: 64 << 10,
        ..CopyOptions::default()
    }
}

fn run(jobs: &[CopyJob], dest: &Path, o: &CopyOptions) -> (CopyReport, Vec<String>) {
    let announced = Mutex::new(Vec::new());
    let r = copy_files(
        jobs,
        dest,
        o,
        &NoProgress,
        &|v| announced.lock().unwrap().push(v.name.clone()),
        &AtomicBool::new(false),
    )
    .unwrap();
    (r, announced.into_inner().unwrap())
}

fn assert_same(dest: &Path, jobs: &[CopyJob]) {
    for j in jobs {
        assert_eq!(
            fs::read(&j.source).unwrap(),
            fs::read(dest.join(&j.name)).unwrap(),
            "{}",
            j.name
        );
    }
}

#[test]
fn copies_are_identical_the_manifest_is_right_and_a_rerun_reads_nothing() {
    for verify in [VerifyMode::Reread, VerifyMode::Disk, VerifyMode::Inline] {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // 3.5 MB is over 48 buffers: it is copied in pieces, each read back after an fsync.
        let jobs = share(s.path(), &[0, 1, 65_536, 200_000, 1_000_003, 3_500_000]);
        assert_eq!(jobs.len(), 6, "only .trn files are candidates");
        let (r, announced) = run(&jobs, d.path(), &opts(verify));
        assert!(r.ok(), "{r:?}");
        assert_eq!(
            (r.copied.len(), r.skipped.len(), r.verified_by_hash.len()),
            (6, 0, 0)
        );
        assert_eq!(r.bytes_copied, jobs.iter().map(|j| j.size).sum::<u64>());
        assert_same(d.path(), &jobs);
        let mut sorted = announced.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            jobs.iter().map(|j| j.name.clone()).collect::<Vec<_>>()
        );
        let expect_reads = if verify == VerifyMode::Inline { 6 } else { 12 };
        assert_eq!(r.content_reads, expect_reads, "{verify}");

        let m = Manifest::load(d.path()).unwrap();
        assert_eq!(m.files.len(), 6);
        for j in &jobs {
            let e = &m.files[&j.name];
            let meta = fs::metadata(d.path().join(&j.name)).unwrap();
            assert_eq!(e.size, j.size);
            assert_eq!(
                e.blake3,
                blake3::hash(&fs::read(&j.source).unwrap())
                    .to_hex()
                    .to_string()
            );
            assert_eq!(
                e.mtime_ns,
                logship::copy::manifest::to_ns(meta.modified().unwrap())
            );
            assert_eq!(e.verify, VerifiedBy::from(verify));
            // The copy keeps the source's mtime.
            assert_eq!(
                meta.modified().unwrap(),
                fs::metadata(&j.source).unwrap().modified().unwrap()
            );
        }
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".logship-part") || n.ends_with(".tmp")),
            "{names:?}"
        );

        assert!(select_uncopied(&jobs, d.path(), &m).is_empty());
        let (r2, announced2) = run(&jobs, d.path(), &opts(verify));
        assert!(r2.ok());
        assert_eq!(
            (
                r2.copied.len(),
                r2.skipped.len(),
                r2.content_reads,
                r2.bytes_copied
            ),
            (0, 6, 0, 0)
        );
        assert_eq!(
            announced2.len(),
            6,
            "already verified files are announced too"
        );
        assert_eq!(
            Manifest::load(d.path()).unwrap(),
            m,
            "a run with nothing to do leaves the manifest as it was"
        );
    }
}

#[test]
fn files_in_place_without_a_manifest_entry_are_hashed_not_copied_and_bad_ones_recopied() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[10_000, 300_000, 5_000, 7_000]);
    // 0: identical copy (from another tool); 1: same size, different content; 2: shorter; 3: absent.
    fs::copy(&jobs[0].source, d.path().join(&jobs[0].name)).unwrap();
    fs::write(d.path().join(&jobs[1].name), bytes(99, 300_000)).unwrap();
    fs::write(d.path().join(&jobs[2].name), b"short").unwrap();
    let m = Manifest::load(d.path()).unwrap();
    let sel = select_uncopied(&jobs, d.path(), &m);
    let acts: Vec<_> = sel
        .iter()
        .map(|p| (p.job.name.as_str(), p.action.clone()))
        .collect();
    assert_eq!(
        acts,
        vec![
            ("mgc_000.trn", Action::HashCheck),
            ("mgc_001.trn", Action::HashCheck),
            ("mgc_002.trn", Action::Copy),
            ("mgc_003.trn", Action::Copy)
        ]
    );
    let (r, _) = run(&jobs, d.path(), &opts(VerifyMode::Reread));
    assert!(r.ok(), "{r:?}");
    let by_hash: Vec<_> = r.verified_by_hash.iter().map(|v| v.name.as_str()).collect();
    let mut copied: Vec<_> = r.copied.iter().map(|v| v.name.as_str()).collect();
    copied.sort();
    assert_eq!(by_hash, vec!["mgc_000.trn"]);
    assert_eq!(copied, vec!["mgc_001.trn", "mgc_002.trn", "mgc_003.trn"]);
    assert_same(d.path(), &jobs);
    assert_eq!(
        Manifest::load(d.path()).unwrap().files["mgc_000.trn"].verify,
        VerifiedBy::Compared
    );

    // A verified file touched afterwards is no longer vouched for: hashed again, not copied.
    let f = fs::File::options()
        .write(true)
        .open(d.path().join("mgc_003.trn"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    let (r, _) = run(&jobs, d.path(), &opts(VerifyMode::Reread));
    assert_eq!(
        (r.skipped.len(), r.verified_by_hash.len(), r.copied.len()),
        (3, 1, 0)
    );
}

#[test]
fn leftover_part_files_are_removed_and_files_are_announced_in_order_with_one_worker() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[1000, 2000, 3000]);
    fs::write(d.path().join(part_name("mgc_001.trn")), b"torn").unwrap();
    fs::write(d.path().join(part_name("gone.trn")), b"torn").unwrap();
    let mut reversed = jobs.clone();
    reversed.reverse();
    let (r, announced) = run(
        &reversed,
        d.path(),
        &CopyOptions {
            workers: 1,
            ..opts(VerifyMode::Reread)
        },
    );
    assert!(r.ok());
    assert_eq!(
        announced,
        vec!["mgc_002.trn", "mgc_001.trn", "mgc_000.trn"],
        "the caller's order"
    );
    assert!(!d.path().join(part_name("gone.trn")).exists());
    assert_same(d.path(), &jobs);
}

/// Deletes one source when another file is done, like retention cleanup on a live share.
struct DeleteOnDone {
    after: &'static str,
    victim: std::path::PathBuf,
}
impl CopyProgress for DeleteOnDone {
    fn file_done(&self, name: &str, _ok: bool) {
        if name == self.after {
            fs::remove_file(&self.victim).unwrap();
        }
    }
}

#[test]
fn a_source_deleted_mid_run_fails_by_name_and_the_others_go_on() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[100_000, 100_000, 100_000]);
    let p = DeleteOnDone {
        after: "mgc_000.trn",
        victim: jobs[1].source.clone(),
    };
    let o = CopyOptions {
        workers: 1,
        ..opts(VerifyMode::Reread)
    };
    let r = copy_files(&jobs, d.path(), &o, &p, &|_| {}, &AtomicBool::new(false)).unwrap();
    assert!(!r.ok());
    assert_eq!(r.copied.len(), 2);
    assert_eq!(r.failed.len(), 1);
    let f = &r.failed[0];
    assert_eq!(f.name, "mgc_001.trn");
    assert!(
        matches!(f.error, CopyError::SourceVanished { .. }),
        "{:?}",
        f.error
    );
    assert!(f.error.to_string().contains("mgc_001.trn"), "{}", f.error);
    assert!(!d.path().join("mgc_001.trn").exists());
    assert!(!d.path().join(part_name("mgc_001.trn")).exists());
}

#[test]
fn a_source_deleted_while_it_is_read_is_still_copied_whole() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[1 << 20]);
    let original = fs::read(&jobs[0].source).unwrap();
    let part = d.path().join(part_name(&jobs[0].name));
    let o = CopyOptions {
        workers: 1,
        throttle: Some(Duration::from_millis(3)),
        ..opts(VerifyMode::Reread)
    };
    let done = AtomicBool::new(false);
    let r = std::thread::scope(|sc| {
        sc.spawn(|| {
            // The temp file exists only once the source is open: delete the source then.
            while !part.exists() && !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = fs::remove_file(&jobs[0].source);
        });
        let r = copy_files(
            &jobs,
            d.path(),
            &o,
            &NoProgress,
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        done.store(true, Ordering::Relaxed);
        r
    });
    assert!(r.ok(), "{r:?}");
    assert_eq!(fs::read(d.path().join(&jobs[0].name)).unwrap(), original);
}

#[test]
fn a_source_that_keeps_changing_is_retried_then_reported_and_never_lands() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[512 << 10, 20_000, 30_000]);
    let o = CopyOptions {
        workers: 2,
        retries: 2,
        throttle: Some(Duration::from_millis(4)),
        ..opts(VerifyMode::Reread)
    };
    let stop = AtomicBool::new(false);
    let r = std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut i = 0u8;
            while !stop.load(Ordering::Relaxed) {
                // Rewrite in place, same size: only the content and the mtime change.
                use std::io::{Seek, SeekFrom, Write};
                let mut f = fs::File::options()
                    .write(true)
                    .open(&jobs[0].source)
                    .unwrap();
                f.seek(SeekFrom::Start(1000)).unwrap();
                f.write_all(&[i; 100]).unwrap();
                i = i.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let r = copy_files(
            &jobs,
            d.path(),
            &o,
            &NoProgress,
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        r
    });
    assert_eq!(r.copied.len(), 2, "{r:?}");
    assert_eq!(r.failed.len(), 1);
    let f = &r.failed[0];
    assert_eq!((f.name.as_str(), f.attempts), ("mgc_000.trn", 3));
    assert!(
        matches!(f.error, CopyError::SourceChanged { .. }),
        "{:?}",
        f.error
    );
    assert!(
        f.error
            .to_string()
            .contains("mgc_000.trn changed while it was copied"),
        "{}",
        f.error
    );
    assert!(!d.path().join("mgc_000.trn").exists());
    assert!(!d.path().join(part_name("mgc_000.trn")).exists());
}

#[test]
fn a_copy_that_changes_before_its_read_back_is_retried_then_reported_and_never_lands() {
    // Someone writes into the temporary file while it is copied: the read-back must see it,
    // both where a file is read back after its fsync (8 buffers) and where it is copied in
    // pieces (64 buffers, over the 48 a worker keeps).
    for verify in [VerifyMode::Reread, VerifyMode::Disk] {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let jobs = share(s.path(), &[512 << 10, 4 << 20, 30_000]);
        let o = CopyOptions {
            workers: 3,
            retries: 2,
            throttle: Some(Duration::from_millis(3)),
            ..opts(verify)
        };
        let stop = AtomicBool::new(false);
        let r = std::thread::scope(|sc| {
            for j in &jobs[..2] {
                let (part, stop) = (d.path().join(part_name(&j.name)), &stop);
                let byte = !fs::read(&j.source).unwrap()[100];
                sc.spawn(move || {
                    use std::io::{Seek, SeekFrom, Write};
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(mut f) = fs::File::options().write(true).open(&part) {
                            if f.metadata().unwrap().len() >= 64 << 10 {
                                f.seek(SeekFrom::Start(100)).unwrap();
                                f.write_all(&[byte]).unwrap();
                            }
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
            }
            let r = run(&jobs, d.path(), &o).0;
            stop.store(true, Ordering::Relaxed);
            r
        });
        assert_eq!(r.copied.len(), 1, "{verify}: {r:?}");
        assert_eq!(r.failed.len(), 2, "{verify}: {r:?}");
        for f in &r.failed {
            assert_eq!(f.attempts, 3, "{verify} {}", f.name);
            assert!(
                matches!(f.error, CopyError::Mismatch { .. }),
                "{verify}: {:?}",
                f.error
            );
            let msg = f.error.to_string();
            assert!(
                msg.contains(&format!("{} does not match its source", part_name(&f.name)))
                    && msg.ends_with("byte 100 differs"),
                "{verify}: {msg}"
            );
            assert!(!d.path().join(&f.name).exists());
            assert!(!d.path().join(part_name(&f.name)).exists());
        }
    }
}

#[test]
fn large_buffers_keep_few_of_them_and_a_copy_in_pieces_still_completes() {
    // 6 MiB buffers: a worker keeps 8 of them (48 MiB), so a 50 MiB file is copied in pieces
    // of 256 KiB (the most), not of one buffer; every piece must still be read back.
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[50 << 20]);
    for verify in [VerifyMode::Reread, VerifyMode::Disk] {
        let o = CopyOptions {
            workers: 1,
            buffer_size: 6 << 20,
            ..opts(verify)
        };
        let dest = d.path().join(verify.to_string());
        fs::create_dir(&dest).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (jobs2, dest2) = (jobs.clone(), dest.clone());
        std::thread::spawn(move || tx.send(run(&jobs2, &dest2, &o).0).unwrap());
        let r = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the copy finishes");
        assert!(r.ok() && r.copied.len() == 1, "{verify}: {r:?}");
        assert_same(&dest, &jobs);
    }
}

#[test]
fn cancel_leaves_no_final_name_for_unfinished_files() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[256 << 10; 6]);
    let cancel = AtomicBool::new(false);
    let o = CopyOptions {
        workers: 1,
        throttle: Some(Duration::from_millis(2)),
        ..opts(VerifyMode::Reread)
    };
    let r = copy_files(
        &jobs,
        d.path(),
        &o,
        &NoProgress,
        &|_| cancel.store(true, Ordering::Relaxed),
        &cancel,
    )
    .unwrap();
    assert_eq!(r.copied.len(), 1, "{r:?}");
    assert_eq!(r.cancelled.len(), 5);
    assert!(!r.ok());
    let present: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        present
            .iter()
            .all(|n| n == "mgc_000.trn" || n.starts_with(".logship-manifest")),
        "{present:?}"
    );
}

#[test]
fn a_missing_or_plain_file_destination_is_refused_up_front() {
    let s = tempfile::tempdir().unwrap();
    let jobs = share(s.path(), &[10]);
    let o = opts(VerifyMode::Reread);
    let e = copy_files(
        &jobs,
        &s.path().join("nope"),
        &o,
        &NoProgress,
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(matches!(e, CopyError::DestMissing { .. }), "{e}");
    let e = copy_files(
        &jobs,
        &jobs[0].source,
        &o,
        &NoProgress,
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(matches!(e, CopyError::DestNotDir { .. }), "{e}");
}

#[test]
fn a_name_given_twice_runs_once_and_the_second_is_reported() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut jobs = share(s.path(), &[5000, 6000]);
    jobs.push(CopyJob {
        name: jobs[0].name.clone(),
        ..jobs[1].clone()
    });
    let (r, _) = run(&jobs, d.path(), &opts(VerifyMode::Reread));
    assert_eq!(r.copied.len(), 2);
    assert_eq!(r.failed.len(), 1);
    assert!(matches!(r.failed[0].error, CopyError::DuplicateName { .. }));
    assert_same(d.path(), &jobs[..2]);
}

#[test]
fn a_consumer_that_never_catches_up_does_not_hold_up_the_copy() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let jobs = share(s.path(), &[3000; 12]);
    let consumed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for workers in [1, 2, 3] {
        for e in fs::read_dir(d.path()).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
        // Nothing is ever consumed: the first worker waits once the copy is 2 x workers files
        // ahead, and the others take the rest.
        let o = CopyOptions {
            workers,
            consumed: Some(consumed.clone()),
            ..opts(VerifyMode::Reread)
        };
        let (r, announced) = run(&jobs, d.path(), &o);
        assert!(r.ok(), "{r:?}");
        assert_eq!(
            (r.copied.len(), announced.len()),
            (12, 12),
            "{workers} workers"
        );
        assert_same(d.path(), &jobs);
    }
}
