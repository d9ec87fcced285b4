//! The SQL Server side: tiberius connection, statements, snapshot, restores, error mapping.

mod conn;
pub mod headers;
pub mod quote;
pub mod restore;
pub mod snapshot;
pub mod stmt;

pub use conn::{bool_at, guid_at, int_at, lsn_at, read_password, text_at, Conn, Connector};
pub use stmt::{server_path, Param, RestoreMode, Statement};

/// SQL Server error numbers the engine acts on (RUNBOOK.md, "Error numbers").
pub mod errno {
    /// The log is too recent: a gap before it.
    pub const LOG_TOO_RECENT: u32 = 4305;
    /// The log is too early: already applied.
    pub const LOG_TOO_EARLY: u32 = 4326;
    /// Recovery fork mismatch.
    pub const FORK_MISMATCH: u32 = 4330;
    /// A previous restore was interrupted: use `WITH RESTART`.
    pub const RESTORE_INTERRUPTED: u32 = 4319;
    /// Exclusive access could not be obtained: sessions in the database.
    pub const IN_USE: u32 = 3101;
    /// Cannot open backup device.
    pub const CANNOT_OPEN_DEVICE: u32 = 3201;
    /// Damaged or wrong media.
    pub const DAMAGED_MEDIA: u32 = 3241;
    pub const WRONG_MEDIA: u32 = 3242;
    /// RESTORE is terminating abnormally (follows the real cause).
    pub const RESTORE_TERMINATING: u32 = 3013;
    /// Login failed.
    pub const LOGIN_FAILED: u32 = 18456;
    /// KILL of a session that is gone.
    pub const NOT_ACTIVE_PROCESS: u32 = 6106;
}

/// What went wrong talking to SQL Server.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("cannot connect to SQL Server {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("SQL Server error {number}, class {class}, state {state} ({context}): {message}")]
    Server {
        number: u32,
        class: u8,
        state: u8,
        message: String,
        context: String,
    },
    #[error("the connection to SQL Server was lost ({context}): {message}")]
    Lost { context: String, message: String },
    #[error("unexpected answer from SQL Server ({context}): {message}")]
    Protocol { context: String, message: String },
    #[error("password: {0}")]
    Password(String),
    #[error("{0}")]
    Unsupported(String),
}

impl SqlError {
    fn from_token(e: tiberius::error::TokenError, context: &str) -> SqlError {
        SqlError::Server {
            number: e.code(),
            class: e.class(),
            state: e.state(),
            message: e.message().to_string(),
            context: short(context),
        }
    }

    pub(crate) fn from_tiberius(e: tiberius::error::Error, context: &str) -> SqlError {
        use tiberius::error::Error as T;
        match e {
            T::Server(t) => SqlError::from_token(t, context),
            T::Io { message, .. } => SqlError::Lost {
                context: short(context),
                message,
            },
            other => SqlError::Protocol {
                context: short(context),
                message: other.to_string(),
            },
        }
    }

    /// The server's error number, when the server raised it.
    pub fn number(&self) -> Option<u32> {
        match self {
            SqlError::Server { number, .. } => Some(*number),
            _ => None,
        }
    }

    /// The connection is gone or out of sync: reconnect before the next statement.
    pub fn connection_lost(&self) -> bool {
        matches!(
            self,
            SqlError::Lost { .. } | SqlError::Protocol { .. } | SqlError::Connect { .. }
        )
    }
}

/// The first words of a statement, to name it in errors without flooding them.
fn short(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}...", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}
