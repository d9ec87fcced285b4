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
    /// Copy and apply the log chain, pipelined; leaves the database restoring.
    Catchup(CatchupArgs),
    /// The seven steps of the failover, journaled; running it again resumes.
    Failover(FailoverArgs),
    /// Rehearse a whole failover against a generated share and the built-in simulators.
    Drill(DrillArgs),
    /// Measure the pipeline on generated data against baselines (cp, b3sum, the simulator).
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Larger data: 500 logs of 8 MiB for the catch-up, 10,000 logs for the header rate.
    #[arg(long, conflicts_with = "quick")]
    pub full: bool,
    /// Tiny data (CI): shows the table's shape, not the machine's speed.
    #[arg(long)]
    pub quick: bool,
    /// Runs of each measurement (medians and spread are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measure a real share (read, copy, header rate) instead of generated data; no database.
    #[arg(long, requires = "dest", conflicts_with_all = ["full", "quick"])]
    pub source: Option<PathBuf>,
    /// The copy folder for --source: a temporary folder inside it is used and removed.
    #[arg(long, requires = "source")]
    pub dest: Option<PathBuf>,
    /// Where the generated data goes (default: /var/tmp, else the temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Do not save the measured rates (the ones `logship plan` estimates from).
    #[arg(long)]
    pub no_save: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Log backups in the generated share.
    #[arg(long, default_value_t = 200)]
    pub logs: u32,
    /// Size of each log backup.
    #[arg(long, default_value = "4MiB")]
    pub log_size: String,
    /// Keep everything (share, copies, simulator state, journal, report) in this folder.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Simulated restore throughput in MiB/s (default: unthrottled).
    #[arg(long)]
    pub restore_mib_per_s: Option<f64>,
    /// Copy workers.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seed of the generated share.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write failover.json and failover.html here (default: DIR/report when --dir is given).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// Configuration file (TOML), with a [chat] section.
    #[arg(long)]
    pub config: PathBuf,
    /// Print every statement and cmdlet in order; change nothing.
    #[arg(long)]
    pub what_if: bool,
    /// Do not ask for confirmation before the first change.
    #[arg(long)]
    pub yes: bool,
    /// Accept active servers outside the new primary database's site (low-latency link).
    #[arg(long)]
    pub allow_remote_site: bool,
    /// Bring the database online even though a gap stops the log chain (data loss).
    #[arg(long)]
    pub accept_gap: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What catch-up and failover share: the copy settings and the report.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Copy workers (default: the configuration's, else the measured default).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Verification of copies: reread, disk or inline.
    #[arg(long)]
    pub verify: Option<String>,
    /// Write the JSON report and the HTML timeline into this folder.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CatchupArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Disable log shipping's copy and restore jobs for the run and put them back afterwards.
    #[arg(long)]
    pub pause_jobs: bool,
    #[command(flatten)]
    pub run: RunArgs,
    /// Keep following the share: apply each new log as soon as it is complete.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: no file notifications, rescan at every poll interval only.
    #[arg(long, requires = "watch")]
    pub poll_only: bool,
    /// With --watch: rescan the share at least every SECONDS (default 10).
    #[arg(long, value_name = "SECONDS", requires = "watch")]
    pub poll_interval: Option<f64>,
    /// With --watch: exit (status 0) when nothing new arrived on the share for SECONDS.
    #[arg(long, value_name = "SECONDS", requires = "watch")]
    pub until_idle: Option<f64>,
    /// With --watch: report a file that stays incomplete, unreadable or .wrk for SECONDS
    /// (default 60).
    #[arg(long, value_name = "SECONDS", requires = "watch")]
    pub stalled_after: Option<f64>,
    /// With --watch: the primary's UTC offset, like +01:00 or -05:00 (backup dates are the
    /// server's local time; default +00:00), for the age of the newest backup.
    #[arg(
        long,
        value_name = "OFFSET",
        requires = "watch",
        allow_hyphen_values = true
    )]
    pub server_utc_offset: Option<String>,
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
    /// Stands where powershell.exe stands: `--state DIR [-NoProfile -NonInteractive] -Command <script>`.
    ChatShell(ChatShellArgs),
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
    /// Do not BLAKE3 what each restore reads (the history's blake3 is then null). A SQL Server
    /// does not hash what it restores; benchmarks on a shared machine turn the hash off.
    #[arg(long)]
    pub no_restore_hash: bool,
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
    /// Verification: reread (read the copy back and compare), disk (read it back from the device), inline (trust the write).
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
