//! RESTORE HEADERONLY, RESTORE LOG and RESTORE DATABASE ... WITH RECOVERY with SQL Server's
//! checks, messages and order: state, exclusive access, interrupted restores (4319), the device
//! (3201), the media (3241), the backup set (3135, 3154) and the chain (4305, 4326); then the
//! whole file is read at the configured throughput with 3211 messages sent as it goes, and the
//! new redo LSN is persisted before 4035/3014 and DONE go out.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backup::{BackupHeader, BackupType};
use crate::lsn::Lsn;

use super::engine::{msg, sessions_in, terminating, Done, Msg};
use super::server::{Conn, Stop};
use super::sql::RestoreOpts;
use super::state::{DbState, HistoryEntry};
use super::tds::tokens::{col, Cell, ColType as T, ResultSet};

/// How a RESTORE ended.
pub enum Outcome {
    Ok(Done),
    Err(Vec<Msg>),
    /// Cancelled by ATTENTION: rolled back, the answer is DONE with the attention flag.
    Attention,
    /// The connection is gone (client closed, KILL or the drop fault): nothing more is sent.
    Gone,
}

/// What the chain rules say about a log backup against the database's redo LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Apply,
    /// An empty log (FirstLSN == LastLSN) exactly at the redo point: accepted, changes nothing.
    EmptyAtRedo,
    TooRecent,
    TooEarly,
}

pub fn check_chain(first: Lsn, last: Lsn, redo: Lsn) -> Chain {
    if first == last && first == redo {
        Chain::EmptyAtRedo
    } else if first > redo {
        Chain::TooRecent
    } else if last <= redo {
        Chain::TooEarly
    } else {
        Chain::Apply
    }
}

fn too_recent(first: Lsn, redo: Lsn) -> Msg {
    msg(
        4305,
        1,
        16,
        format!(
            "The log in this backup set begins at LSN {}, which is too recent to apply to the database. \
             An earlier log backup that includes LSN {} can be restored.",
            first.to_decimal(),
            redo.to_decimal()
        ),
    )
}

fn too_early(last: Lsn, redo: Lsn) -> Msg {
    msg(
        4326,
        1,
        16,
        format!(
            "The log in this backup set terminates at LSN {}, which is too early to apply to the database. \
             A more recent log backup that includes LSN {} can be restored.",
            last.to_decimal(),
            redo.to_decimal()
        ),
    )
}

fn in_use() -> Msg {
    msg(
        3101,
        1,
        16,
        "Exclusive access could not be obtained because the database is in use.",
    )
}

fn cannot_open(path: &str, e: &std::io::Error) -> Msg {
    let os = match e.kind() {
        std::io::ErrorKind::NotFound => "2(The system cannot find the file specified.)".to_string(),
        std::io::ErrorKind::PermissionDenied => "5(Access is denied.)".to_string(),
        _ => format!("{}({e})", e.raw_os_error().unwrap_or(0)),
    };
    msg(
        3201,
        2,
        16,
        format!("Cannot open backup device '{path}'. Operating system error {os}."),
    )
}

fn bad_media(path: &str) -> Msg {
    msg(3241, 0, 16, format!("The media family on device '{path}' is incorrectly formed. SQL Server cannot process this media family."))
}

fn does_not_exist(db: &str) -> Msg {
    msg(
        3118,
        1,
        16,
        format!(
            "The database \"{db}\" does not exist. RESTORE can only create a database when restoring either a full backup or a file backup of the primary file."
        ),
    )
}

/// Opens and reads the headers of a backup device, as the server does first; with the device's
/// length. One blocking task for all of it: each hop to the blocking pool and back is two thread
/// wake-ups, and on a loaded machine each can wait for a time slice.
async fn open_headers(path: &str) -> Result<(Vec<BackupHeader>, u64), Msg> {
    let p = path.to_string();
    // A server reads the backups of its own version and older: no version is unknown to it.
    // The error: why a device that is not there cannot be opened (3201); None for one that is
    // there and cannot be read (damaged media, 3013).
    let res = tokio::task::spawn_blocking(move || {
        let len = std::fs::metadata(&p).map_err(Some)?.len();
        let f = std::fs::File::open(&p).map_err(|_| None)?;
        crate::backup::read_headers_any_version(f, Path::new(&p))
            .map(|h| (h, len))
            .map_err(|_| None)
    })
    .await;
    match res {
        Ok(Ok((h, len))) if !h.is_empty() => Ok((h, len)),
        Ok(Err(Some(e))) => Err(cannot_open(path, &e)),
        _ => Err(bad_media(path)),
    }
}

pub async fn header_only(conn: &mut Conn, path: &str) -> Outcome {
    let headers = match open_headers(path).await {
        Ok((h, _)) => h,
        Err(m) => return Outcome::Err(vec![m, terminating("RESTORE HEADERONLY")]),
    };
    let lsn = |l: Lsn| Cell::Numeric(l.to_decimal());
    let date =
        |d: Option<crate::backup::MtfDate>| d.map_or(Cell::Null, |d| Cell::Time(d.to_unix(), 0));
    let nv = T::NVarChar;
    let rs = ResultSet {
        columns: vec![
            col("BackupName", nv(128)),
            col("BackupDescription", nv(255)),
            col("BackupType", T::SmallInt),
            col("ExpirationDate", T::DateTime),
            col("Compressed", T::TinyInt),
            col("Position", T::SmallInt),
            col("DeviceType", T::TinyInt),
            col("UserName", nv(128)),
            col("ServerName", nv(128)),
            col("DatabaseName", nv(128)),
            col("DatabaseVersion", T::Int),
            col("DatabaseCreationDate", T::DateTime),
            col("BackupSize", T::Numeric(20)),
            col("FirstLSN", T::Numeric(25)),
            col("LastLSN", T::Numeric(25)),
            col("CheckpointLSN", T::Numeric(25)),
            col("DatabaseBackupLSN", T::Numeric(25)),
            col("BackupStartDate", T::DateTime),
            col("BackupFinishDate", T::DateTime),
            col("SortOrder", T::SmallInt),
            col("CodePage", T::SmallInt),
            col("UnicodeLocaleId", T::Int),
            col("UnicodeComparisonStyle", T::Int),
            col("CompatibilityLevel", T::TinyInt),
            col("SoftwareVendorId", T::Int),
            col("SoftwareVersionMajor", T::Int),
            col("SoftwareVersionMinor", T::Int),
            col("SoftwareVersionBuild", T::Int),
            col("MachineName", nv(128)),
            col("Flags", T::Int),
            col("BindingID", T::Guid),
            col("RecoveryForkID", T::Guid),
            col("Collation", nv(128)),
            col("FamilyGUID", T::Guid),
            col("HasBulkLoggedData", T::Bit),
            col("IsSnapshot", T::Bit),
            col("IsReadOnly", T::Bit),
            col("IsSingleUser", T::Bit),
            col("HasBackupChecksums", T::Bit),
            col("IsDamaged", T::Bit),
            col("BeginsLogChain", T::Bit),
            col("HasIncompleteMetaData", T::Bit),
            col("IsForceOffline", T::Bit),
            col("IsCopyOnly", T::Bit),
            col("FirstRecoveryForkID", T::Guid),
            col("ForkPointLSN", T::Numeric(25)),
            col("RecoveryModel", nv(60)),
            col("DifferentialBaseLSN", T::Numeric(25)),
            col("DifferentialBaseGUID", T::Guid),
            col("BackupTypeDescription", nv(60)),
            col("BackupSetGUID", T::Guid),
            col("CompressedBackupSize", T::BigInt),
            col("Containment", T::TinyInt),
        ],
        rows: headers
            .iter()
            .map(|h| {
                let machine = h
                    .server_name
                    .split('\\')
                    .next()
                    .unwrap_or(&h.server_name)
                    .to_string();
                vec![
                    Cell::Null,
                    Cell::Null,
                    Cell::Int(h.backup_type.code() as i64),
                    Cell::Null,
                    Cell::Int(0),
                    Cell::Int(h.position as i64),
                    Cell::Int(2),
                    Cell::Null,
                    h.server_name.clone().into(),
                    h.database_name.clone().into(),
                    Cell::Int(h.database_version as i64),
                    date(h.database_creation_date),
                    Cell::Numeric(h.backup_size as u128),
                    lsn(h.first_lsn),
                    lsn(h.last_lsn),
                    lsn(h.checkpoint_lsn),
                    lsn(h.database_backup_lsn),
                    date(h.backup_start_date),
                    date(h.backup_finish_date),
                    Cell::Int(52),
                    Cell::Int(0),
                    Cell::Int(h.unicode_locale_id as i64),
                    Cell::Int(h.unicode_comparison_style as i64),
                    Cell::Int(130),
                    Cell::Int(4608),
                    Cell::Int(h.software_version.major as i64),
                    Cell::Int(h.software_version.minor as i64),
                    Cell::Int(h.software_version.build as i64),
                    machine.into(),
                    Cell::Int(512),
                    Cell::Null,
                    Cell::Null,
                    "SQL_Latin1_General_CP1_CI_AS".into(),
                    Cell::Null,
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Bit(!h.complete),
                    Cell::Bit(false),
                    Cell::Bit(false),
                    Cell::Null,
                    Cell::Null,
                    "FULL".into(),
                    h.differential_base_lsn.map_or(Cell::Null, lsn),
                    h.differential_base_guid.map_or(Cell::Null, Cell::Guid),
                    match h.backup_type {
                        BackupType::Full => "Database",
                        BackupType::Log => "Transaction Log",
                        BackupType::Differential => "Database Differential",
                        BackupType::File => "File or filegroup",
                        BackupType::DifferentialFile => "Differential file",
                        BackupType::Partial => "Partial",
                        BackupType::DifferentialPartial => "Differential partial",
                    }
                    .into(),
                    Cell::Guid(h.backup_set_guid),
                    Cell::Int(h.backup_size as i64),
                    Cell::Int(0),
                ]
            })
            .collect(),
    };
    conn.tokens.result_set(&rs);
    Outcome::Ok(Done {
        rows: Some(rs.rows.len() as u64),
        select: true,
    })
}

/// Claims the database for one RESTORE; released on drop.
struct Busy(Arc<super::engine::Shared>, String);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut b = self.0.busy.lock().unwrap_or_else(|e| e.into_inner());
        b.retain(|d| !d.eq_ignore_ascii_case(&self.1));
    }
}

fn claim(conn: &Conn, db: &str) -> Option<Busy> {
    let mut b = conn.shared.busy.lock().unwrap_or_else(|e| e.into_inner());
    if b.iter().any(|d| d.eq_ignore_ascii_case(db)) {
        return None;
    }
    b.push(db.to_string());
    Some(Busy(Arc::clone(&conn.shared), db.to_string()))
}

/// The exclusive-access checks shared by RESTORE LOG and RESTORE DATABASE.
fn exclusive(conn: &Conn, db: &str) -> Result<Busy, Msg> {
    // Only a pending fault costs a state write.
    if conn.shared.state().faults.fail_restores_3101 > 0 {
        conn.shared.mutate(|st| {
            st.faults.fail_restores_3101 = st.faults.fail_restores_3101.saturating_sub(1)
        })?;
        return Err(in_use());
    }
    if conn.database.eq_ignore_ascii_case(db) {
        return Err(msg(3102, 1, 16, format!("RESTORE cannot process database '{db}' because it is in use by this session. It is recommended that the master database be used when performing this operation.")));
    }
    if !sessions_in(&conn.shared, db, conn.spid).is_empty() {
        return Err(in_use());
    }
    claim(conn, db).ok_or_else(in_use)
}

pub async fn recover(conn: &mut Conn, db: &str) -> Outcome {
    let fail = |m: Msg| Outcome::Err(vec![m, terminating("RESTORE DATABASE")]);
    let name = {
        let st = conn.shared.state();
        match st.db(db) {
            None => return fail(does_not_exist(db)),
            Some(d) if d.state == DbState::Online => {
                return fail(msg(
                    4306,
                    1,
                    16,
                    "The preceding restore operation did not specify WITH NORECOVERY or WITH STANDBY. \
                     Restart the restore sequence, specifying WITH NORECOVERY or WITH STANDBY for all but the final step.",
                ))
            }
            Some(d) => d.name.clone(),
        }
    };
    let start = Instant::now();
    let _busy = match exclusive(conn, &name) {
        Ok(b) => b,
        Err(m) => return fail(m),
    };
    let r = conn.shared.mutate(|st| {
        if let Some(d) = st.db_mut(&name) {
            d.state = DbState::Online;
            d.recovered_unix_ms = Some(super::state::unix_ms());
            d.redo_start_lsn = None;
            d.redo_start_fork_guid = None;
            d.standby_file = None;
            d.interrupted = None;
        }
    });
    if let Err(m) = r {
        return fail(m);
    }
    let secs = start.elapsed().as_secs_f64();
    conn.info(
        3014,
        1,
        &format!(
            "RESTORE DATABASE successfully processed 0 pages in {secs:.3} seconds (0.000 MB/sec)."
        ),
    );
    Outcome::Ok(Done {
        rows: None,
        select: false,
    })
}

pub async fn restore_log(conn: &mut Conn, db: &str, path: &str, opts: &RestoreOpts) -> Outcome {
    // The modelled restore time runs from here: checking the device and marking the database
    // are part of it, as a server's fixed costs are part of its measured restore rate.
    let started = Instant::now();
    let fail = |m: Msg| Outcome::Err(vec![m, terminating("RESTORE LOG")]);
    let (name, redo, prev_interrupted) = {
        let st = conn.shared.state();
        match st.db(db) {
            None => return fail(does_not_exist(db)),
            Some(d) if d.state == DbState::Online || d.redo_start_lsn.is_none() => {
                return fail(msg(
                    3117,
                    4,
                    16,
                    "The log or differential backup cannot be restored because no files are ready to rollforward.",
                ))
            }
            Some(d) => (d.name.clone(), d.redo_start_lsn.unwrap_or_default(), d.interrupted.clone()),
        }
    };
    let _busy = match exclusive(conn, &name) {
        Ok(b) => b,
        Err(m) => return fail(m),
    };
    if let (Some(file), false) = (&prev_interrupted, opts.restart) {
        return fail(msg(
            4319,
            1,
            16,
            format!(
                "A previous restore operation was interrupted and did not complete processing on file '{file}'. \
                 Either restore the backup set that was interrupted or restart the restore sequence."
            ),
        ));
    }
    let (headers, total) = match open_headers(path).await {
        Ok(h) => h,
        Err(m) => return fail(m),
    };
    let file = opts.file.unwrap_or(1);
    let Some(h) = headers.iter().find(|h| h.position as i64 == file).cloned() else {
        return fail(msg(
            4038,
            1,
            16,
            format!("Cannot find file ID {file} on device '{path}'."),
        ));
    };
    if h.backup_type != BackupType::Log {
        let by = match h.backup_type {
            BackupType::Differential => "BACKUP DATABASE WITH DIFFERENTIAL",
            _ => "BACKUP DATABASE",
        };
        return fail(msg(3135, 2, 16, format!("The backup set in file '{path}' was created by {by} and cannot be used for this restore operation.")));
    }
    if !h.database_name.eq_ignore_ascii_case(&name) {
        return fail(msg(3154, 4, 16, format!("The backup set holds a backup of a database other than the existing '{name}' database.")));
    }
    let chain = check_chain(h.first_lsn, h.last_lsn, redo);
    match chain {
        Chain::TooRecent => return fail(too_recent(h.first_lsn, redo)),
        Chain::TooEarly => return fail(too_early(h.last_lsn, redo)),
        Chain::Apply | Chain::EmptyAtRedo => {}
    }

    // From here the database is being changed: a cut now leaves it "interrupted".
    let mark = conn.shared.mutate(|st| {
        if let Some(d) = st.db_mut(&name) {
            d.interrupted = Some(path.to_string());
        }
    });
    if let Err(m) = mark {
        return fail(m);
    }
    let read = read_with_progress(conn, path, total, opts.stats.unwrap_or(0), started).await;
    let rollback = |conn: &Conn| {
        let _ = conn.shared.mutate(|st| {
            if let Some(d) = st.db_mut(&name) {
                d.interrupted = prev_interrupted.clone();
            }
        });
    };
    let (total, restored) = match read {
        ReadEnd::Done(Ok(done)) => done,
        ReadEnd::Done(Err(())) => {
            rollback(conn);
            return fail(bad_media(path));
        }
        ReadEnd::Stopped(Stop::Attention) => {
            rollback(conn);
            return Outcome::Attention;
        }
        ReadEnd::Stopped(Stop::Gone) => return Outcome::Gone,
    };
    let pages = if chain == Chain::EmptyAtRedo {
        0
    } else {
        total.div_ceil(8192)
    };
    if let Some(undo) = &opts.standby {
        // SQL Server writes the undo file; the simulator leaves a marker where it can.
        if Path::new(undo).parent().is_some_and(|p| p.is_dir()) {
            let _ = std::fs::write(undo, b"logship sim standby undo file\n");
        }
    }
    let finished_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // What was restored, byte for byte (the structure check does not see a flipped byte inside a
    // page): tests compare it with the source backup. Hashed in the same pass as the read,
    // unless the scenario turned it off.
    let blake3 = restored.map(|h| h.to_hex().to_string());
    let entry = HistoryEntry {
        blake3,
        database: name.clone(),
        path: path.to_string(),
        backup_set_guid: h.backup_set_guid,
        first_lsn: h.first_lsn,
        last_lsn: h.last_lsn,
        finished_unix,
        pages,
    };
    let saved = conn.shared.mutate(|st| {
        if let Some(d) = st.db_mut(&name) {
            d.redo_start_lsn = Some(h.last_lsn.max(redo));
            d.state = if opts.standby.is_some() {
                DbState::Standby
            } else {
                DbState::Restoring
            };
            d.standby_file = opts.standby.clone();
            d.interrupted = None;
        }
        st.history.push(entry);
    });
    if let Err(m) = saved {
        return fail(m);
    }
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let mb = total as f64 / (1024.0 * 1024.0) / secs;
    conn.info(
        4035,
        1,
        &format!("Processed {pages} pages for database '{name}', file '{name}_log' on file 1."),
    );
    conn.info(3014, 1, &format!("RESTORE LOG successfully processed {pages} pages in {secs:.3} seconds ({mb:.3} MB/sec)."));
    Outcome::Ok(Done {
        rows: None,
        select: false,
    })
}

enum ReadEnd {
    /// Bytes read and their BLAKE3 (when the scenario hashes restores).
    Done(Result<(u64, Option<blake3::Hash>), ()>),
    Stopped(Stop),
}

/// Reads the whole file on a blocking thread while modelling the restore's pace: progress is
/// what has been read, held back to `restore_mib_per_s` when set, so a small file restores as
/// slowly as the model says and its 3211 messages (every `stats` percent) spread over that time.
/// Watches for ATTENTION, KILL, a closed connection and the drop fault. The model's clock runs
/// from `start` (the statement's start), so checking the device's headers, marking the database
/// and starting the reader are part of the modelled time, as a server's fixed costs are part of
/// its measured restore rate. `total` is the device's length when its headers were read.
async fn read_with_progress(
    conn: &mut Conn,
    path: &str,
    total: u64,
    stats: u32,
    start: Instant,
) -> ReadEnd {
    let rate = conn
        .shared
        .state()
        .restore_mib_per_s
        .filter(|r| *r > 0.0)
        .map(|r| r * 1024.0 * 1024.0);
    let drop_at = conn.shared.state().faults.drop_at_percent;
    let hash = conn.shared.state().hash_restores;
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut job = {
        let cancel = Arc::clone(&cancel);
        let p = path.to_string();
        tokio::task::spawn_blocking(move || {
            let mut progress = |done: u64, _total: u64| {
                let _ = tx.send(done);
            };
            let read = super::media::read_whole(Path::new(&p), &mut progress, &cancel, hash)
                .map(|(_, hash)| hash)
                .map_err(|_| ());
            // A read done before the model's end waits for it here, to the microsecond: the
            // async side's timers tick in whole milliseconds and added 1-1.5 ms to each
            // restore. Short sleeps, so a cancelled restore lets go of the database at once.
            if let (Ok(_), Some(r)) = (&read, rate) {
                let end = start + Duration::from_secs_f64(total as f64 / r);
                while !cancel.load(Ordering::Relaxed) {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(1)));
                }
            }
            read
        })
    };
    conn.set_request(Some(("RESTORE LOG".into(), 0.0)));
    let (mut actual, mut result, mut rx_open) =
        (0u64, None::<Result<Option<blake3::Hash>, ()>>, true);
    let mut next = stats.max(1);
    let mut stop = None;
    loop {
        // Wake when the model reaches what has been read (at most every 20 ms), not on a fixed
        // tick: a fixed 20 ms tick would add up to 20 ms to every throttled restore.
        let wait = match rate {
            Some(r) => {
                let modeled = start.elapsed().as_secs_f64() * r;
                let ahead = (actual as f64 - modeled) / r;
                // Caught up with the read: the next progress event wakes the loop.
                if ahead <= 0.0 {
                    Duration::from_millis(20)
                } else {
                    Duration::from_secs_f64(ahead.clamp(0.000_5, 0.020))
                }
            }
            None => Duration::from_millis(20),
        };
        tokio::select! {
            ev = rx.recv(), if rx_open => match ev {
                Some(d) => actual = actual.max(d.min(total)),
                None => rx_open = false,
            },
            r = &mut job, if result.is_none() => {
                let r = r.unwrap_or(Err(()));
                if r.is_ok() {
                    actual = total;
                }
                result = Some(r);
            }
            _ = tokio::time::sleep(wait) => {}
            s = conn.stopped() => stop = Some(s),
        }
        if stop.is_none() {
            if let Some(Err(())) = result {
                break;
            }
            let modeled = match rate {
                Some(r) => (start.elapsed().as_secs_f64() * r).min(actual as f64),
                None => actual as f64,
            };
            let pct = if total == 0 {
                100.0
            } else {
                modeled * 100.0 / total as f64
            };
            conn.set_request(Some(("RESTORE LOG".into(), pct as f32)));
            if stats > 0 {
                let mut sent = false;
                while (next as f64) <= pct && next <= 100 {
                    conn.info(3211, 1, &format!("{next} percent processed."));
                    next += stats;
                    sent = true;
                }
                if sent && conn.flush_partial().await.is_err() {
                    stop = Some(Stop::Gone);
                }
            }
            if let Some(at) = drop_at {
                if pct >= at as f64 && stop.is_none() {
                    let _ = conn.shared.mutate(|st| st.faults.drop_at_percent = None);
                    stop = Some(Stop::Gone);
                }
            }
            if stop.is_none() && result.is_some() && modeled >= total as f64 {
                break;
            }
        }
        if stop.is_some() {
            cancel.store(true, Ordering::Relaxed);
            break;
        }
    }
    conn.set_request(None);
    if let Some(s) = stop {
        // Not waiting for the reader: it sees `cancel` within a millisecond and ends on its own,
        // and the database is let go of now, as the session is.
        return ReadEnd::Stopped(s);
    }
    if result.is_none() {
        result = Some(job.await.unwrap_or(Err(())));
    }
    ReadEnd::Done(result.unwrap_or(Err(())).map(|hash| (total, hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_rules() {
        let l = |b| Lsn::new(10, b, 1);
        let cases = [
            (l(100), l(200), l(150), Chain::Apply),
            (l(100), l(200), l(100), Chain::Apply),
            (l(100), l(200), l(200), Chain::TooEarly),
            (l(100), l(200), l(250), Chain::TooEarly),
            (l(100), l(200), l(50), Chain::TooRecent),
            (l(100), l(100), l(100), Chain::EmptyAtRedo),
            (l(100), l(100), l(150), Chain::TooEarly),
            (l(100), l(100), l(50), Chain::TooRecent),
        ];
        for (first, last, redo, want) in cases {
            assert_eq!(
                check_chain(first, last, redo),
                want,
                "{first:?} {last:?} {redo:?}"
            );
        }
        assert!(too_recent(Lsn::new(39, 488, 71), Lsn::new(39, 400, 1))
            .text
            .contains("begins at LSN 39000000048800071"));
    }
}
