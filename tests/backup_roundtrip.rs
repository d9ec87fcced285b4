//! Round trip: whatever the synthetic writer writes, the native reader reads back field for field
//! (table cases, a generated share with every chain case, and a property test over random fields).

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use logship::backup::synth::{write_sets, write_share, FileRole, ShareSpec, SynthBackup};
use logship::backup::{
    check_whole, read_file, read_headers, BackupType, MtfDate, ReadErrorKind, SoftwareVersion,
};
use logship::Lsn;
use proptest::prelude::*;
use uuid::Uuid;

fn d(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> MtfDate {
    MtfDate {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
}

fn base() -> SynthBackup {
    SynthBackup::log(
        "mgc",
        Lsn::new(40, 100, 1),
        Lsn::new(40, 900, 1),
        d(2026, 1, 5, 0, 0, 0),
        11,
    )
}

fn bytes_of(sets: &[SynthBackup]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = write_sets(sets, &mut out).unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

#[test]
fn table_of_backups_reads_back_field_for_field() {
    let p = Path::new("share/x.bak");
    let full = SynthBackup {
        backup_type: BackupType::Full,
        data_bytes: 300_000,
        log_bytes: 8192,
        ..base()
    };
    let diff = SynthBackup {
        backup_type: BackupType::Differential,
        data_bytes: 40_000,
        differential_base_lsn: Lsn::new(40, 50, 71),
        differential_base_guid: Uuid::from_u128(0xABCD),
        ..base()
    };
    let cases: Vec<(&str, SynthBackup)> = vec![
        ("log", base()),
        (
            "empty log",
            SynthBackup {
                last_lsn: Lsn::new(40, 100, 1),
                log_bytes: 0,
                ..base()
            },
        ),
        ("full", full),
        ("differential", diff),
        (
            "incomplete",
            SynthBackup {
                complete: false,
                ..base()
            },
        ),
        (
            "incomplete full",
            SynthBackup {
                complete: false,
                backup_type: BackupType::Full,
                data_bytes: 9000,
                ..base()
            },
        ),
        (
            "file",
            SynthBackup {
                backup_type: BackupType::File,
                ..base()
            },
        ),
        (
            "differential partial",
            SynthBackup {
                backup_type: BackupType::DifferentialPartial,
                ..base()
            },
        ),
        (
            "non-ASCII names",
            SynthBackup {
                database_name: "Bücher-数据库 😀".into(),
                server_name: r"ÅSERVER\Ünïcode".into(),
                ..base()
            },
        ),
        (
            "2008 R2",
            SynthBackup {
                software_version: SoftwareVersion {
                    major: 10,
                    minor: 50,
                    build: 4042,
                },
                database_version: 661,
                ..base()
            },
        ),
        (
            "2022",
            SynthBackup {
                software_version: SoftwareVersion {
                    major: 16,
                    minor: 0,
                    build: 1000,
                },
                database_version: 957,
                ..base()
            },
        ),
        (
            "stripe 2 of 3",
            SynthBackup {
                family_count: 3,
                family_sequence: 2,
                ..base()
            },
        ),
        (
            "big LSNs",
            SynthBackup {
                first_lsn: Lsn::new(u32::MAX, 99_999, 9_999),
                last_lsn: Lsn::new(u32::MAX, u32::MAX, u16::MAX),
                ..base()
            },
        ),
        (
            "position 7",
            SynthBackup {
                position: 7,
                ..base()
            },
        ),
    ];
    for (what, b) in cases {
        let out = bytes_of(std::slice::from_ref(&b));
        assert_eq!(out.len() as u64, b.file_len(), "{what}");
        let got = read_headers(Cursor::new(&out), p).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, vec![b.header(p)], "{what}");
        assert_eq!(got[0].complete, b.complete, "{what}");
    }
}

#[test]
fn several_sets_in_one_file() {
    let p = Path::new("noinit.bak");
    let a = base();
    let b = SynthBackup {
        position: 2,
        first_lsn: a.last_lsn,
        last_lsn: Lsn::new(41, 5, 1),
        seed: 12,
        backup_set_guid: Uuid::from_u128(2),
        ..base()
    };
    let c = SynthBackup {
        position: 3,
        first_lsn: b.last_lsn,
        last_lsn: b.last_lsn,
        log_bytes: 0,
        backup_set_guid: Uuid::from_u128(3),
        ..base()
    };
    let out = bytes_of(&[a.clone(), b.clone(), c.clone()]);
    let got = read_headers(Cursor::new(&out), p).unwrap();
    let want: Vec<_> = [&a, &b, &c].iter().map(|s| s.header(p)).collect();
    // BackupSize is computed as if each set were alone in the file.
    let strip = |v: &[logship::backup::BackupHeader]| {
        v.iter()
            .map(|h| {
                (
                    h.position,
                    h.first_lsn,
                    h.last_lsn,
                    h.backup_set_guid,
                    h.complete,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&got), strip(&want));

    // The last set still being written.
    let d = SynthBackup {
        position: 4,
        complete: false,
        backup_set_guid: Uuid::from_u128(4),
        ..base()
    };
    let out = bytes_of(&[a, b, c, d]);
    let got = read_headers(Cursor::new(&out), p).unwrap();
    assert_eq!(
        got.iter().map(|h| h.complete).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    assert_eq!(got[3].position, 4);
}

#[test]
fn share_with_every_case_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = ShareSpec::new(tmp.path(), "mgc");
    spec.logs = 8;
    spec.log_size = 16 * 1024;
    spec.gap_after = Some(2);
    spec.empty_after = Some(4);
    spec.duplicate = Some(5);
    spec.foreign = 2;
    spec.incomplete_last = true;
    spec.wrk = 1;
    spec.with_full = true;
    spec.full_size = 64 * 1024;
    let s = write_share(&spec).unwrap();

    let roles: HashMap<FileRole, usize> = s.files.iter().fold(HashMap::new(), |mut m, f| {
        *m.entry(f.role).or_default() += 1;
        m
    });
    let count = |r| roles.get(&r).copied().unwrap_or(0);
    assert_eq!(
        count(FileRole::Log),
        5,
        "8 slots less the gap, the empty and the incomplete one"
    );
    for r in [
        FileRole::EmptyLog,
        FileRole::Duplicate,
        FileRole::Incomplete,
        FileRole::Wrk,
        FileRole::Full,
        FileRole::Differential,
    ] {
        assert_eq!(count(r), 1, "{r:?}");
    }
    assert_eq!(count(FileRole::Foreign), 2);
    assert_eq!(s.missing.len(), 1);

    let mut on_disk: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    on_disk.sort();
    let mut listed: Vec<_> = s.files.iter().map(|f| f.path.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "no temporary file left behind");
    assert_eq!(s.bytes, s.files.iter().map(|f| f.bytes).sum::<u64>());

    for f in &s.files {
        assert_eq!(std::fs::metadata(&f.path).unwrap().len(), f.bytes);
        let got = read_file(&f.path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, vec![f.header.clone()], "{}", f.path.display());
        let whole = check_whole(&f.path, &mut |_, _| {});
        match f.role {
            FileRole::Incomplete | FileRole::Wrk => {
                assert!(
                    matches!(whole.unwrap_err().kind, ReadErrorKind::Truncated { .. }),
                    "{:?}",
                    f.role
                )
            }
            _ => assert_eq!(whole.unwrap(), got),
        }
    }

    // The chain: the logs of mgc in name order continue each other, except across the gap.
    let mut logs: Vec<_> = s
        .files
        .iter()
        .filter(|f| {
            matches!(
                f.role,
                FileRole::Log | FileRole::EmptyLog | FileRole::Incomplete
            )
        })
        .collect();
    logs.sort_by(|a, b| a.path.cmp(&b.path));
    let (gap_from, gap_to) = s.missing[0];
    for w in logs.windows(2) {
        let (a, b) = (&w[0].header, &w[1].header);
        if a.last_lsn == gap_from {
            assert_eq!(b.first_lsn, gap_to);
        } else {
            assert_eq!(
                b.first_lsn,
                a.last_lsn,
                "{} follows {}",
                b.path.display(),
                a.path.display()
            );
        }
        assert!(a.backup_start_date < b.backup_start_date);
    }
    assert_eq!(logs[0].header.first_lsn, s.first_lsn);
    assert_eq!(logs.last().unwrap().header.last_lsn, s.last_lsn);
    let dup = s
        .files
        .iter()
        .find(|f| f.role == FileRole::Duplicate)
        .unwrap();
    assert_eq!(
        s.files
            .iter()
            .filter(|f| f.header.backup_set_guid == dup.header.backup_set_guid)
            .count(),
        2
    );
    assert!(s
        .files
        .iter()
        .filter(|f| f.role == FileRole::EmptyLog)
        .all(|f| f.header.is_empty_log()));
    assert!(s
        .files
        .iter()
        .filter(|f| f.role == FileRole::Foreign)
        .all(|f| f.header.database_name == "mgc_other"));

    // Full and differential: restoring the full then log 1 continues the chain.
    let full = &s
        .files
        .iter()
        .find(|f| f.role == FileRole::Full)
        .unwrap()
        .header;
    let diff = &s
        .files
        .iter()
        .find(|f| f.role == FileRole::Differential)
        .unwrap()
        .header;
    let first = &logs[0].header;
    assert!(first.first_lsn <= full.last_lsn && full.last_lsn < first.last_lsn);
    assert_eq!(diff.differential_base_lsn, Some(full.checkpoint_lsn));
    assert_eq!(diff.differential_base_guid, Some(full.backup_set_guid));
    assert!(logs
        .iter()
        .all(|l| l.header.database_backup_lsn == full.checkpoint_lsn));
    assert!(s
        .files
        .iter()
        .any(|f| f.path.to_string_lossy().ends_with(".wrk")));
}

#[test]
fn a_seed_gives_the_same_share() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hash = |dir: &Path| {
        let mut spec = ShareSpec::new(dir, "db");
        spec.logs = 3;
        spec.log_size = 8192;
        spec.with_full = true;
        spec.full_size = 8192;
        spec.seed = 99;
        let s = write_share(&spec).unwrap();
        s.files
            .iter()
            .map(|f| {
                (
                    f.path.file_name().unwrap().to_owned(),
                    blake3::hash(&std::fs::read(&f.path).unwrap()),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(hash(a.path()), hash(b.path()));
}

#[test]
fn invalid_share_specs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = ShareSpec::new(tmp.path(), "db");
    spec.logs = 3;
    for (f, what) in [
        (
            (|s: &mut ShareSpec| s.gap_after = Some(3)) as fn(&mut ShareSpec),
            "--gap-after",
        ),
        (|s| s.empty_after = Some(0), "--empty-after"),
        (|s| s.duplicate = Some(4), "--duplicate"),
        (|s| s.logs = 0, "at least one"),
        (|s| s.database = "a/b".into(), "cannot name files"),
    ] {
        let mut bad = spec.clone();
        f(&mut bad);
        let e = write_share(&bad).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
}

fn date() -> impl Strategy<Value = MtfDate> {
    (1u16..=9999, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60)
        .prop_map(|(y, mo, da, h, mi, s)| d(y, mo, da, h, mi, s))
}

fn lsn() -> impl Strategy<Value = Lsn> {
    (any::<u32>(), any::<u32>(), any::<u16>()).prop_map(|(v, b, s)| Lsn::new(v, b, s))
}

fn backup_type() -> impl Strategy<Value = BackupType> {
    prop::sample::select(vec![
        BackupType::Full,
        BackupType::Log,
        BackupType::Differential,
        BackupType::File,
        BackupType::DifferentialFile,
        BackupType::Partial,
        BackupType::DifferentialPartial,
    ])
}

prop_compose! {
    fn synth()(
        names in ("\\PC{1,40}", "\\PC{1,40}"),
        lsns in (lsn(), lsn(), lsn(), lsn(), lsn()),
        dates in (date(), date(), date()),
        backup_type in backup_type(),
        version in (10u8..=16, any::<u8>(), any::<u16>(), any::<u16>()),
        sizes in (0u64..100_000, 0u64..100_000),
        guids in (any::<u128>(), any::<u128>(), any::<u128>(), any::<u128>()),
        misc in (any::<u32>(), any::<u32>(), 1u16..=4, any::<u16>(), any::<bool>(), any::<u64>()),
    ) -> SynthBackup {
        let (first, last) = if lsns.0 <= lsns.1 { (lsns.0, lsns.1) } else { (lsns.1, lsns.0) };
        SynthBackup {
            database_name: names.0,
            server_name: names.1,
            backup_type,
            position: misc.3,
            first_lsn: first,
            last_lsn: last,
            checkpoint_lsn: lsns.2,
            database_backup_lsn: lsns.3,
            differential_base_lsn: lsns.4,
            differential_base_guid: Uuid::from_u128(guids.3),
            database_creation_date: dates.0,
            backup_start_date: dates.1,
            backup_finish_date: dates.2,
            software_version: SoftwareVersion { major: version.0, minor: version.1, build: version.2 },
            database_version: version.3,
            unicode_locale_id: misc.0,
            unicode_comparison_style: misc.1,
            backup_set_guid: Uuid::from_u128(guids.0),
            media_set_guid: Uuid::from_u128(guids.1),
            last_full_guid: Uuid::from_u128(guids.2),
            family_count: misc.2,
            family_sequence: 1 + (misc.3 % misc.2),
            log_bytes: sizes.0,
            data_bytes: sizes.1,
            seed: misc.5,
            complete: misc.4,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_fields_round_trip(b in synth()) {
        let p = Path::new("prop.trn");
        let out = bytes_of(std::slice::from_ref(&b));
        prop_assert_eq!(out.len() as u64, b.file_len());
        let got = read_headers(Cursor::new(&out), p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, vec![b.header(p)]);
    }
}
