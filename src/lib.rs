//! logship: brings a log-shipped SQL Server secondary up to date as fast as the hardware allows,
//! then completes the failover.

pub mod backup;
pub mod bench;
pub mod catchup;
pub mod chat;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod copy;
pub mod custody;
pub mod drill;
pub mod failover;
pub mod journal;
pub mod logging;
pub mod lsn;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scan;
pub mod sim;
pub mod sql;
pub mod watch;

pub use lsn::Lsn;
