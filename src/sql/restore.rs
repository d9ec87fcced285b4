//! Restores through SQL Server: one log at a time, with progress, and the error paths of
//! RUNBOOK.md (4326 already in, 4305 gap, 4319 restart, 3101 sessions, a lost connection).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, info_span, warn, Instrument};

use super::snapshot::{self, DatabaseState};
use super::{errno, int_at, Conn, Connector, RestoreMode, SqlError, Statement};
use crate::lsn::Lsn;

/// One log backup to restore, as the server sees it.
#[derive(Clone, Debug)]
pub struct LogToRestore {
    pub name: String,
    pub path_on_server: String,
    pub position: u16,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
}

/// How a restore ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// This call restored it.
    Restored,
    /// The database already had it (4326, or the redo LSN was past it after a reconnect).
    AlreadyIn,
}

/// Why a log could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("log {name} is too recent for the database (SQL Server 4305): no log covers LSN {redo}, it starts at {first}")]
    Gap {
        name: String,
        redo: String,
        first: Lsn,
        #[source]
        source: SqlError,
    },
    #[error("restoring {name}: sessions still in database {db} after {attempts} attempts to end them (SQL Server 3101)")]
    InUse {
        name: String,
        db: String,
        attempts: u32,
        #[source]
        source: SqlError,
    },
    #[error("restoring {name} (LSN {first} to {last})")]
    Failed {
        name: String,
        first: Lsn,
        last: Lsn,
        #[source]
        source: SqlError,
    },
    #[error(
        "log {name} (LSN {first} to {last}) is damaged: SQL Server cannot read it; put a good copy of \
         the primary's backup in its place (share and copy folder), then run again"
    )]
    Damaged {
        name: String,
        first: Lsn,
        last: Lsn,
        #[source]
        source: SqlError,
    },
    #[error("the connection to SQL Server was lost {attempts} times restoring {name}; giving up")]
    Lost {
        name: String,
        attempts: u32,
        #[source]
        source: SqlError,
    },
    #[error("database {db}: {message}")]
    State { db: String, message: String },
    #[error(transparent)]
    Sql(#[from] SqlError),
}

/// Bounds of the retry loops.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Reconnects after a lost connection, per statement.
    pub reconnects: u32,
    /// First backoff delay; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Rounds of ending sessions on 3101.
    pub in_use_rounds: u32,
    /// How often restore progress is polled.
    pub progress_every: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            reconnects: 8,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            in_use_rounds: 5,
            progress_every: Duration::from_millis(500),
        }
    }
}

/// Progress of the running restore, in percent.
pub type ProgressFn = Arc<dyn Fn(f32) + Send + Sync>;

/// The restoring side of the secondary: one connection for restores (no command timeout), one
/// for progress and state queries.
pub struct Restorer {
    connector: Connector,
    db: String,
    mode: RestoreMode,
    policy: RetryPolicy,
    restore_conn: Option<Conn>,
    query_conn: Option<Conn>,
}

/// Read queries may wait this long for each answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

impl Restorer {
    pub fn new(connector: Connector, db: &str, mode: RestoreMode, policy: RetryPolicy) -> Restorer {
        Restorer {
            connector,
            db: db.to_string(),
            mode,
            policy,
            restore_conn: None,
            query_conn: None,
        }
    }

    pub fn set_mode(&mut self, mode: RestoreMode) {
        self.mode = mode;
    }

    /// The RESTORE LOG statement for one backup set, as this restorer would send it.
    pub fn restore_statement(&self, path_on_server: &str, position: u16) -> Statement {
        Statement::restore_log(&self.db, path_on_server, position, &self.mode, false)
    }

    pub fn database(&self) -> &str {
        &self.db
    }

    async fn connect_with_backoff(&self, timeout: Option<Duration>) -> Result<Conn, SqlError> {
        let mut delay = self.policy.backoff;
        let mut attempt = 0;
        loop {
            match self.connector.connect(timeout).await {
                Ok(c) => return Ok(c),
                Err(e) if attempt < self.policy.reconnects && e.connection_lost() => {
                    attempt += 1;
                    warn!(error = %e, attempt, "connecting to SQL Server failed; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.policy.max_backoff);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The connection for state queries, opened on first use and after a loss.
    pub async fn query_conn(&mut self) -> Result<&mut Conn, SqlError> {
        if self.query_conn.is_none() {
            self.query_conn = Some(self.connect_with_backoff(Some(QUERY_TIMEOUT)).await?);
        }
        Ok(self.query_conn.as_mut().expect("just set"))
    }

    /// Runs a read on the query connection, reconnecting once if the connection was lost.
    pub async fn database_state(&mut self) -> Result<Option<DatabaseState>, SqlError> {
        let db = self.db.clone();
        for attempt in 0..2 {
            let conn = self.query_conn().await?;
            match snapshot::database_state(conn, &db).await {
                Err(e) if e.connection_lost() && attempt == 0 => self.query_conn = None,
                other => return other,
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    pub async fn redo_lsn(&mut self) -> Result<Option<Lsn>, SqlError> {
        Ok(self.database_state().await?.and_then(|s| s.redo_start_lsn))
    }

    /// Ends every other session in the database. Returns how many were killed.
    pub async fn end_sessions(&mut self) -> Result<usize, SqlError> {
        let db = self.db.clone();
        let conn = self.query_conn().await?;
        let ids = snapshot::sessions(conn, &db).await?;
        let mut killed = 0;
        for id in ids {
            match conn.execute(&Statement::kill(id)).await {
                Ok(()) => killed += 1,
                // Gone by itself between the list and the KILL.
                Err(e) if e.number() == Some(errno::NOT_ACTIVE_PROCESS) => {}
                Err(e) => return Err(e),
            }
        }
        if killed > 0 {
            info!(db = %db, killed, "ended sessions");
        }
        Ok(killed)
    }

    /// Runs `stmt` on the restore connection while polling the server for its progress.
    async fn run_restore(
        &mut self,
        stmt: &Statement,
        progress: &ProgressFn,
    ) -> Result<(), SqlError> {
        if self.restore_conn.is_none() {
            self.restore_conn = Some(self.connect_with_backoff(None).await?);
        }
        let conn = self.restore_conn.as_mut().expect("just set");
        let spid = conn.spid;
        let every = self.policy.progress_every;
        let restore = conn.execute(stmt);
        tokio::pin!(restore);
        // The first poll is one period in. (An interval's immediate first tick is not immediate:
        // the runtime's timer fires it on its next millisecond, and every restore would wait for it.)
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut last = -1.0f32;
        loop {
            tokio::select! {
                res = &mut restore => {
                    if res.is_ok() {
                        progress(100.0);
                    }
                    return res;
                }
                _ = ticker.tick() => {
                    // Progress is best effort: a failed poll must never fail the restore.
                    if self.query_conn.is_none() {
                        match self.connector.connect(Some(QUERY_TIMEOUT)).await {
                            Ok(c) => self.query_conn = Some(c),
                            Err(_) => continue,
                        }
                    }
                    let q = self.query_conn.as_mut().expect("just set");
                    match q.query(&Statement::request_progress(spid)).await {
                        Ok(rows) => {
                            if let Some(p) = rows.first().and_then(percent_of) {
                                if p > last {
                                    last = p;
                                    progress(p);
                                }
                            }
                        }
                        Err(e) if e.connection_lost() => self.query_conn = None,
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Restores one log, handling the error paths; never applies it twice.
    pub async fn restore_log(
        &mut self,
        log: &LogToRestore,
        progress: &ProgressFn,
    ) -> Result<Applied, RestoreError> {
        let span = info_span!("restore_log", name = %log.name, first = %log.first_lsn, last = %log.last_lsn);
        self.restore_log_inner(log, progress).instrument(span).await
    }

    async fn restore_log_inner(
        &mut self,
        log: &LogToRestore,
        progress: &ProgressFn,
    ) -> Result<Applied, RestoreError> {
        let mut restart = false;
        let mut lost = 0;
        let mut in_use = 0;
        loop {
            let stmt = Statement::restore_log(
                &self.db,
                &log.path_on_server,
                log.position,
                &self.mode,
                restart,
            );
            let err = match self.run_restore(&stmt, progress).await {
                Ok(()) => return Ok(Applied::Restored),
                Err(e) => e,
            };
            match err.number() {
                Some(errno::LOG_TOO_EARLY) => {
                    let redo = self.redo_lsn().await?;
                    if redo.is_some_and(|r| r >= log.last_lsn) {
                        info!("already in the database (4326)");
                        return Ok(Applied::AlreadyIn);
                    }
                    return Err(RestoreError::Failed {
                        name: log.name.clone(),
                        first: log.first_lsn,
                        last: log.last_lsn,
                        source: err,
                    });
                }
                Some(errno::LOG_TOO_RECENT) => {
                    let redo = self
                        .redo_lsn()
                        .await
                        .ok()
                        .flatten()
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "?".into());
                    return Err(RestoreError::Gap {
                        name: log.name.clone(),
                        redo,
                        first: log.first_lsn,
                        source: err,
                    });
                }
                // Running it again reads the same bytes: only a person can replace the file.
                Some(errno::DAMAGED_MEDIA | errno::WRONG_MEDIA) => {
                    return Err(RestoreError::Damaged {
                        name: log.name.clone(),
                        first: log.first_lsn,
                        last: log.last_lsn,
                        source: err,
                    });
                }
                Some(errno::RESTORE_INTERRUPTED) if !restart => {
                    warn!("a previous restore was interrupted (4319); restarting it");
                    restart = true;
                }
                Some(errno::IN_USE) => {
                    in_use += 1;
                    if in_use > self.policy.in_use_rounds {
                        return Err(RestoreError::InUse {
                            name: log.name.clone(),
                            db: self.db.clone(),
                            attempts: in_use - 1,
                            source: err,
                        });
                    }
                    self.end_sessions().await?;
                }
                _ if err.connection_lost() => {
                    self.restore_conn = None;
                    self.query_conn = None;
                    lost += 1;
                    if lost > self.policy.reconnects {
                        return Err(RestoreError::Lost {
                            name: log.name.clone(),
                            attempts: lost,
                            source: err,
                        });
                    }
                    warn!(error = %err, "connection lost during the restore; reconnecting");
                    // The restore may have finished before the connection went: ask the database.
                    let redo = self.redo_lsn().await?;
                    if redo.is_some_and(|r| r >= log.last_lsn) {
                        return Ok(Applied::Restored);
                    }
                }
                _ => {
                    return Err(RestoreError::Failed {
                        name: log.name.clone(),
                        first: log.first_lsn,
                        last: log.last_lsn,
                        source: err,
                    })
                }
            }
        }
    }

    /// Step 4: end the sessions and bring the database online, retrying 3101 a bounded number
    /// of times (sessions come back between KILL and RESTORE).
    pub async fn recover(&mut self) -> Result<(), RestoreError> {
        let stmt = Statement::recover(&self.db);
        let mut lost = 0;
        for round in 0..=self.policy.in_use_rounds {
            self.end_sessions().await?;
            let conn = match self.restore_conn.as_mut() {
                Some(c) => c,
                None => {
                    self.restore_conn = Some(self.connect_with_backoff(None).await?);
                    self.restore_conn.as_mut().expect("just set")
                }
            };
            match conn.execute(&stmt).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.number() == Some(errno::IN_USE) && round < self.policy.in_use_rounds =>
                {
                    warn!(
                        round,
                        "sessions came back before RESTORE WITH RECOVERY (3101); ending them again"
                    );
                }
                Err(e) if e.number() == Some(errno::IN_USE) => {
                    return Err(RestoreError::InUse {
                        name: "RESTORE WITH RECOVERY".into(),
                        db: self.db.clone(),
                        attempts: round + 1,
                        source: e,
                    })
                }
                Err(e) if e.connection_lost() && lost < self.policy.reconnects => {
                    lost += 1;
                    self.restore_conn = None;
                    self.query_conn = None;
                    if self.database_state().await?.is_some_and(|s| s.is_online()) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(RestoreError::Sql(e)),
            }
        }
        Err(RestoreError::State {
            db: self.db.clone(),
            message: "could not obtain exclusive access".into(),
        })
    }

    pub async fn close(self) {
        if let Some(c) = self.restore_conn {
            c.close().await;
        }
        if let Some(c) = self.query_conn {
            c.close().await;
        }
    }
}

fn percent_of(row: &tiberius::Row) -> Option<f32> {
    match row.cells().nth(2)?.1 {
        tiberius::ColumnData::F32(v) => *v,
        tiberius::ColumnData::F64(v) => v.map(|f| f as f32),
        _ => int_at(row, 2).map(|v| v as f32),
    }
}
