//! Table tests of the planner: one case per chain situation.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::*;
use crate::backup::{BackupHeader, BackupType, ReadError, ReadErrorKind, SoftwareVersion};
use crate::scan::{FileKind, ScannedFile};

const DB: &str = "mgc";

fn lsn(n: u32) -> Lsn {
    Lsn::new(40, n, 1)
}

fn header(
    path: &Path,
    db: &str,
    ty: BackupType,
    first: u32,
    last: u32,
    guid: u128,
) -> BackupHeader {
    BackupHeader {
        path: path.to_path_buf(),
        position: 1,
        database_name: db.to_string(),
        server_name: "PRIMARY".to_string(),
        backup_type: ty,
        first_lsn: lsn(first),
        last_lsn: lsn(last),
        checkpoint_lsn: lsn(first),
        database_backup_lsn: lsn(1),
        differential_base_lsn: None,
        differential_base_guid: None,
        database_creation_date: None,
        backup_start_date: None,
        backup_finish_date: None,
        backup_size: 1024,
        software_version: SoftwareVersion {
            major: 13,
            minor: 0,
            build: 5081,
        },
        database_version: 852,
        unicode_locale_id: 1033,
        unicode_comparison_style: 196_609,
        complete: true,
        backup_set_guid: Uuid::from_u128(guid),
        media_set_guid: Uuid::from_u128(guid + 1_000_000),
        family_count: 1,
        family_sequence: 1,
        last_full_guid: Uuid::nil(),
    }
}

fn file(dir: &str, name: &str, h: impl FnOnce(&Path) -> BackupHeader) -> ScannedFile {
    let path = PathBuf::from(dir).join(name);
    let header = h(&path);
    ScannedFile {
        kind: FileKind::of(&path),
        size: 1000,
        modified: None,
        headers: Ok(vec![header]),
        path,
    }
}

/// A log backup in the share, `first..last`, with a GUID derived from the range.
fn log(name: &str, first: u32, last: u32) -> ScannedFile {
    file("share", name, |p| {
        header(
            p,
            DB,
            BackupType::Log,
            first,
            last,
            (first as u128) << 32 | last as u128,
        )
    })
}

fn copied(name: &str, first: u32, last: u32) -> ScannedFile {
    file("copy", name, |p| {
        header(
            p,
            DB,
            BackupType::Log,
            first,
            last,
            (first as u128) << 32 | last as u128,
        )
    })
}

fn run(redo: Option<u32>, source: &[ScannedFile], dest: &[ScannedFile]) -> Plan {
    plan(&PlanInput {
        database: DB,
        redo_lsn: redo.map(lsn),
        dest_dir: Path::new("copy"),
        source,
        dest,
    })
}

fn applied(p: &Plan) -> Vec<&str> {
    p.to_apply.iter().map(|l| l.name.as_str()).collect()
}

fn reasons(p: &Plan) -> Vec<(String, SkipReason)> {
    p.skipped
        .iter()
        .map(|s| {
            (
                s.path.file_name().unwrap().to_string_lossy().into_owned(),
                s.reason,
            )
        })
        .collect()
}

fn chain() -> Vec<ScannedFile> {
    vec![
        log("a.trn", 10, 20),
        log("b.trn", 20, 30),
        log("c.trn", 30, 40),
    ]
}

#[test]
fn redo_inside_a_log_starts_with_that_log() {
    let p = run(Some(15), &chain(), &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
    assert_eq!(p.final_lsn, Some(lsn(40)));
    assert!(p.gaps.is_empty() && !p.chain_broken());
    assert_eq!(p.to_copy.len(), 3);
    assert_eq!(p.to_copy[0].dest, Path::new("copy").join("a.trn"));
}

#[test]
fn redo_equal_to_last_lsn_means_applied() {
    let p = run(Some(20), &chain(), &[]);
    assert_eq!(applied(&p), ["b.trn", "c.trn"]);
    assert_eq!(
        reasons(&p),
        [("a.trn".to_string(), SkipReason::AlreadyApplied)]
    );
}

#[test]
fn redo_equal_to_first_lsn_applies_that_log() {
    let p = run(Some(10), &chain(), &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
}

#[test]
fn redo_before_the_first_log_is_a_gap() {
    let p = run(Some(5), &chain(), &[]);
    assert!(p.to_apply.is_empty());
    assert_eq!(p.gaps.len(), 1);
    assert_eq!((p.gaps[0].from_lsn, p.gaps[0].to_lsn), (lsn(5), lsn(10)));
    assert_eq!(p.gaps[0].before, None);
    assert_eq!(p.gaps[0].after, "a.trn");
    assert!(p.chain_broken());
    assert!(reasons(&p).iter().all(|(_, r)| *r == SkipReason::AfterGap));
    assert_eq!(p.final_lsn, Some(lsn(5)));
}

#[test]
fn redo_after_the_last_log_applies_nothing() {
    let p = run(Some(45), &chain(), &[]);
    assert!(p.to_apply.is_empty() && p.to_copy.is_empty() && p.gaps.is_empty());
    assert_eq!(p.skipped.len(), 3);
    assert!(reasons(&p)
        .iter()
        .all(|(_, r)| *r == SkipReason::AlreadyApplied));
    assert_eq!(p.final_lsn, Some(lsn(45)));
}

#[test]
fn empty_log_between_two_is_skipped_without_breaking_the_chain() {
    let src = [
        log("a.trn", 10, 20),
        log("e.trn", 20, 20),
        log("b.trn", 20, 30),
    ];
    let p = run(Some(10), &src, &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn"]);
    assert_eq!(reasons(&p), [("e.trn".to_string(), SkipReason::Empty)]);
}

#[test]
fn same_backup_under_two_names_is_one_backup() {
    let mut src = chain();
    src.push(file("share", "b_copy.trn", |p| {
        header(p, DB, BackupType::Log, 20, 30, 20u128 << 32 | 30)
    }));
    let p = run(Some(10), &src, &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
    assert_eq!(
        reasons(&p),
        [("b_copy.trn".to_string(), SkipReason::Duplicate)]
    );
}

#[test]
fn two_logs_with_the_same_range_are_one() {
    let mut src = chain();
    src.push(file("share", "z.trn", |p| {
        header(p, DB, BackupType::Log, 20, 30, 999)
    }));
    let p = run(Some(10), &src, &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
    assert_eq!(reasons(&p), [("z.trn".to_string(), SkipReason::Duplicate)]);
}

#[test]
fn gap_in_the_middle_stops_the_chain_and_names_both_sides() {
    let src = [
        log("a.trn", 10, 20),
        log("c.trn", 30, 40),
        log("d.trn", 40, 50),
    ];
    let p = run(Some(12), &src, &[]);
    assert_eq!(applied(&p), ["a.trn"]);
    assert_eq!(
        p.gaps,
        [Gap {
            from_lsn: lsn(20),
            to_lsn: lsn(30),
            before: Some("a.trn".into()),
            after: "c.trn".into()
        }]
    );
    assert_eq!(
        reasons(&p),
        [
            ("c.trn".to_string(), SkipReason::AfterGap),
            ("d.trn".to_string(), SkipReason::AfterGap)
        ]
    );
    assert_eq!(p.final_lsn, Some(lsn(20)));
    assert_eq!(p.to_copy.len(), 1);
}

#[test]
fn files_that_are_not_logs_of_the_database_are_skipped_with_reasons() {
    let mut src = chain();
    src.push(file("share", "other.trn", |p| {
        header(p, "mgccomp", BackupType::Log, 20, 30, 7)
    }));
    src.push(file("share", "full.bak", |p| {
        header(p, DB, BackupType::Full, 5, 9, 8)
    }));
    src.push(file("share", "diff.bak", |p| {
        header(p, DB, BackupType::Differential, 25, 26, 9)
    }));
    src.push(file("share", "partial.trn", |p| {
        let mut h = header(p, DB, BackupType::Log, 40, 50, 10);
        h.complete = false;
        h
    }));
    src.push(file("share", "mgc_20240101.wrk", |p| {
        header(p, DB, BackupType::Log, 40, 50, 11)
    }));
    let bad = PathBuf::from("share/junk.trn");
    src.push(ScannedFile {
        kind: FileKind::Backup,
        size: 3,
        modified: None,
        headers: Err(ReadError {
            path: bad.clone(),
            kind: ReadErrorKind::NotMtf,
        }),
        path: bad,
    });
    let p = run(Some(10), &src, &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
    let mut got = reasons(&p);
    got.sort();
    let mut want = vec![
        ("diff.bak".to_string(), SkipReason::NotALog),
        ("full.bak".to_string(), SkipReason::NotALog),
        ("junk.trn".to_string(), SkipReason::Unreadable),
        ("mgc_20240101.wrk".to_string(), SkipReason::InFlight),
        ("other.trn".to_string(), SkipReason::OtherDatabase),
        ("partial.trn".to_string(), SkipReason::Incomplete),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn database_names_compare_case_insensitively() {
    let src = [file("share", "a.trn", |p| {
        header(p, "MGC", BackupType::Log, 10, 20, 1)
    })];
    assert_eq!(applied(&run(Some(10), &src, &[])), ["a.trn"]);
}

#[test]
fn copied_logs_are_applied_from_the_copy_folder_and_not_copied_again() {
    let dest = [copied("a.trn", 10, 20), copied("b.trn", 20, 30)];
    let p = run(Some(15), &chain(), &dest);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
    assert!(p.to_apply[0].copied && p.to_apply[1].copied && !p.to_apply[2].copied);
    assert_eq!(p.to_apply[0].source, Some(PathBuf::from("share/a.trn")));
    assert_eq!(
        p.to_copy
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["c.trn"]
    );
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
}

#[test]
fn a_copy_whose_source_was_deleted_by_retention_is_still_applied() {
    let dest = [copied("a.trn", 10, 20)];
    let src = [log("b.trn", 20, 30)];
    let p = run(Some(10), &src, &dest);
    assert_eq!(applied(&p), ["a.trn", "b.trn"]);
    assert_eq!(p.to_apply[0].source, None);
}

#[test]
fn without_a_redo_lsn_the_chain_starts_at_the_oldest_log() {
    let p = run(None, &chain(), &[]);
    assert_eq!(applied(&p), ["a.trn", "b.trn", "c.trn"]);
    assert_eq!(p.final_lsn, Some(lsn(40)));
}

#[test]
fn a_stale_overlapping_log_is_not_in_the_chain() {
    let mut src = chain();
    src.push(log("x.trn", 12, 25));
    let p = run(Some(15), &src, &[]);
    // x covers 15 too and ends later than a; it wins, and a (ending at 20) no longer continues.
    assert_eq!(applied(&p)[0], "x.trn");
    assert!(reasons(&p).contains(&("a.trn".to_string(), SkipReason::NotInChain)));
}

#[test]
fn a_name_used_by_another_set_in_the_copy_folder_is_a_conflict() {
    let dest = [file("copy", "b.trn", |p| {
        header(p, DB, BackupType::Log, 70, 80, 77)
    })];
    let p = run(Some(15), &chain(), &dest);
    assert!(reasons(&p).contains(&("b.trn".to_string(), SkipReason::NameConflict)));
}

#[test]
fn out_of_order_names_are_ordered_by_lsn() {
    let src = [
        log("z.trn", 10, 20),
        log("a.trn", 30, 40),
        log("m.trn", 20, 30),
    ];
    assert_eq!(
        applied(&run(Some(10), &src, &[])),
        ["z.trn", "m.trn", "a.trn"]
    );
}
