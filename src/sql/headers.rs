//! The header fallback: `RESTORE HEADERONLY` through the server, for the files the native reader
//! cannot read (compressed, encrypted, a version it has not been checked against).

use std::path::Path;

use tiberius::{ColumnData, Row};

use super::{guid_at, int_at, lsn_at, text_at, Conn, SqlError, Statement};
use crate::backup::{BackupHeader, BackupType, MtfDate, SoftwareVersion};

/// Column index by name (SQL Server's column names, any case).
fn col(row: &Row, name: &str) -> Option<usize> {
    row.columns()
        .iter()
        .position(|c| c.name().eq_ignore_ascii_case(name))
}

/// A `datetime` cell as the server-local date it holds.
fn date_at(row: &Row, idx: usize) -> Option<MtfDate> {
    match row.cells().nth(idx)?.1 {
        ColumnData::DateTime(Some(dt)) => {
            // Days since 1900-01-01 and 1/300 s since midnight.
            let secs = (dt.days() as i64 - 25_567) * 86_400 + dt.seconds_fragments() as i64 / 300;
            (secs >= 0).then(|| MtfDate::from_unix(secs as u64))
        }
        ColumnData::SmallDateTime(Some(dt)) => {
            let secs = (dt.days() as i64 - 25_567) * 86_400 + dt.seconds_fragments() as i64 * 60;
            (secs >= 0).then(|| MtfDate::from_unix(secs as u64))
        }
        _ => None,
    }
}

fn backup_type(code: i64) -> Option<BackupType> {
    Some(match code {
        1 => BackupType::Full,
        2 => BackupType::Log,
        4 => BackupType::File,
        5 => BackupType::Differential,
        6 => BackupType::DifferentialFile,
        7 => BackupType::Partial,
        8 => BackupType::DifferentialPartial,
        _ => return None,
    })
}

/// Reads a `RESTORE HEADERONLY` row into a header; `local` names the file in the result.
pub fn header_from_row(row: &Row, local: &Path) -> Result<BackupHeader, String> {
    let need = |name: &str| {
        col(row, name).ok_or_else(|| format!("RESTORE HEADERONLY returned no {name} column"))
    };
    let int = |name: &str| col(row, name).and_then(|i| int_at(row, i));
    let lsn = |name: &str| -> Result<crate::lsn::Lsn, String> {
        lsn_at(row, need(name)?).ok_or_else(|| format!("{name} is not an LSN"))
    };
    let code = int("BackupType").ok_or("no BackupType")?;
    let backup_type = backup_type(code).ok_or_else(|| format!("unknown BackupType {code}"))?;
    let diff = backup_type.is_differential();
    Ok(BackupHeader {
        path: local.to_path_buf(),
        position: int("Position").unwrap_or(1) as u16,
        database_name: text_at(row, need("DatabaseName")?).unwrap_or_default(),
        server_name: col(row, "ServerName")
            .and_then(|i| text_at(row, i))
            .unwrap_or_default(),
        backup_type,
        first_lsn: lsn("FirstLSN")?,
        last_lsn: lsn("LastLSN")?,
        checkpoint_lsn: lsn("CheckpointLSN")?,
        database_backup_lsn: lsn("DatabaseBackupLSN")?,
        differential_base_lsn: if diff {
            col(row, "DifferentialBaseLSN").and_then(|i| lsn_at(row, i))
        } else {
            None
        },
        differential_base_guid: if diff {
            col(row, "DifferentialBaseGUID").and_then(|i| guid_at(row, i))
        } else {
            None
        },
        database_creation_date: col(row, "DatabaseCreationDate").and_then(|i| date_at(row, i)),
        backup_start_date: col(row, "BackupStartDate").and_then(|i| date_at(row, i)),
        backup_finish_date: col(row, "BackupFinishDate").and_then(|i| date_at(row, i)),
        backup_size: int("BackupSize").unwrap_or(0).max(0) as u64,
        software_version: SoftwareVersion {
            major: int("SoftwareVersionMajor").unwrap_or(0) as u8,
            minor: int("SoftwareVersionMinor").unwrap_or(0) as u8,
            build: int("SoftwareVersionBuild").unwrap_or(0) as u16,
        },
        database_version: int("DatabaseVersion").unwrap_or(0) as u16,
        unicode_locale_id: int("UnicodeLocaleId").unwrap_or(0) as u32,
        unicode_comparison_style: int("UnicodeComparisonStyle").unwrap_or(0) as u32,
        complete: int("HasIncompleteMetaData").unwrap_or(0) == 0,
        backup_set_guid: col(row, "BackupSetGUID")
            .and_then(|i| guid_at(row, i))
            .ok_or("no BackupSetGUID")?,
        media_set_guid: col(row, "MediaSetGUID")
            .and_then(|i| guid_at(row, i))
            .unwrap_or_default(),
        family_count: int("FamilyCount").unwrap_or(1) as u16,
        family_sequence: int("FamilySequenceNumber").unwrap_or(1) as u16,
        last_full_guid: uuid::Uuid::nil(),
    })
}

/// `RESTORE HEADERONLY FROM DISK = @P1` on the server's path of a file; the headers name `local`.
pub async fn restore_headeronly(
    conn: &mut Conn,
    path_on_server: &str,
    local: &Path,
) -> Result<Vec<BackupHeader>, SqlError> {
    let stmt = Statement::headers_only(path_on_server);
    let rows = conn.query(&stmt).await?;
    rows.iter()
        .map(|r| header_from_row(r, local))
        .collect::<Result<_, _>>()
        .map_err(|message| SqlError::Protocol {
            context: stmt.sql.clone(),
            message,
        })
}
