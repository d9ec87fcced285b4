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
    /// The simulated secondary and chat pool, for drills and tests.
    Sim(SimArgs),
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
pub struct SimArgs {
    #[command(subcommand)]
    pub sub: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Stands where powershell.exe stands: `--state DIR [-NoProfile -NonInteractive] -Command <script>`.
    ChatShell(ChatShellArgs),
}

#[derive(Debug, Args)]
pub struct ChatShellArgs {
    /// Folder holding the simulated pool's state (chat-pool.json).
    #[arg(long)]
    pub state: PathBuf,
    #[command(subcommand)]
    pub admin: Option<ChatShellAdmin>,
    /// powershell.exe's arguments: [-NoProfile] [-NonInteractive] -Command <script...> | -EncodedCommand <base64>.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub powershell: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ChatShellAdmin {
    /// Create the state: one pool in the Normal state, its servers, no mirror, no active server.
    Init {
        /// The pool FQDN (its identity is service:FQDN).
        #[arg(long)]
        pool: String,
        /// A Persistent Chat server of the pool (repeat for more).
        #[arg(long = "server")]
        servers: Vec<String>,
        /// A SQL server Install-CsMirrorDatabase accepts (repeat; none: any).
        #[arg(long = "sql-server")]
        sql_servers: Vec<String>,
        /// Replace an existing state.
        #[arg(long)]
        force: bool,
    },
    /// Make the next N Lync cmdlets fail, or the next shell run hang.
    Fault {
        #[arg(long, default_value_t = 0)]
        fail_next: u32,
        /// Fail after the change took effect (a lost reply) instead of before.
        #[arg(long)]
        after: bool,
        /// The next shell run sleeps this many seconds first.
        #[arg(long, default_value_t = 0)]
        hang_secs: u64,
    },
    /// Print the state as JSON.
    Show,
}
