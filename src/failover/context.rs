//! What the steps share: settings, the SQL restorer, the chat pool, the journal, progress.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::catchup::{self, CatchupError};
use crate::chat::{ChatError, ChatPool, ChatSettings};
use crate::journal::{Journal, JournalError};
use crate::lsn::Lsn;
use crate::progress::Progress;
use crate::sql::restore::{RestoreError, Restorer};
use crate::sql::SqlError;

/// The failover's settings, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub catchup: catchup::Settings,
    pub chat: ChatSettings,
    /// The data center of the new primary database.
    pub database_site: Option<String>,
    pub server_sites: BTreeMap<String, String>,
    /// Accept active servers outside the database's site (a low-latency link).
    pub allow_remote_site: bool,
    /// Bring the database online although a gap stops the chain (data loss, explicit).
    pub accept_gap: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("preflight: {0}")]
    Preflight(String),
    #[error(
        "the log chain is broken: no log covers LSN {from} (the next log, {after}, starts at {to}); \
         find the missing log backup, or pass --accept-gap to fail over without it (data loss)"
    )]
    ChainBroken { from: Lsn, to: Lsn, after: String },
    #[error(
        "log backups that cannot be read: {files}; one may be a log the database needs. Put a good \
         copy of the primary's backup in its place (or remove the file if it is not one), or pass \
         --accept-gap to fail over without it (data loss)"
    )]
    DamagedLogs { files: String },
    #[error("database {db}: {message}")]
    Database { db: String, message: String },
    #[error("interrupted; run the same command again to resume")]
    Cancelled,
    #[error(transparent)]
    Catchup(#[from] CatchupError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Everything a step may use.
pub struct Context {
    pub settings: Settings,
    pub restorer: Restorer,
    pub chat: Arc<dyn ChatPool + Send + Sync>,
    pub journal: Journal,
    pub progress: Arc<Progress>,
    pub cancel: Arc<AtomicBool>,
    pub what_if: bool,
    /// Print step lines on stdout (off with `--json`).
    pub verbose_out: bool,
    pub catchup_report: Option<catchup::Report>,
}

impl Context {
    /// A line for the operator.
    pub fn say(&self, line: &str) {
        if self.verbose_out {
            println!("{line}");
        }
    }

    /// Runs a chat pool call on a blocking thread (the shell is a child process).
    pub async fn chat<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ChatPool) -> Result<T, ChatError> + Send + 'static,
    ) -> Result<T, FailoverError> {
        let pool = self.chat.clone();
        let r = tokio::task::spawn_blocking(move || f(pool.as_ref()))
            .await
            .expect("chat thread");
        Ok(r?)
    }
}
