//! Command-line flags (clap derive). Raw flags only: each command turns them into a validated config.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "logship",
    version,
    about = "Brings a log-shipped SQL Server secondary up to date, then fails over"
)]
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
    /// The simulated secondary SQL Server (TDS); `sim init` writes a scenario.
    Sim(SimArgs),
    /// Copy what the copy folder lacks, verified (BLAKE3), in parallel; resumable.
    Copy(CopyArgs),
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
pub struct GenShareArgs {
    /// Folder to write into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "mgc")]
    pub database: String,
    /// Number of log backups.
    #[arg(long, default_value_t = 10)]
    pub logs: u32,
    /// Size of each log backup, e.g. 64KiB, 8MiB.
    #[arg(long, default_value = "1MiB")]
    pub log_size: String,
    /// FirstLSN of the first log (decimal or hex).
    #[arg(long)]
    pub start_lsn: Option<String>,
    /// Leave out the log after the K-th one, so the chain has a gap there.
    #[arg(long)]
    pub gap_after: Option<u32>,
    /// Also write the full backup the chain starts from (and a differential).
    #[arg(long)]
    pub with_full: bool,
    /// Seed for the payload and GUIDs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    pub sub: Option<SimCommand>,
    /// Address to listen on (loopback by default; port 0 picks one, printed on stdout's first line).
    #[arg(long, default_value = "127.0.0.1:14330")]
    pub listen: String,
    /// State folder written by `logship sim init`.
    #[arg(long)]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Write a scenario into a state folder (password from LOGSHIP_SIM_PASSWORD).
    Init(Box<SimInitArgs>),
    /// Print the state and the restore history as JSON.
    Show(SimShowArgs),
}

#[derive(Debug, Args)]
pub struct SimShowArgs {
    #[arg(long)]
    pub state: PathBuf,
}

#[derive(Debug, Args)]
pub struct SimInitArgs {
    #[arg(long)]
    pub state: PathBuf,
    #[arg(long, default_value = "mgc")]
    pub database: String,
    /// The database's redo_start_lsn (decimal or hex).
    #[arg(long)]
    pub redo_lsn: String,
    /// STANDBY (read-only) instead of RESTORING.
    #[arg(long)]
    pub standby: bool,
    #[arg(long, default_value = "ATL-SQL-002")]
    pub server_name: String,
    #[arg(long, default_value = "ATL-SQL-001")]
    pub primary_server: String,
    /// The primary's backup share (msdb backup_source_directory).
    #[arg(long, default_value = "")]
    pub source: String,
    /// The copy folder (msdb backup_destination_directory).
    #[arg(long, default_value = "")]
    pub dest: String,
    #[arg(long)]
    pub last_copied_file: Option<String>,
    #[arg(long)]
    pub last_restored_file: Option<String>,
    /// No log-shipping rows or jobs.
    #[arg(long)]
    pub no_log_shipping: bool,
    /// Create the copy and restore jobs disabled.
    #[arg(long)]
    pub jobs_disabled: bool,
    #[arg(long, default_value = "failover")]
    pub login: String,
    /// User sessions connected to the database.
    #[arg(long, default_value_t = 0)]
    pub sessions: u16,
    /// How many of them reconnect after KILL.
    #[arg(long, default_value_t = 0)]
    pub reconnecting: u16,
    #[arg(long, default_value_t = 200)]
    pub reconnect_after_ms: u64,
    /// Restore throughput in MiB/s (default: unthrottled).
    #[arg(long)]
    pub restore_mib_per_s: Option<f64>,
    /// Fault: drop the connection at this percent of the next RESTORE LOG.
    #[arg(long)]
    pub drop_at_percent: Option<u8>,
    /// Fault: fail the next K restores with 3101.
    #[arg(long, default_value_t = 0)]
    pub fail_3101: u32,
    /// Fault: delay every response by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub slow_ms: u64,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The primary's backup share.
    #[arg(long)]
    pub source: PathBuf,
    /// The copy folder (must exist).
    #[arg(long)]
    pub dest: PathBuf,
    /// Database name: only its backups are copied.
    #[arg(long)]
    pub database: Option<String>,
    /// Every uncopied backup, not only the files the log chain still needs.
    #[arg(long)]
    pub all: bool,
    /// Files copied at once (default: the best measured on this machine class, see README).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Verification: reread (hash the copy again), disk (re-read from the device), inline (trust the write).
    #[arg(long, default_value = "reread")]
    pub verify: String,
    /// Read/write buffer size, e.g. 1MiB.
    #[arg(long, hide = true)]
    pub buffer_size: Option<String>,
    /// Extra attempts when a source changes while copied or a read-back disagrees.
    #[arg(long, hide = true, default_value_t = 2)]
    pub retries: u32,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}
