//! logship: brings a log-shipped SQL Server secondary up to date as fast as the hardware allows,
//! then completes the failover.

pub mod backup;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod copy;
pub mod logging;
pub mod lsn;
pub mod plan;
pub mod scan;
pub mod sim;
pub mod sql;

pub use lsn::Lsn;
