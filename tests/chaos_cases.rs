//! The engine fixes the chaos suite (tests/chaos.rs) led to, each pinned by a deterministic case:
//! copies changed after their verification, a corrupted copy without its source, a backup damaged
//! past its headers, an unreadable last log.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{files, hash, name_of, World};

const KIB: u64 = 1024;

/// The copy folder filled by `logship copy` (verified, in the manifest), and the chain's logs.
fn copied_world() -> (World, Vec<PathBuf>) {
    let w = World::new(8, 32 * KIB, |s| {
        s.already_copied = 0;
        s.already_applied = 1;
    });
    let out = Command::new(common::logship())
        .args(["copy", "--source"])
        .arg(w.spec.share_dir())
        .arg("--dest")
        .arg(w.spec.copy_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let logs = files(&w.spec.share_dir());
    (w, logs)
}

fn flip_a_byte(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x20;
    std::fs::write(p, b).unwrap();
}

fn restored_hashes(w: &World) -> Vec<(String, String)> {
    w.sim_state()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                name_of(Path::new(h["path"].as_str().unwrap())),
                h["blake3"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_copy_corrupted_after_verification_is_copied_again_not_restored() {
    let (w, logs) = copied_world();
    let originals: HashMap<String, String> = logs
        .iter()
        .map(|p| (name_of(p), hash(p).unwrap()))
        .collect();
    let victim = w.spec.copy_dir().join(name_of(&logs[4]));
    flip_a_byte(&victim);
    let out = w.run(&["failover", "--yes"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let restored = restored_hashes(&w);
    assert!(restored.iter().any(|(n, _)| *n == name_of(&logs[4])));
    for (n, h) in restored {
        assert_eq!(Some(&h), originals.get(&n), "{n} restored with other bytes");
    }
    assert_eq!(hash(&victim), hash(&logs[4]), "the copy was made again");
}

#[test]
fn a_corrupted_copy_whose_source_is_gone_stops_for_a_human() {
    let (w, logs) = copied_world();
    let victim = w.spec.copy_dir().join(name_of(&logs[4]));
    std::fs::remove_file(&logs[4]).unwrap();
    flip_a_byte(&victim);
    for _ in 0..2 {
        let out = w.run(&["failover", "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
        let text = format!("{}{}", common::stdout(&out), common::stderr(&out));
        assert!(text.contains("no longer matches the hash"), "{text}");
        assert!(text.contains(&name_of(&logs[4])), "{text}");
    }
    assert_eq!(w.database()["state"], "RESTORING");
    assert!(restored_hashes(&w)
        .iter()
        .all(|(n, _)| *n != name_of(&logs[4])));
    assert_ne!(w.chat_state()["pools"][0]["state"], "FailedOver");
}

#[test]
fn a_backup_damaged_past_its_headers_stops_for_a_human_naming_it() {
    let w = World::new(8, 32 * KIB, |s| {
        s.already_copied = 0;
        s.already_applied = 1;
    });
    // Cut inside the last blocks: the headers still read, so only the restore finds it (a deeper
    // cut is refused by the reader: a gap, exit 3, catchup_sim::a_damaged_copy_is_not_restored).
    let logs = files(&w.spec.share_dir());
    let len = std::fs::metadata(&logs[4]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&logs[4])
        .unwrap()
        .set_len(len - 1500)
        .unwrap();
    for _ in 0..2 {
        let out = w.run(&["failover", "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
        let text = format!("{}{}", common::stdout(&out), common::stderr(&out));
        assert!(
            text.contains("is damaged: SQL Server cannot read it"),
            "{text}"
        );
        assert!(text.contains(&name_of(&logs[4])), "{text}");
    }
    assert_eq!(w.database()["state"], "RESTORING");
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
    assert_ne!(w.chat_state()["pools"][0]["state"], "FailedOver");
}

#[test]
fn an_unreadable_last_log_stops_recovery_unless_the_gap_is_accepted() {
    let w = World::new(8, 32 * KIB, |s| {
        s.already_copied = 0;
        s.already_applied = 1;
    });
    // The last log cut to a stub: no gap shows it is needed, only the file itself.
    let logs = files(&w.spec.share_dir());
    let last = logs.last().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(100)
        .unwrap();
    let out = w.run(&["failover", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    let text = format!("{}{}", common::stdout(&out), common::stderr(&out));
    assert!(text.contains("log backups that cannot be read"), "{text}");
    assert!(text.contains(&name_of(last)), "{text}");
    assert_eq!(w.database()["state"], "RESTORING");
    let out = w.run(&["failover", "--yes", "--accept-gap"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(w.database()["state"], "ONLINE");
    w.assert_history_is_one_chain(w.prepared.redo_lsn);
}
