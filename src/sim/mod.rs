//! The simulated secondary SQL Server: a TDS 7.4 server over TCP with the behaviour of a
//! log-shipping secondary (RUNBOOK.md), its state kept in a folder.
//!
//! # Protocol
//! PRELOGIN (answers ENCRYPTION = NOT_SUP), LOGIN7 with SQL authentication (wrong login or
//! password: 18456 class 14; a database that cannot be opened: 4060), LOGINACK + ENVCHANGE
//! (database, collation, language, packet size) + DONE; SQL batches; RPC `sp_executesql` (id 10
//! or by name) with typed parameters; messages reassembled from packets (at most
//! [`tds::packet::MAX_MESSAGE`] bytes) and answers split at the negotiated packet size;
//! ATTENTION (a running RESTORE is rolled back; the answer is DONE with the attention flag).
//!
//! # Statements
//! Matched case-insensitively, whitespace- and comment-tolerant, with `[names]`, `N'..'`
//! literals (`''` escapes), `@P1`-style parameters, optional `master.dbo.`/`msdb.dbo.` prefixes,
//! several statements separated by `;`:
//! - `SELECT @@VERSION`, `SELECT @@SPID`, `SELECT SERVERPROPERTY('ProductVersion' | 'ServerName'
//!   | 'MachineName' | 'Edition' | 'ProductLevel' | 'EngineEdition')`, `SELECT <integer>`,
//!   `SELECT GETDATE()` / `GETUTCDATE()` (datetime), `SYSDATETIME()` / `SYSUTCDATETIME()` (datetime2; the
//!   simulated server's clock is UTC)
//! - `SET ...` (accepted, no effect), `USE db`
//! - `SELECT name, state_desc, is_in_standby FROM sys.databases [WHERE name = x]`,
//!   `SELECT * FROM sys.databases [WHERE name = x]`
//! - `SELECT redo_start_lsn, redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(x) AND file_id = 1`
//! - `SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(x) AND session_id <> @@SPID`
//! - `SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = n`
//! - `KILL n` (6106 for an unknown id, 6104 for one's own), `[EXEC] sp_who2`
//! - the msdb join of `log_shipping_secondary` and `log_shipping_secondary_databases` the engine
//!   sends (see `sql::LS_JOIN`), `SELECT * FROM msdb.dbo.log_shipping_secondary`,
//!   `..._secondary_databases`, `msdb.dbo.log_shipping_monitor_secondary`
//! - `SELECT job_id, name, enabled FROM msdb.dbo.sysjobs WHERE job_id = x`,
//!   `EXEC msdb.dbo.sp_update_job @job_id = x, @enabled = 0|1` (14262 for an unknown job)
//! - `EXEC [master.dbo.]sp_delete_log_shipping_secondary_database [@secondary_database =] x`:
//!   removes the database's row and, when it was the last of its secondary id, the secondary row
//!   and its copy and restore jobs. A database without log shipping: success, nothing changed
//!   (the documented behaviour could not be confirmed; this is the lenient choice).
//! - `RESTORE HEADERONLY FROM DISK = x`
//! - `RESTORE LOG db FROM DISK = x [WITH [FILE = n,] NORECOVERY | STANDBY = x [, STATS [= n]] [, RESTART]]`
//! - `RESTORE DATABASE db WITH RECOVERY`
//!
//! Anything else: error 102 (class 15) "Incorrect syntax near ...", naming the statement.
//! RPC by name to `sp_delete_log_shipping_secondary_database` or `sp_update_job` (named or
//! positional parameters) acts like the EXEC forms; any other procedure: 2812.
//!
//! # RESTORE
//! Checks, in SQL Server's order: the database (3118 missing, 3117 not restoring), exclusive
//! access (3101: user sessions, another RESTORE, or the injected fault; 3102 own session), an
//! interrupted restore (4319 unless RESTART), the device (3201), the media (3241), the set
//! (4038 no such FILE, 3135 not a log, 3154 other database) and the chain (4305, 4326; an
//! empty log exactly at the redo LSN is accepted and changes nothing). Every failure is followed
//! by 3013. Then the whole file is read through `backup::check_whole` (3241 when damaged) at
//! the modelled pace (`restore_mib_per_s`), sending 3211 every STATS percent as it goes, and
//! hashed in the same pass for the history (unless `hash_restores` is off, as benchmarks set it);
//! the new redo LSN and the history entry are written to disk before 4035, 3014 and DONE.
//!
//! # Simplifications
//! `SERVERPROPERTY` answers nvarchar(128) rather than sql_variant. Transactions are
//! acknowledged, not simulated. Sessions that reconnect after KILL come back
//! after `reconnect_after_ms`, also across a restart of the simulator. ATTENTION during a
//! RESTORE rolls it back cleanly (not "interrupted"); a dropped connection or a killed
//! simulator leaves it interrupted (4319 until `WITH RESTART`).

pub mod chat_shell;
pub mod engine;
pub mod media;
pub mod msdb;
pub mod ps_eval;
pub mod ps_parse;
pub mod restore;
pub mod server;
pub mod sql;
pub mod state;
pub mod tds;

use std::future::Future;
use std::path::PathBuf;

pub use state::{init, Scenario, SimState};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the state in `state_dir` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state_dir: PathBuf,
    shutdown: impl Future,
) -> Result<(), SimError> {
    let shared = engine::Shared::open(state_dir)?;
    server::serve(listener, shared, shutdown).await?;
    Ok(())
}
