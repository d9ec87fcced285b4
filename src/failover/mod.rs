//! The failover: seven steps in order, each knowing whether it is already done, how to do it and
//! how to describe itself; journaled, resumable, and printable with `--what-if`.

mod context;
mod steps;

use std::sync::atomic::Ordering;

use serde::Serialize;
use tracing::{info, warn};

pub use context::{Context, FailoverError, Settings};

use crate::journal::Event;

/// The steps, in the order they run (RUNBOOK.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Preflight,
    RemoveLogShipping,
    CatchUp,
    Recover,
    PoolState,
    Mirror,
    ActiveServers,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Preflight,
        Step::RemoveLogShipping,
        Step::CatchUp,
        Step::Recover,
        Step::PoolState,
        Step::Mirror,
        Step::ActiveServers,
    ];

    /// The name in the journal and reports.
    pub fn id(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::RemoveLogShipping => "remove_log_shipping",
            Step::CatchUp => "catch_up",
            Step::Recover => "recover",
            Step::PoolState => "pool_state",
            Step::Mirror => "mirror",
            Step::ActiveServers => "active_servers",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Step::Preflight => "preflight: connect, snapshot, plan, checks",
            Step::RemoveLogShipping => "1. remove log shipping on the secondary",
            Step::CatchUp => "2-3. copy the missing backups and apply the log chain",
            Step::Recover => "4. end the sessions and RESTORE WITH RECOVERY",
            Step::PoolState => "5. set the pool state to FailedOver",
            Step::Mirror => "6. install the mirror of the new primary",
            Step::ActiveServers => "7. set the active Persistent Chat servers",
        }
    }
}

/// How a step ended in this run.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub step: Step,
    pub title: &'static str,
    /// `done`, `already_done`, `failed` or `not_reached`.
    pub outcome: String,
    pub detail: String,
    pub seconds: f64,
}

/// The state at the end, read back from the server and the pool.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FinalState {
    pub database_state: Option<String>,
    pub pool_state: Option<String>,
    pub mirror_installed: Option<bool>,
    pub active_servers: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub database: String,
    pub what_if: bool,
    /// `done`, `failed`, `chain_broken`, `cancelled`, `what_if`.
    pub outcome: String,
    pub error: Option<String>,
    pub steps: Vec<StepReport>,
    pub catchup: Option<crate::catchup::Report>,
    pub final_state: FinalState,
    pub seconds: f64,
    pub timeline: Vec<crate::report::TimeSpan>,
}

/// Runs the steps from the first unfinished one; with `what_if`, prints what each would do.
pub async fn run(ctx: &mut Context) -> Report {
    let mut reports = Vec::new();
    let mut error: Option<FailoverError> = None;
    for step in Step::ALL {
        if error.is_none() && ctx.cancel.load(Ordering::Relaxed) {
            error = Some(FailoverError::Cancelled);
        }
        if error.is_some() {
            let detail = String::new();
            reports.push(StepReport {
                step,
                title: step.title(),
                outcome: "not_reached".into(),
                detail,
                seconds: 0.0,
            });
            continue;
        }
        let t0 = ctx.progress.timeline.now();
        let r = run_step(ctx, step).await;
        let seconds = ctx.progress.timeline.now() - t0;
        match r {
            Ok((outcome, detail)) => {
                reports.push(StepReport {
                    step,
                    title: step.title(),
                    outcome: outcome.into(),
                    detail,
                    seconds,
                });
            }
            Err(e) => {
                let detail = crate::catchup::error_chain(&e);
                reports.push(StepReport {
                    step,
                    title: step.title(),
                    outcome: "failed".into(),
                    detail,
                    seconds,
                });
                error = Some(e);
            }
        }
    }
    let final_state = steps::final_state(ctx).await;
    let outcome = match &error {
        None if ctx.what_if => "what_if".to_string(),
        None => "done".to_string(),
        Some(FailoverError::ChainBroken { .. } | FailoverError::DamagedLogs { .. }) => {
            "chain_broken".to_string()
        }
        Some(FailoverError::Cancelled) => "cancelled".to_string(),
        Some(_) => "failed".to_string(),
    };
    if !ctx.what_if {
        let _ = ctx.journal.append(Event::RunFinished {
            outcome: outcome.clone(),
        });
    }
    Report {
        database: ctx.settings.catchup.database.clone(),
        what_if: ctx.what_if,
        outcome,
        error: error.as_ref().map(|e| crate::catchup::error_chain(e)),
        steps: reports,
        catchup: ctx.catchup_report.clone(),
        final_state,
        seconds: ctx.progress.timeline.now(),
        timeline: ctx.progress.timeline.spans(),
    }
}

/// One step: check, then do (journaled) or describe.
async fn run_step(ctx: &mut Context, step: Step) -> Result<(&'static str, String), FailoverError> {
    // Preflight always runs: it reads, checks and refuses before any change.
    if step != Step::Preflight {
        if let Some(detail) = steps::already_done(ctx, step).await? {
            info!(step = step.id(), "already done: {detail}");
            ctx.say(&format!("{}: already done ({detail})", step.title()));
            if !ctx.what_if && !ctx.journal.step_done(step.id()) {
                ctx.journal.append(Event::StepDone {
                    step: step.id().into(),
                    detail: format!("already done: {detail}"),
                })?;
            }
            return Ok(("already_done", detail));
        }
    }
    if ctx.what_if {
        let lines = steps::describe(ctx, step).await?;
        ctx.say(&format!("{}:", step.title()));
        for l in &lines {
            ctx.say(&format!("    {l}"));
        }
        return Ok(("what_if", lines.join("\n")));
    }
    ctx.journal.append(Event::StepStarted {
        step: step.id().into(),
    })?;
    ctx.progress.timeline.start("step", step.title());
    let res = steps::perform(ctx, step).await;
    match &res {
        Ok(detail) => {
            ctx.progress
                .timeline
                .end("step", step.title(), true, detail.clone());
            ctx.journal.append(Event::StepDone {
                step: step.id().into(),
                detail: detail.clone(),
            })?;
            ctx.say(&format!("{}: done {detail}", step.title()));
        }
        Err(e) => {
            let text = crate::catchup::error_chain(e);
            ctx.progress
                .timeline
                .end("step", step.title(), false, text.clone());
            warn!(step = step.id(), "failed: {text}");
            ctx.journal.append(Event::StepFailed {
                step: step.id().into(),
                error: text,
            })?;
        }
    }
    res.map(|d| ("done", d))
}
