//! Each step's three faces: already done?, perform, describe.

use std::fmt::Write;

use tracing::warn;

use super::{Context, FailoverError, FinalState, Step};
use crate::catchup::{self, Outcome};
use crate::chat::{same_servers, PoolState};
use crate::plan::{Plan, SkipReason};
use crate::sql::snapshot;
use crate::sql::{server_path, Statement};

/// The compliance database is not failed over (RUNBOOK.md).
pub const COMPLIANCE_WARNING: &str =
    "the compliance database mgccomp is NOT failed over: its content is transient; \
     secure the compliance adapter's output before you go on";

/// `Some(detail)` when the step's effect is already in place.
pub async fn already_done(ctx: &mut Context, step: Step) -> Result<Option<String>, FailoverError> {
    let db = ctx.settings.catchup.database.clone();
    Ok(match step {
        Step::Preflight => None,
        Step::RemoveLogShipping => {
            let conn = ctx.restorer.query_conn().await?;
            snapshot::log_shipping(conn, &db)
                .await?
                .is_none()
                .then(|| "no log shipping rows for the database".to_string())
        }
        Step::CatchUp | Step::Recover => {
            let st = ctx.restorer.database_state().await?;
            st.filter(|s| s.is_online())
                .map(|_| format!("database {db} is ONLINE"))
        }
        Step::PoolState => {
            let state = ctx.chat(|p| p.pool_state()).await?;
            (state == PoolState::FailedOver).then(|| "pool state is FailedOver".to_string())
        }
        Step::Mirror => {
            let m = ctx.chat(|p| p.mirror_state()).await?;
            m.installed()
                .then(|| format!("mirroring in place ({})", m.states_on_primary.join(", ")))
        }
        Step::ActiveServers => {
            let want = ctx.settings.chat.active_servers.clone();
            let have = ctx.chat(|p| p.active_servers()).await?;
            same_servers(&have, &want).then(|| format!("active servers are {}", have.join(", ")))
        }
    })
}

/// Scans and plans from the database's current redo LSN.
async fn plan(ctx: &mut Context) -> Result<Option<Plan>, FailoverError> {
    let Some(st) = ctx.restorer.database_state().await? else {
        return Ok(None);
    };
    let Some(redo) = st.redo_start_lsn else {
        return Ok(None);
    };
    let s = ctx.settings.catchup.clone();
    Ok(Some(
        tokio::task::spawn_blocking(move || catchup::plan_now(&s, Some(redo)))
            .await
            .expect("planner thread"),
    ))
}

/// Log backups on the share or in the copy folder that cannot be read: one may be a log the
/// database needs (a damaged last log leaves no gap behind it to show that it is missing).
fn damaged_logs(plan: &Plan) -> Vec<String> {
    plan.skipped
        .iter()
        .filter(|s| matches!(s.reason, SkipReason::Unreadable | SkipReason::Incomplete))
        .filter(|s| {
            s.path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("trn"))
        })
        .map(|s| format!("{} ({})", s.path.display(), s.detail))
        .collect()
}

fn refuse_gap(ctx: &Context, plan: &Plan) -> Result<(), FailoverError> {
    let damaged = damaged_logs(plan);
    if !damaged.is_empty() {
        if !ctx.settings.accept_gap {
            return Err(FailoverError::DamagedLogs {
                files: damaged.join("; "),
            });
        }
        warn!(
            "--accept-gap: failing over without the logs that cannot be read: {}",
            damaged.join("; ")
        );
    }
    match plan.gaps.first() {
        Some(g) if !ctx.settings.accept_gap => Err(FailoverError::ChainBroken {
            from: g.from_lsn,
            to: g.to_lsn,
            after: g.after.clone(),
        }),
        Some(g) => {
            warn!(
                "--accept-gap: failing over without the logs after LSN {} (data loss)",
                g.from_lsn
            );
            Ok(())
        }
        None => Ok(()),
    }
}

/// Does the step. Returns a one-line detail for the journal and report.
pub async fn perform(ctx: &mut Context, step: Step) -> Result<String, FailoverError> {
    let db = ctx.settings.catchup.database.clone();
    match step {
        Step::Preflight => preflight(ctx).await,
        Step::RemoveLogShipping => {
            let conn = ctx.restorer.query_conn().await?;
            conn.execute(&Statement::remove_log_shipping(&db)).await?;
            Ok(format!(
                "sp_delete_log_shipping_secondary_database for {db}"
            ))
        }
        Step::CatchUp => {
            let r = catchup::run(
                &ctx.settings.catchup,
                &mut ctx.restorer,
                &mut ctx.journal,
                ctx.progress.clone(),
                ctx.cancel.clone(),
            )
            .await?;
            let detail = format!(
                "{} logs applied, {} files copied, LSN {}",
                r.applied.len(),
                r.files_copied,
                r.redo_after.map(|l| l.to_string()).unwrap_or_default()
            );
            let outcome = r.outcome;
            let gap = r.gaps.first().cloned();
            let error = r.error.clone();
            ctx.catchup_report = Some(r);
            match outcome {
                Outcome::Done => Ok(detail),
                Outcome::ChainBroken if ctx.settings.accept_gap => {
                    Ok(format!("{detail}; chain broken, accepted"))
                }
                Outcome::ChainBroken => match gap {
                    Some(g) => Err(FailoverError::ChainBroken {
                        from: g.from_lsn,
                        to: g.to_lsn,
                        after: g.after,
                    }),
                    // The server found the gap the headers did not show (4305): its words.
                    None => Err(FailoverError::Database {
                        db,
                        message: error.unwrap_or_default(),
                    }),
                },
                Outcome::Cancelled => Err(FailoverError::Cancelled),
                Outcome::Failed => Err(FailoverError::Database {
                    db,
                    message: error.unwrap_or_default(),
                }),
            }
        }
        Step::Recover => {
            let changed = ctx.journal.changed_during_restore();
            if !changed.is_empty() {
                return Err(FailoverError::Database {
                    db,
                    message: format!(
                        "not brought online: {} changed while SQL Server restored it, so the database \
                         may hold damaged log records; restore it again from the last full backup and \
                         the log chain, then start with a new journal",
                        changed.join(", ")
                    ),
                });
            }
            // Never online while a log that could be applied is waiting, or a gap was not accepted.
            if let Some(p) = plan(ctx).await? {
                if let Some(first) = p.to_apply.first() {
                    return Err(FailoverError::Database {
                        db,
                        message: format!(
                            "{} logs are still to apply (first {}); run again",
                            p.to_apply.len(),
                            first.name
                        ),
                    });
                }
                refuse_gap(ctx, &p)?;
            }
            ctx.restorer.recover().await?;
            Ok(format!("RESTORE DATABASE {db} WITH RECOVERY"))
        }
        Step::PoolState => {
            let st = ctx.restorer.database_state().await?;
            if !st.as_ref().is_some_and(|s| s.is_online()) {
                return Err(FailoverError::Database {
                    db,
                    message: "not ONLINE: the pool state is not flipped".into(),
                });
            }
            ctx.chat(|p| p.set_pool_state(PoolState::FailedOver))
                .await?;
            let now = ctx.chat(|p| p.pool_state()).await?;
            if now != PoolState::FailedOver {
                return Err(FailoverError::Preflight(format!(
                    "the pool state reads {now} after the change"
                )));
            }
            Ok("PoolState FailedOver".into())
        }
        Step::Mirror => {
            let spec = ctx.settings.chat.mirror.clone();
            ctx.chat(move |p| p.install_mirror(&spec)).await?;
            let m = ctx.chat(|p| p.mirror_state()).await?;
            if !m.installed() {
                warn!(
                    "Install-CsMirrorDatabase succeeded but the mirror state reads {:?}",
                    m.states_on_primary
                );
            }
            Ok(format!(
                "mirror on {}",
                ctx.settings.chat.mirror.sql_server_fqdn
            ))
        }
        Step::ActiveServers => {
            let want = ctx.settings.chat.active_servers.clone();
            let w = want.clone();
            ctx.chat(move |p| p.set_active_servers(&w)).await?;
            let have = ctx.chat(|p| p.active_servers()).await?;
            if !same_servers(&have, &want) {
                return Err(FailoverError::Preflight(format!(
                    "active servers read {} after the change",
                    have.join(", ")
                )));
            }
            Ok(format!("active servers {}", want.join(", ")))
        }
    }
}

async fn preflight(ctx: &mut Context) -> Result<String, FailoverError> {
    let s = &ctx.settings;
    for server in &s.chat.active_servers {
        let site = s.server_sites.get(server).or_else(|| {
            s.server_sites
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(server))
                .map(|(_, v)| v)
        });
        match (site, &s.database_site) {
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
            _ if s.allow_remote_site => {
                warn!(server = %server, "active server outside the database's site (--allow-remote-site)")
            }
            (Some(a), Some(b)) => {
                return Err(FailoverError::Preflight(format!(
                    "active server {server} is in site {a}, the new primary database in {b}: pass --allow-remote-site \
                     only if they have a low-latency, high-bandwidth link"
                )))
            }
            (None, _) | (_, None) => {
                return Err(FailoverError::Preflight(format!(
                    "chat.server_sites or chat.database_site does not say where active server {server} is: \
                     every active server must be in the database's site (or pass --allow-remote-site)"
                )))
            }
        }
    }
    if ctx.verbose_out {
        ctx.say(&format!("WARNING: {COMPLIANCE_WARNING}"));
    } else {
        warn!("{COMPLIANCE_WARNING}");
    }
    let snap = if ctx.what_if {
        let db = ctx.settings.catchup.database.clone();
        let conn = ctx.restorer.query_conn().await?;
        snapshot::take(conn, &db).await?
    } else {
        catchup::snapshot_once(&mut ctx.restorer, &mut ctx.journal).await?;
        ctx.journal.snapshot().expect("journaled").clone()
    };
    catchup::set_restore_mode(&ctx.settings.catchup, &mut ctx.restorer, &snap);
    let db = ctx.settings.catchup.database.clone();
    let st = ctx
        .restorer
        .database_state()
        .await?
        .ok_or_else(|| FailoverError::Database {
            db: db.clone(),
            message: "does not exist on the secondary".into(),
        })?;
    if st.is_online() {
        return Ok(format!("database {db} is already ONLINE"));
    }
    if !st.is_restoring() {
        return Err(FailoverError::Database {
            db,
            message: format!("is {}, not RESTORING", st.state_desc),
        });
    }
    let p = plan(ctx).await?.ok_or_else(|| FailoverError::Database {
        db: db.clone(),
        message: "no redo_start_lsn".into(),
    })?;
    refuse_gap(ctx, &p)?;
    Ok(format!(
        "database {db} RESTORING at {}; {} logs to apply, {} files ({} MiB) to copy",
        st.redo_start_lsn.map(|l| l.to_string()).unwrap_or_default(),
        p.to_apply.len(),
        p.to_copy.len(),
        p.bytes_to_copy() >> 20
    ))
}

/// What the step would do, statement by statement.
pub async fn describe(ctx: &mut Context, step: Step) -> Result<Vec<String>, FailoverError> {
    let db = ctx.settings.catchup.database.clone();
    let scripts = ctx.settings.chat.scripts();
    Ok(match step {
        Step::Preflight => vec![preflight(ctx).await?],
        Step::RemoveLogShipping => vec![Statement::remove_log_shipping(&db).render()],
        Step::CatchUp => {
            let Some(p) = plan(ctx).await? else {
                return Ok(vec!["(no redo LSN: nothing to apply)".into()]);
            };
            let mut lines = Vec::new();
            let c = &ctx.settings.catchup;
            let mut l = String::new();
            let _ = write!(
                l,
                "copy {} files ({} bytes) from {} to {}, verified (BLAKE3, {})",
                p.to_copy.len(),
                p.bytes_to_copy(),
                c.source_dir.display(),
                c.dest_dir.display(),
                c.copy.verify
            );
            lines.push(l);
            for log in &p.to_apply {
                let path = server_path(&c.dest_on_server, &log.name);
                lines.push(ctx.restorer.restore_statement(&path, log.position).render());
            }
            lines
        }
        Step::Recover => {
            let conn = ctx.restorer.query_conn().await?;
            let mut lines: Vec<String> = snapshot::sessions(conn, &db)
                .await?
                .into_iter()
                .map(|id| Statement::kill(id).render())
                .collect();
            lines.push(Statement::recover(&db).render());
            lines
        }
        Step::PoolState => vec![scripts.set_pool_state(PoolState::FailedOver).text],
        Step::Mirror => vec![scripts.install_mirror(&ctx.settings.chat.mirror).text],
        Step::ActiveServers => vec![
            scripts
                .set_active_servers(&ctx.settings.chat.active_servers)
                .text,
        ],
    })
}

/// Reads the end state back; what cannot be read stays `None`.
pub async fn final_state(ctx: &mut Context) -> FinalState {
    let mut f = FinalState::default();
    if let Ok(Some(st)) = ctx.restorer.database_state().await {
        f.database_state = Some(if st.is_in_standby {
            "STANDBY".into()
        } else {
            st.state_desc
        });
    }
    f.pool_state = ctx
        .chat(|p| p.pool_state())
        .await
        .ok()
        .map(|s| s.to_string());
    f.mirror_installed = ctx
        .chat(|p| p.mirror_state())
        .await
        .ok()
        .map(|m| m.installed());
    f.active_servers = ctx.chat(|p| p.active_servers()).await.ok();
    f
}
