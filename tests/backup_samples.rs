//! The native reader against the real backups in ../shared/samples: every value of NOTES.md's
//! table, and the whole-file check. Skips, saying so, when the folder is missing.

use std::path::{Path, PathBuf};

use logship::backup::{check_whole, read_file, BackupType, MtfDate};
use logship::Lsn;

fn samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    if dir.join("NOTES.md").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is missing", dir.display());
        None
    }
}

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

fn date(s: &str) -> MtfDate {
    serde_json::from_str(&format!("\"{s}\"")).unwrap()
}

/// NOTES.md: file, type, FirstLSN, LastLSN, CheckpointLSN, DatabaseBackupLSN, BackupStartDate.
const TABLE: &[(&str, BackupType, &str, &str, &str, &str, &str)] = &[
    (
        "RestoreTimeClean.bak",
        BackupType::Full,
        "39000000048800071",
        "39000000051800001",
        "39000000048800071",
        "39000000035400071",
        "2019-05-02T21:00:55",
    ),
    (
        "RestoreTimeClean_1.trn",
        BackupType::Log,
        "39000000047400001",
        "39000000054100001",
        "39000000048800071",
        "39000000048800071",
        "2019-05-02T21:05:55",
    ),
    (
        "RestoreTimeClean_2.trn",
        BackupType::Log,
        "39000000054100001",
        "39000000057100001",
        "39000000054300002",
        "39000000048800071",
        "2019-05-02T21:10:56",
    ),
    (
        "RestoreTimeClean_3.trn",
        BackupType::Log,
        "39000000057100001",
        "39000000058800001",
        "39000000057300002",
        "39000000048800071",
        "2019-05-02T21:15:56",
    ),
    (
        "RestoreTimeClean2.bak",
        BackupType::Differential,
        "39000000059500001",
        "39000000059800001",
        "39000000059500001",
        "39000000048800071",
        "2019-05-02T21:15:56",
    ),
    (
        "RestoreTimeClean2_1.trn",
        BackupType::Log,
        "39000000058800001",
        "39000000060800001",
        "39000000059500001",
        "39000000048800071",
        "2019-05-02T21:20:56",
    ),
    (
        "test_LOG_20160629_141500.trn",
        BackupType::Log,
        "21000000018200001",
        "21000000018200001",
        "21000000015900037",
        "21000000015900037",
        "2018-07-02T08:17:42",
    ),
];

#[test]
fn every_value_of_the_notes_table() {
    let Some(dir) = samples() else { return };
    for &(file, ty, first, last, ckpt, dbl, start) in TABLE {
        let path = dir.join(file);
        let hs = read_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hs.len(), 1, "{file}: one backup set");
        let h = &hs[0];
        assert_eq!(h.path, path);
        assert_eq!(h.position, 1, "{file}");
        assert_eq!(h.backup_type, ty, "{file}");
        assert_eq!(h.first_lsn, lsn(first), "{file} FirstLSN");
        assert_eq!(h.last_lsn, lsn(last), "{file} LastLSN");
        assert_eq!(h.checkpoint_lsn, lsn(ckpt), "{file} CheckpointLSN");
        assert_eq!(h.database_backup_lsn, lsn(dbl), "{file} DatabaseBackupLSN");
        assert_eq!(
            h.backup_start_date,
            Some(date(start)),
            "{file} BackupStartDate"
        );
        assert!(h.complete, "{file}: has its MSLS trailer");
        assert!(
            h.backup_finish_date >= h.backup_start_date,
            "{file}: finish date set from MSLS"
        );
        assert_eq!(h.family_count, 1, "{file}");
        assert_eq!(h.family_sequence, 1, "{file}");
        assert!(!h.backup_set_guid.is_nil(), "{file}");
        assert!(!h.media_set_guid.is_nil(), "{file}");
        if file.starts_with("RestoreTimeClean") {
            assert_eq!(h.database_name, "RestoreTimeClean", "{file}");
            assert_eq!(h.server_name, r"WIN-JNMR8KM0U3B\SQL2016", "{file}");
            assert_eq!(h.database_version, 852, "{file}");
            assert_eq!(h.software_version.to_string(), "13.0.5081", "{file}");
        } else {
            assert_eq!(h.database_name, "OlaMsFilterTest");
            assert_eq!(h.software_version.major, 10);
            assert_eq!(h.software_version.minor, 50);
            assert_eq!(h.software_version.build, 4042);
            assert_eq!(h.database_version, 661);
            assert!(h.is_empty_log());
        }
        if ty == BackupType::Differential {
            assert_eq!(
                h.differential_base_lsn,
                Some(lsn("39000000048800071")),
                "{file} DifferentialBaseLSN"
            );
        } else {
            assert_eq!(h.differential_base_lsn, None, "{file}");
        }
    }
}

#[test]
fn the_chain_is_consistent() {
    let Some(dir) = samples() else { return };
    let read = |f: &str| read_file(&dir.join(f)).unwrap().remove(0);
    let full = read("RestoreTimeClean.bak");
    let diff = read("RestoreTimeClean2.bak");
    let logs: Vec<_> = [
        "RestoreTimeClean_1.trn",
        "RestoreTimeClean_2.trn",
        "RestoreTimeClean_3.trn",
        "RestoreTimeClean2_1.trn",
    ]
    .iter()
    .map(|f| read(f))
    .collect();
    for w in logs.windows(2) {
        assert_eq!(
            w[1].first_lsn,
            w[0].last_lsn,
            "{} follows {}",
            w[1].path.display(),
            w[0].path.display()
        );
    }
    for l in &logs {
        assert_eq!(l.database_backup_lsn, full.checkpoint_lsn);
    }
    assert_eq!(diff.differential_base_lsn, Some(full.checkpoint_lsn));
    assert_eq!(
        diff.differential_base_guid,
        Some(full.backup_set_guid),
        "the differential's base is that full"
    );
    let guids: std::collections::HashSet<_> = logs.iter().map(|l| l.backup_set_guid).collect();
    assert_eq!(
        guids.len(),
        logs.len(),
        "each backup has its own BackupSetGUID"
    );
}

#[test]
fn check_whole_reads_every_sample_to_the_end() {
    let Some(dir) = samples() else { return };
    for &(file, ..) in TABLE {
        let path = dir.join(file);
        let len = std::fs::metadata(&path).unwrap().len();
        let mut last = (0, 0);
        let whole = check_whole(&path, &mut |d, t| last = (d, t)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last, (len, len), "{file}: progress reaches the end");
        assert_eq!(
            whole,
            read_file(&path).unwrap(),
            "{file}: same headers as the header read"
        );
    }
}
