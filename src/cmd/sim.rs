//! `logship sim`: serve a state folder over TDS, `sim init` to write a scenario, `sim show`.

use std::io::Write;
use std::str::FromStr;

use anyhow::Context;

use crate::cli::{GlobalArgs, SimArgs, SimCommand, SimInitArgs};
use crate::lsn::Lsn;
use crate::sim::state::{self, Faults, Scenario, PASSWORD_ENV};

use super::{usage, Status};

pub fn run(g: &GlobalArgs, a: SimArgs) -> anyhow::Result<Status> {
    match a.sub {
        Some(SimCommand::Init(i)) => init(&i),
        Some(SimCommand::ChatShell(c)) => super::sim_chat::run(g, &c),
        Some(SimCommand::Show(s)) => {
            let mut st = state::load(&s.state)?;
            // The salted hash stays in the state file; it has no business on a terminal.
            st.password_hash = "(hidden)".into();
            st.salt = "(hidden)".into();
            // The history lives in its own file; it is shown with the rest.
            let mut v = serde_json::to_value(&st)?;
            v["history"] = serde_json::to_value(&st.history)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(Status::Done)
        }
        None => {
            let dir = a.state.ok_or_else(|| {
                usage("logship sim needs --state DIR (create one with `logship sim init`)")
            })?;
            state::load(&dir)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&a.listen)
                    .await
                    .with_context(|| format!("binding {}", a.listen))?;
                let addr = listener.local_addr()?;
                let mut out = std::io::stdout();
                writeln!(out, "{addr}")?;
                out.flush()?;
                tracing::info!(%addr, state = %dir.display(), "simulated secondary listening");
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                crate::sim::serve(listener, dir, shutdown).await?;
                Ok(Status::Done)
            })
        }
    }
}

fn init(a: &SimInitArgs) -> anyhow::Result<Status> {
    let password = std::env::var(PASSWORD_ENV).map_err(|_| {
        usage(format!(
            "set the login's password in the environment variable {PASSWORD_ENV}"
        ))
    })?;
    let redo = Lsn::from_str(&a.redo_lsn).map_err(|e| usage(e.to_string()))?;
    if a.reconnecting > a.sessions {
        return Err(usage("--reconnecting cannot exceed --sessions"));
    }
    let mut sc = Scenario::new(&a.database, redo, &a.source, &a.dest, &password);
    sc.standby = a.standby;
    sc.server_name = a.server_name.clone();
    sc.primary_server = a.primary_server.clone();
    sc.last_copied_file = a.last_copied_file.clone();
    sc.last_restored_file = a.last_restored_file.clone();
    sc.no_log_shipping = a.no_log_shipping;
    sc.jobs_enabled = !a.jobs_disabled;
    sc.login = a.login.clone();
    sc.sessions = a.sessions;
    sc.reconnecting_sessions = a.reconnecting;
    sc.reconnect_after_ms = a.reconnect_after_ms;
    sc.restore_mib_per_s = a.restore_mib_per_s;
    sc.hash_restores = !a.no_restore_hash;
    sc.faults = Faults {
        drop_at_percent: a.drop_at_percent,
        fail_restores_3101: a.fail_3101,
        slow_ms: a.slow_ms,
    };
    state::init(&a.state, &sc)
        .with_context(|| format!("writing the scenario into {}", a.state.display()))?;
    Ok(Status::Done)
}
