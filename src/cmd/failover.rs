//! `logship failover`: the seven steps against the configured secondary and chat pool.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::Context as _;

use super::catchup::{cancel_on_ctrl_c, connector, restorer, settings as catchup_settings};
use super::{usage, Status};
use crate::chat::{ChatPool, ChatSettings, WhatIf};
use crate::cli::{FailoverArgs, GlobalArgs};
use crate::config::{Config, ConfigError};
use crate::failover::{self, Context, Report, Settings};
use crate::journal::{Event, Journal};
use crate::progress::Progress;
use crate::sql::Connector;

/// What the command needs besides the configuration.
pub struct Options {
    pub what_if: bool,
    pub allow_remote_site: bool,
    pub accept_gap: bool,
    pub workers: Option<usize>,
    pub verify: Option<String>,
    pub quiet: bool,
    pub progress: bool,
}

pub fn run(g: &GlobalArgs, a: &FailoverArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(&a.config)?;
    let connector = connector(&cfg)?;
    let opts = Options {
        what_if: a.what_if,
        allow_remote_site: a.allow_remote_site,
        accept_gap: a.accept_gap,
        workers: a.run.workers,
        verify: a.run.verify.clone(),
        quiet: a.run.json || g.quiet,
        progress: !g.no_progress,
    };
    if !a.what_if && !a.yes {
        confirm(&cfg)?;
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(run_failover(&cfg, connector, &opts))?;
    finish(&report, a.run.json, a.run.report.as_deref())
}

/// Asks the operator before the first change; refuses when there is no one to ask.
fn confirm(cfg: &Config) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "not on a terminal: pass --yes to fail over without confirmation (or --what-if)",
        ));
    }
    let pool = cfg
        .chat
        .as_ref()
        .map(|c| c.pool_fqdn.as_str())
        .unwrap_or("-");
    eprint!(
        "Fail over database {} on {} and Persistent Chat pool {pool}? This removes log shipping and brings \
         the database online. Type yes to go on: ",
        cfg.database, cfg.sql.host
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(usage("not confirmed: nothing was changed"))
    }
}

/// The validated failover settings.
pub fn settings(cfg: &Config, opts: &Options) -> anyhow::Result<Settings> {
    let chat_cfg = cfg
        .chat
        .as_ref()
        .ok_or_else(|| ConfigError::invalid("chat", "the failover needs a [chat] section"))?;
    Ok(Settings {
        catchup: catchup_settings(cfg, false, opts.workers, opts.verify.as_deref())?,
        chat: ChatSettings::from_config(chat_cfg)?,
        database_site: chat_cfg.database_site.clone(),
        server_sites: chat_cfg.server_sites.clone(),
        allow_remote_site: opts.allow_remote_site,
        accept_gap: opts.accept_gap,
    })
}

/// Runs the failover (or what-if) with the production code path; used by the command and the drill.
pub async fn run_failover(
    cfg: &Config,
    connector: Connector,
    opts: &Options,
) -> anyhow::Result<Report> {
    let settings = settings(cfg, opts)?;
    let path = cfg.journal_path();
    let journal = if opts.what_if {
        // What-if changes nothing, not even the journal: it reads what earlier runs recorded.
        let earlier = if path.exists() {
            Some(Journal::open(&path)?)
        } else {
            None
        };
        Journal::in_memory(earlier.as_ref())
    } else {
        let mut j = Journal::open(&path)?;
        j.append(Event::RunStarted {
            command: "failover".into(),
        })?;
        j
    };
    let shell = settings.chat.shell_pool();
    let chat: Arc<dyn ChatPool + Send + Sync> = if opts.what_if {
        Arc::new(WhatIf::new(shell, settings.chat.scripts()))
    } else {
        Arc::new(shell)
    };
    let progress = Arc::new(if opts.quiet {
        Progress::hidden()
    } else {
        Progress::new(opts.progress)
    });
    let mut ctx = Context {
        restorer: restorer(&connector, cfg),
        settings,
        chat,
        journal,
        progress,
        cancel: cancel_on_ctrl_c(),
        what_if: opts.what_if,
        verbose_out: !opts.quiet,
        catchup_report: None,
    };
    let report = failover::run(&mut ctx).await;
    ctx.restorer.close().await;
    Ok(report)
}

/// Writes the reports, prints the summary, maps the outcome to the exit status.
pub fn finish(
    report: &Report,
    json: bool,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<Status> {
    if let Some(dir) = dir {
        crate::report::write_failover(dir, report)?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        crate::report::print_failover(&mut out, report)?;
    }
    Ok(match report.outcome.as_str() {
        "done" | "what_if" => Status::Done,
        "chain_broken" => Status::ChainBroken,
        _ => Status::Failed,
    })
}
