//! The snapshot taken before anything changes: database state, redo LSN, log shipping facts.
//!
//! Removing log shipping deletes the msdb rows that say where the share and the copy folder
//! are, so they are read first and journaled (RUNBOOK.md, "Step 1 deletes the facts ...").

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{bool_at, guid_at, int_at, lsn_at, text_at, Conn, SqlError, Statement};
use crate::lsn::Lsn;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseState {
    pub name: String,
    /// `sys.databases.state_desc`: RESTORING, ONLINE, ...
    pub state_desc: String,
    pub is_in_standby: bool,
    /// `sys.master_files.redo_start_lsn` of file 1: NULL unless restoring or in standby.
    pub redo_start_lsn: Option<Lsn>,
    pub redo_start_fork_guid: Option<Uuid>,
}

impl DatabaseState {
    pub fn is_restoring(&self) -> bool {
        self.state_desc.eq_ignore_ascii_case("RESTORING") || self.is_in_standby
    }

    pub fn is_online(&self) -> bool {
        self.state_desc.eq_ignore_ascii_case("ONLINE") && !self.is_in_standby
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: Uuid,
    pub name: String,
    pub enabled: bool,
}

/// The secondary's log shipping configuration (msdb), as it was before the engine changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogShipping {
    pub secondary_id: Option<Uuid>,
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    /// Minutes.
    pub file_retention_period: Option<i64>,
    pub last_copied_file: Option<String>,
    pub copy_job_id: Option<Uuid>,
    pub restore_job_id: Option<Uuid>,
    /// 0 = NORECOVERY, 1 = STANDBY.
    pub restore_mode: i64,
    pub disconnect_users: bool,
    pub last_restored_file: Option<String>,
    /// Minutes.
    pub restore_delay: Option<i64>,
    pub copy_job: Option<Job>,
    pub restore_job: Option<Job>,
}

impl LogShipping {
    pub fn standby(&self) -> bool {
        self.restore_mode == 1
    }

    /// The jobs that race the engine while they are enabled.
    pub fn enabled_jobs(&self) -> Vec<&Job> {
        [&self.copy_job, &self.restore_job]
            .into_iter()
            .flatten()
            .filter(|j| j.enabled)
            .collect()
    }
}

/// Everything read before the first change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub server_name: Option<String>,
    pub product_version: Option<String>,
    pub database: Option<DatabaseState>,
    pub log_shipping: Option<LogShipping>,
}

/// Reads the database's state and redo LSN; `None` when the database does not exist.
pub async fn database_state(conn: &mut Conn, db: &str) -> Result<Option<DatabaseState>, SqlError> {
    let rows = conn.query(&Statement::database_state(db)).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut state = DatabaseState {
        name: text_at(row, 0).unwrap_or_else(|| db.to_string()),
        state_desc: text_at(row, 1).unwrap_or_default(),
        is_in_standby: bool_at(row, 2).unwrap_or(false),
        redo_start_lsn: None,
        redo_start_fork_guid: None,
    };
    let rows = conn.query(&Statement::redo_lsn(db)).await?;
    if let Some(row) = rows.first() {
        state.redo_start_lsn = lsn_at(row, 0);
        state.redo_start_fork_guid = guid_at(row, 1);
    }
    Ok(Some(state))
}

async fn job(conn: &mut Conn, id: Option<Uuid>) -> Result<Option<Job>, SqlError> {
    let Some(id) = id else { return Ok(None) };
    let rows = conn.query(&Statement::job(id)).await?;
    Ok(rows.first().map(|r| Job {
        job_id: guid_at(r, 0).unwrap_or(id),
        name: text_at(r, 1).unwrap_or_default(),
        enabled: bool_at(r, 2).unwrap_or(false),
    }))
}

/// Reads the log shipping rows for `db`; `None` when log shipping is not (or no longer) set up.
pub async fn log_shipping(conn: &mut Conn, db: &str) -> Result<Option<LogShipping>, SqlError> {
    let rows = conn.query(&Statement::log_shipping(db)).await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let mut ls = LogShipping {
        secondary_id: guid_at(r, 0),
        primary_server: text_at(r, 1).unwrap_or_default(),
        primary_database: text_at(r, 2).unwrap_or_default(),
        backup_source_directory: text_at(r, 3).unwrap_or_default(),
        backup_destination_directory: text_at(r, 4).unwrap_or_default(),
        file_retention_period: int_at(r, 5),
        last_copied_file: text_at(r, 6),
        copy_job_id: guid_at(r, 7),
        restore_job_id: guid_at(r, 8),
        restore_mode: int_at(r, 9).unwrap_or(0),
        disconnect_users: bool_at(r, 10).unwrap_or(false),
        last_restored_file: text_at(r, 11),
        restore_delay: int_at(r, 12),
        copy_job: None,
        restore_job: None,
    };
    ls.copy_job = job(conn, ls.copy_job_id).await?;
    ls.restore_job = job(conn, ls.restore_job_id).await?;
    Ok(Some(ls))
}

/// Takes the whole snapshot.
pub async fn take(conn: &mut Conn, db: &str) -> Result<Snapshot, SqlError> {
    let server_name = conn
        .query(&Statement::server_property("ServerName"))
        .await?
        .first()
        .and_then(|r| text_at(r, 0));
    let product_version = conn
        .query(&Statement::server_property("ProductVersion"))
        .await?
        .first()
        .and_then(|r| text_at(r, 0));
    Ok(Snapshot {
        server_name,
        product_version,
        database: database_state(conn, db).await?,
        log_shipping: log_shipping(conn, db).await?,
    })
}

/// The session ids connected to `db`, other than this connection.
pub async fn sessions(conn: &mut Conn, db: &str) -> Result<Vec<i32>, SqlError> {
    let rows = conn.query(&Statement::sessions(db)).await?;
    Ok(rows
        .iter()
        .filter_map(|r| int_at(r, 0))
        .map(|v| v as i32)
        .collect())
}
