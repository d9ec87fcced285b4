//! `logship catchup --watch`: follow the share, print a status line and one event per log.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use super::catchup::{cancel_on_ctrl_c, connector, restorer, settings};
use super::{usage, Status};
use crate::catchup;
use crate::cli::{CatchupArgs, GlobalArgs};
use crate::config::Config;
use crate::journal::{Event, Journal};
use crate::watch::{self, WatchEvent, WatchOptions};

pub fn run(g: &GlobalArgs, a: &CatchupArgs) -> anyhow::Result<Status> {
    if a.run.report.is_some() {
        return Err(usage("--report is for a single catch-up, not --watch"));
    }
    let cfg = Config::load(&a.config)?;
    let settings = settings(&cfg, a.pause_jobs, a.run.workers, a.run.verify.as_deref())?;
    let opts = options(a)?;
    let connector = connector(&cfg)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let json = a.run.json;
    let quiet = g.quiet;
    let report = rt.block_on(async {
        let cancel = cancel_on_ctrl_c();
        let mut journal = Journal::open(&cfg.journal_path())?;
        journal.append(Event::RunStarted {
            command: "catchup --watch".into(),
        })?;
        let mut restorer = restorer(&connector, &cfg);
        let mut sink = |e: &WatchEvent| print_event(e, json, quiet);
        let report = watch::watch(
            &settings,
            &mut restorer,
            &mut journal,
            cancel,
            &opts,
            &mut sink,
        )
        .await;
        let outcome = match &report {
            Ok(r) => format!("{:?}", r.reason).to_lowercase(),
            Err(e) => format!("failed: {}", catchup::error_chain(e)),
        };
        journal.append(Event::RunFinished { outcome })?;
        restorer.close().await;
        anyhow::Ok(report?)
    })?;
    tracing::info!(applied = report.applied, redo = %report.redo_lsn, "watch stopped");
    // Idle and a requested stop are both the normal end of a watch.
    Ok(Status::Done)
}

fn options(a: &CatchupArgs) -> anyhow::Result<WatchOptions> {
    let secs = |v: f64, what: &str| {
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(usage(format!(
                "{what} must be a number of seconds, not {v}"
            )))
        }
    };
    let mut o = WatchOptions {
        poll_only: a.poll_only,
        ..WatchOptions::default()
    };
    if let Some(p) = a.poll_interval {
        o.poll_interval = secs(p, "--poll-interval")?;
        if o.poll_interval.is_zero() {
            return Err(usage("--poll-interval must be more than 0"));
        }
    }
    if let Some(i) = a.until_idle {
        o.until_idle = Some(secs(i, "--until-idle")?);
    }
    if let Some(s) = a.stalled_after {
        o.stalled_after = secs(s, "--stalled-after")?;
    }
    if let Some(off) = &a.server_utc_offset {
        let (east, secs) = parse_offset(off)
            .ok_or_else(|| usage(format!("--server-utc-offset {off:?}: expected like +01:00")))?;
        o.server_utc_offset = Duration::from_secs(secs);
        o.server_utc_offset_east = east;
    }
    Ok(o)
}

/// `+HH:MM` or `-HH:MM` (or `Z`): east of UTC, and seconds.
fn parse_offset(s: &str) -> Option<(bool, u64)> {
    if s.eq_ignore_ascii_case("z") {
        return Some((true, 0));
    }
    let (east, rest) = match s.as_bytes().first()? {
        b'+' => (true, &s[1..]),
        b'-' => (false, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some((east, h * 3600 + m * 60))
}

fn print_event(e: &WatchEvent, json: bool, quiet: bool) {
    if json {
        let mut out = std::io::stdout().lock();
        if serde_json::to_writer(&mut out, e).is_ok() {
            let _ = writeln!(out);
            let _ = out.flush();
        }
        return;
    }
    match e {
        WatchEvent::Applied {
            name,
            first_lsn,
            last_lsn,
            seconds_since_complete,
            ..
        } => {
            let since = seconds_since_complete
                .map(|s| format!(", {s:.1} s after it was complete"))
                .unwrap_or_default();
            println!("applied {name} ({first_lsn} to {last_lsn}){since}");
        }
        WatchEvent::Status(s) if !quiet => {
            let age = s
                .newest_backup_age_s
                .map(|a| format!("{a:.0} s"))
                .unwrap_or_else(|| "-".into());
            eprintln!(
                "status: redo LSN {} ({}), behind {} logs / {} KiB, {} settling, newest backup taken {} ago",
                s.redo_lsn,
                s.last_applied.as_deref().unwrap_or("-"),
                s.logs_behind,
                s.bytes_behind >> 10,
                s.pending,
                age
            );
        }
        WatchEvent::Status(_) => {}
        WatchEvent::Waiting {
            from_lsn,
            next,
            next_first_lsn,
        } => eprintln!(
            "waiting: no log yet covers LSN {from_lsn}; {next} (from {next_first_lsn}) waits for it"
        ),
        WatchEvent::NotApplied {
            path,
            reason,
            detail,
        } => eprintln!("never applied: {} ({reason}: {detail})", path.display()),
        WatchEvent::CopyRetry { message } => eprintln!("copy failed, will retry: {message}"),
        WatchEvent::Started {
            database,
            redo_lsn,
            notifications,
        } => eprintln!(
            "watching the share for {database} from redo LSN {redo_lsn} ({})",
            if *notifications {
                "notifications and polling"
            } else {
                "polling only"
            }
        ),
        WatchEvent::Stopped { reason, applied } => {
            eprintln!("stopped ({reason:?}): {applied} logs applied")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_offset;

    #[test]
    fn offsets() {
        let cases = [
            ("+01:00", Some((true, 3600))),
            ("-05:30", Some((false, 5 * 3600 + 1800))),
            ("Z", Some((true, 0))),
            ("+00:00", Some((true, 0))),
            ("01:00", None),
            ("+1", None),
            ("+15:00", None),
            ("+01:60", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_offset(s), want, "{s}");
        }
    }
}
