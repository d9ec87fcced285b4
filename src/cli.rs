//! Command-line flags (clap derive). Raw flags only: each command turns them into a validated config.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "logship", version, about = "Brings a log-shipped SQL Server secondary up to date, then fails over")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Less output: warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read backup headers natively, like RESTORE HEADERONLY; folders are walked.
    Headers(HeadersArgs),
    /// Show what catch-up would do, changing nothing.
    Plan(PlanArgs),
    /// Write a share of format-faithful synthetic backups.
    GenShare(GenShareArgs),
}

#[derive(Debug, Args)]
pub struct HeadersArgs {
    /// Backup files or folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Configuration file (TOML); asks the server for the redo LSN.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The primary's backup share.
    #[arg(long, conflicts_with = "config")]
    pub source: Option<PathBuf>,
    /// The copy destination folder.
    #[arg(long, conflicts_with = "config")]
    pub dest: Option<PathBuf>,
    /// Database name.
    #[arg(long, conflicts_with = "config")]
    pub database: Option<String>,
    /// The database's redo_start_lsn (decimal or hex).
    #[arg(long, conflicts_with = "config")]
    pub redo_lsn: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Logs are named <db>_yyyyMMddHHmmss.trn, 5 minutes apart from 2026-01-05T00:00:00, \
so a seed always gives the same share. A 64KiB log makes a 98.5 KiB file, as SQL Server writes it."
)]
pub struct GenShareArgs {
    /// Folder to write into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "mgc")]
    pub database: String,
    /// Number of log backup slots (5 minutes apart).
    #[arg(long, default_value_t = 10)]
    pub logs: u32,
    /// Log records per backup, e.g. 64KiB, 8MiB (rounded up to 8 KiB pages).
    #[arg(long, default_value = "1MiB")]
    pub log_size: String,
    /// FirstLSN of the first log (decimal or hex vlf:block:slot).
    #[arg(long)]
    pub start_lsn: Option<String>,
    /// Leave out the log after the K-th one, so the chain has a gap there (0: the first log).
    #[arg(long, value_name = "K")]
    pub gap_after: Option<u32>,
    /// Make the log after the K-th one empty (FirstLSN == LastLSN).
    #[arg(long, value_name = "K")]
    pub empty_after: Option<u32>,
    /// Write the K-th log a second time under the next second's name (same BackupSetGUID).
    #[arg(long, value_name = "K")]
    pub duplicate: Option<u32>,
    /// Add N log backups of another database, <database>_other, to the folder.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub foreign: u32,
    /// Write the newest log without its trailer (no MSLS, no ESET), as if still being written.
    #[arg(long)]
    pub incomplete_last: bool,
    /// Add N in-flight copies: the next logs as <name>.wrk files cut in the middle.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wrk: u32,
    /// Also write the full backup the chain starts from, and a differential after the middle log.
    #[arg(long)]
    pub with_full: bool,
    /// Data pages in the full backup (the differential has half).
    #[arg(long, default_value = "1MiB")]
    pub full_size: String,
    /// Seed for the payload and GUIDs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the summary (every file with its header) as JSON.
    #[arg(long)]
    pub json: bool,
}
