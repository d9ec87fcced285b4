//! msdb as the simulator keeps it: the log-shipping tables (`log_shipping_secondary`,
//! `log_shipping_secondary_databases`, `log_shipping_monitor_secondary`), `sysjobs`,
//! `sp_update_job` and `sp_delete_log_shipping_secondary_database`.

use std::sync::Arc;

use super::engine::{msg, rows, Done, Msg, Shared};
use super::sql::Statement;
use super::state::SimState;
use super::tds::tokens::{col, Cell, ColType as T, ResultSet, Tokens};

fn nv(n: u16) -> T {
    T::NVarChar(n)
}

fn none() -> Done {
    Done {
        rows: None,
        select: false,
    }
}

pub fn exec(shared: &Arc<Shared>, stmt: &Statement, out: &mut Tokens) -> Result<Done, Vec<Msg>> {
    use Statement as S;
    match stmt {
        S::LogShippingJoin(db) => {
            let st = shared.state();
            let rs = ResultSet {
                columns: vec![
                    col("secondary_id", T::Guid),
                    col("primary_server", nv(128)),
                    col("primary_database", nv(128)),
                    col("backup_source_directory", nv(500)),
                    col("backup_destination_directory", nv(500)),
                    col("file_retention_period", T::Int),
                    col("last_copied_file", nv(500)),
                    col("copy_job_id", T::Guid),
                    col("restore_job_id", T::Guid),
                    col("restore_mode", T::Bit),
                    col("disconnect_users", T::Bit),
                    col("last_restored_file", nv(500)),
                    col("restore_delay", T::Int),
                ],
                rows: st
                    .log_shipping_secondary_databases
                    .iter()
                    .filter(|d| d.secondary_database.eq_ignore_ascii_case(db))
                    .filter_map(|d| {
                        let s = st
                            .log_shipping_secondary
                            .iter()
                            .find(|s| s.secondary_id == d.secondary_id)?;
                        Some(vec![
                            Cell::Guid(s.secondary_id),
                            s.primary_server.clone().into(),
                            s.primary_database.clone().into(),
                            s.backup_source_directory.clone().into(),
                            s.backup_destination_directory.clone().into(),
                            Cell::Int(s.file_retention_period as i64),
                            s.last_copied_file.clone().into(),
                            Cell::Guid(s.copy_job_id),
                            Cell::Guid(s.restore_job_id),
                            Cell::Bit(d.restore_mode != 0),
                            Cell::Bit(d.disconnect_users),
                            d.last_restored_file.clone().into(),
                            Cell::Int(d.restore_delay as i64),
                        ])
                    })
                    .collect(),
            };
            Ok(rows(rs, out))
        }
        S::LsTable(t) => Ok(rows(ls_table(&shared.state(), t), out)),
        S::Job(v) => {
            let st = shared.state();
            let id = v.as_guid();
            Ok(rows(
                ResultSet {
                    columns: vec![
                        col("job_id", T::Guid),
                        col("name", nv(128)),
                        col("enabled", T::TinyInt),
                    ],
                    rows: st
                        .jobs
                        .iter()
                        .filter(|j| Some(j.job_id) == id)
                        .map(|j| {
                            vec![
                                Cell::Guid(j.job_id),
                                j.name.clone().into(),
                                Cell::Int(j.enabled as i64),
                            ]
                        })
                        .collect(),
                },
                out,
            ))
        }
        S::UpdateJob { job, enabled } => {
            let id = job.as_guid();
            let en = enabled.as_int();
            let found = shared
                .mutate(
                    |st| match st.jobs.iter_mut().find(|j| Some(j.job_id) == id) {
                        Some(j) => {
                            if let Some(e) = en {
                                j.enabled = e != 0;
                            }
                            true
                        }
                        None => false,
                    },
                )
                .map_err(|e| vec![e])?;
            if !found {
                let shown = job.as_text().unwrap_or_default();
                return Err(vec![msg(
                    14262,
                    1,
                    16,
                    format!("The specified @job_id ('{shown}') does not exist."),
                )]);
            }
            Ok(none())
        }
        S::DeleteSecondary(db) => {
            shared
                .mutate(|st| {
                    let Some(pos) = st
                        .log_shipping_secondary_databases
                        .iter()
                        .position(|d| d.secondary_database.eq_ignore_ascii_case(db))
                    else {
                        return;
                    };
                    let sid = st.log_shipping_secondary_databases.remove(pos).secondary_id;
                    if !st
                        .log_shipping_secondary_databases
                        .iter()
                        .any(|d| d.secondary_id == sid)
                    {
                        if let Some(p) = st
                            .log_shipping_secondary
                            .iter()
                            .position(|s| s.secondary_id == sid)
                        {
                            let s = st.log_shipping_secondary.remove(p);
                            st.jobs.retain(|j| {
                                j.job_id != s.copy_job_id && j.job_id != s.restore_job_id
                            });
                        }
                    }
                })
                .map_err(|e| vec![e])?;
            Ok(none())
        }
        _ => unreachable!("not an msdb statement"),
    }
}

fn ls_table(st: &SimState, t: &str) -> ResultSet {
    match t {
        "log_shipping_secondary" => ResultSet {
            columns: vec![
                col("secondary_id", T::Guid),
                col("primary_server", nv(128)),
                col("primary_database", nv(128)),
                col("backup_source_directory", nv(500)),
                col("backup_destination_directory", nv(500)),
                col("file_retention_period", T::Int),
                col("copy_job_id", T::Guid),
                col("restore_job_id", T::Guid),
                col("monitor_server", nv(128)),
                col("monitor_server_security_mode", T::Bit),
                col("user_specified_monitor", T::Bit),
                col("last_copied_file", nv(500)),
                col("last_copied_date", T::DateTime),
            ],
            rows: st
                .log_shipping_secondary
                .iter()
                .map(|s| {
                    vec![
                        Cell::Guid(s.secondary_id),
                        s.primary_server.clone().into(),
                        s.primary_database.clone().into(),
                        s.backup_source_directory.clone().into(),
                        s.backup_destination_directory.clone().into(),
                        Cell::Int(s.file_retention_period as i64),
                        Cell::Guid(s.copy_job_id),
                        Cell::Guid(s.restore_job_id),
                        s.monitor_server.clone().into(),
                        Cell::Bit(true),
                        Cell::Bit(false),
                        s.last_copied_file.clone().into(),
                        Cell::Null,
                    ]
                })
                .collect(),
        },
        "log_shipping_secondary_databases" => ResultSet {
            columns: vec![
                col("secondary_database", nv(128)),
                col("secondary_id", T::Guid),
                col("restore_delay", T::Int),
                col("restore_all", T::Bit),
                col("restore_mode", T::Bit),
                col("disconnect_users", T::Bit),
                col("block_size", T::Int),
                col("buffer_count", T::Int),
                col("max_transfer_size", T::Int),
                col("last_restored_file", nv(500)),
                col("last_restored_date", T::DateTime),
            ],
            rows: st
                .log_shipping_secondary_databases
                .iter()
                .map(|d| {
                    vec![
                        d.secondary_database.clone().into(),
                        Cell::Guid(d.secondary_id),
                        Cell::Int(d.restore_delay as i64),
                        Cell::Bit(true),
                        Cell::Bit(d.restore_mode != 0),
                        Cell::Bit(d.disconnect_users),
                        Cell::Int(-1),
                        Cell::Int(-1),
                        Cell::Int(-1),
                        d.last_restored_file.clone().into(),
                        Cell::Null,
                    ]
                })
                .collect(),
        },
        _ => {
            // log_shipping_monitor_secondary: one row per secondary database
            let last = |db: &str| {
                st.history
                    .iter()
                    .rev()
                    .find(|h| h.database.eq_ignore_ascii_case(db))
            };
            ResultSet {
                columns: vec![
                    col("secondary_server", nv(128)),
                    col("secondary_database", nv(128)),
                    col("secondary_id", T::Guid),
                    col("primary_server", nv(128)),
                    col("primary_database", nv(128)),
                    col("restore_threshold", T::Int),
                    col("threshold_alert", T::Int),
                    col("threshold_alert_enabled", T::Bit),
                    col("last_copied_file", nv(500)),
                    col("last_copied_date", T::DateTime),
                    col("last_copied_date_utc", T::DateTime),
                    col("last_restored_file", nv(500)),
                    col("last_restored_date", T::DateTime),
                    col("last_restored_date_utc", T::DateTime),
                    col("last_restored_latency", T::Int),
                    col("history_retention_period", T::Int),
                ],
                rows: st
                    .log_shipping_secondary_databases
                    .iter()
                    .filter_map(|d| {
                        let s = st
                            .log_shipping_secondary
                            .iter()
                            .find(|s| s.secondary_id == d.secondary_id)?;
                        let h = last(&d.secondary_database);
                        let when = h.map_or(Cell::Null, |h| Cell::Time(h.finished_unix as i64, 0));
                        Some(vec![
                            st.server_name.clone().into(),
                            d.secondary_database.clone().into(),
                            Cell::Guid(d.secondary_id),
                            s.primary_server.clone().into(),
                            s.primary_database.clone().into(),
                            Cell::Int(45),
                            Cell::Int(14421),
                            Cell::Bit(true),
                            s.last_copied_file.clone().into(),
                            Cell::Null,
                            Cell::Null,
                            d.last_restored_file
                                .clone()
                                .or_else(|| h.map(|h| h.path.clone()))
                                .into(),
                            when.clone(),
                            when,
                            Cell::Null,
                            Cell::Int(5760),
                        ])
                    })
                    .collect(),
            }
        }
    }
}
