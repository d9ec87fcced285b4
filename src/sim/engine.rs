//! The statement engine: the shared server state (persistent `SimState` plus live connections)
//! and the execution of the server, session and KILL statements (msdb ones are in `msdb`, the
//! RESTORE ones, which stream, in `restore`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::state::{self, DbState, Returning, SimState, StateError, UserSession};
use super::tds::rpc::Value;
use super::tds::tokens::{col, Cell, ColType as T, ResultSet, Tokens};

pub const PRODUCT_VERSION: &str = "13.0.5081.1";

/// A server message (ERROR or INFO) with SQL Server's number, state, class and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub number: u32,
    pub state: u8,
    pub class: u8,
    pub text: String,
}

pub fn msg(number: u32, state: u8, class: u8, text: impl Into<String>) -> Msg {
    Msg {
        number,
        state,
        class,
        text: text.into(),
    }
}

/// 3013, the message that follows every failed RESTORE.
pub fn terminating(what: &str) -> Msg {
    msg(3013, 1, 16, format!("{what} is terminating abnormally."))
}

/// A live client connection, as other connections see it.
pub struct ConnInfo {
    pub database: String,
    pub login: String,
    pub host: String,
    pub program: String,
    pub kill: CancellationToken,
    /// The running request: command name and percent complete.
    pub request: Option<(String, f32)>,
}

/// Everything the connections share.
pub struct Shared {
    pub dir: PathBuf,
    state: Mutex<SimState>,
    pub conns: Mutex<HashMap<u16, ConnInfo>>,
    /// Databases with a RESTORE running (a second one gets 3101).
    pub busy: Mutex<Vec<String>>,
}

impl Shared {
    pub fn open(dir: PathBuf) -> Result<Arc<Shared>, StateError> {
        let st = state::load(&dir)?;
        let returning = st.returning.clone();
        let shared = Arc::new(Shared {
            dir,
            state: Mutex::new(st),
            conns: Mutex::new(HashMap::new()),
            busy: Mutex::new(Vec::new()),
        });
        // Sessions killed before a restart still come back.
        for r in returning {
            tokio::spawn(return_later(Arc::clone(&shared), r));
        }
        Ok(shared)
    }

    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn conns(&self) -> MutexGuard<'_, HashMap<u16, ConnInfo>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a change and persists it before returning (the answer goes out after this).
    pub fn mutate<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> Result<R, Msg> {
        let mut st = self.state();
        let r = f(&mut st);
        state::save(&self.dir, &mut st)
            .map_err(|e| msg(50000, 1, 16, format!("logship sim: saving state: {e}")))?;
        Ok(r)
    }

    pub fn new_spid(&self) -> u16 {
        let conns = self.conns();
        let mut st = self.state();
        st.alloc_spid(&|id| conns.contains_key(&id))
    }
}

/// What a statement sends back on success: rows counted for DONE, and whether it was a SELECT.
pub struct Done {
    pub rows: Option<u64>,
    pub select: bool,
}

pub(super) fn rows(rs: ResultSet, out: &mut Tokens) -> Done {
    out.result_set(&rs);
    Done {
        rows: Some(rs.rows.len() as u64),
        select: true,
    }
}

fn none() -> Done {
    Done {
        rows: None,
        select: false,
    }
}

/// The connection executing a statement.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub spid: u16,
    pub database: &'a mut String,
}

fn db_id(st: &SimState, name: &str) -> Option<i64> {
    st.db(name).map(|d| d.id)
}

fn version_string(server: &str) -> String {
    format!(
        "Microsoft SQL Server 2016 (SP2-CU17) (KB5001092) - {PRODUCT_VERSION} (X64) \n\tMar 11 2021 \n\t\
         logship simulated secondary on {server}\n"
    )
}

fn nv(n: u16) -> T {
    T::NVarChar(n)
}

/// Session ids of the database `db`'s sessions other than `me`: simulated users and connections.
pub fn sessions_in(shared: &Shared, db: &str, me: u16) -> Vec<u16> {
    let mut ids: Vec<u16> = shared
        .state()
        .sessions
        .iter()
        .filter(|s| s.database.eq_ignore_ascii_case(db))
        .map(|s| s.spid)
        .collect();
    ids.extend(
        shared
            .conns()
            .iter()
            .filter(|(id, c)| **id != me && c.database.eq_ignore_ascii_case(db))
            .map(|(id, _)| *id),
    );
    ids.sort_unstable();
    ids
}

pub fn exec_simple(
    cx: &mut Ctx<'_>,
    stmt: &super::sql::Statement,
    out: &mut Tokens,
) -> Result<Done, Vec<Msg>> {
    use super::sql::Statement as S;
    let shared = cx.shared;
    match stmt {
        S::Version => {
            let v = version_string(&shared.state().server_name);
            Ok(rows(
                ResultSet {
                    columns: vec![col("", nv(300))],
                    rows: vec![vec![v.into()]],
                },
                out,
            ))
        }
        S::Spid => Ok(rows(
            ResultSet {
                columns: vec![col("", T::SmallInt)],
                rows: vec![vec![Cell::Int(cx.spid as i64)]],
            },
            out,
        )),
        S::Now { datetime2 } => {
            // The simulated server's clock is UTC.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let ty = if *datetime2 {
                T::DateTime2
            } else {
                T::DateTime
            };
            let cell = Cell::Time(now.as_secs() as i64, now.subsec_nanos());
            Ok(rows(
                ResultSet {
                    columns: vec![col("", ty)],
                    rows: vec![vec![cell]],
                },
                out,
            ))
        }
        S::SelectOne(n) => Ok(rows(
            ResultSet {
                columns: vec![col("", T::Int)],
                rows: vec![vec![Cell::Int(*n)]],
            },
            out,
        )),
        S::ServerProperty(p) => {
            let server = shared.state().server_name.clone();
            let v: Option<String> = match p.to_ascii_lowercase().as_str() {
                "productversion" => Some(PRODUCT_VERSION.into()),
                "servername" => Some(server.clone()),
                "machinename" => Some(server.split('\\').next().unwrap_or(&server).to_string()),
                "edition" => Some("Enterprise Edition (64-bit)".into()),
                "productlevel" => Some("SP2".into()),
                "engineedition" => Some("3".into()),
                _ => None,
            };
            Ok(rows(
                ResultSet {
                    columns: vec![col("", T::NVarChar(128))],
                    rows: vec![vec![v.into()]],
                },
                out,
            ))
        }
        S::Set => Ok(none()),
        S::Use(db) => {
            let st = shared.state();
            let Some(d) = st.db(db) else {
                return Err(vec![msg(911, 1, 16, format!("Database '{db}' does not exist. Make sure that the name is entered correctly."))]);
            };
            if d.state == DbState::Restoring {
                return Err(vec![msg(
                    927,
                    2,
                    14,
                    format!(
                        "Database '{}' cannot be opened. It is in the middle of a restore.",
                        d.name
                    ),
                )]);
            }
            let (new, old) = (d.name.clone(), cx.database.clone());
            drop(st);
            out.env_change(1, &new, &old);
            out.info(
                5701,
                1,
                0,
                &format!("Changed database context to '{new}'."),
                "",
            );
            *cx.database = new.clone();
            if let Some(c) = shared.conns().get_mut(&cx.spid) {
                c.database = new;
            }
            Ok(none())
        }
        S::Databases { name, star } => {
            let st = shared.state();
            let dbs = st
                .databases
                .iter()
                .filter(|d| name.as_ref().is_none_or(|n| d.name.eq_ignore_ascii_case(n)));
            let rs = if *star {
                ResultSet {
                    columns: vec![
                        col("name", nv(128)),
                        col("database_id", T::Int),
                        col("state", T::TinyInt),
                        col("state_desc", nv(60)),
                        col("is_in_standby", T::Bit),
                        col("is_read_only", T::Bit),
                        col("recovery_model_desc", nv(60)),
                    ],
                    rows: dbs
                        .map(|d| {
                            vec![
                                d.name.clone().into(),
                                Cell::Int(d.id),
                                Cell::Int(d.state.code()),
                                d.state.desc().into(),
                                Cell::Bit(d.state == DbState::Standby),
                                Cell::Bit(d.state == DbState::Standby),
                                if d.id == 2 || d.id == 1 || d.id == 4 {
                                    "SIMPLE"
                                } else {
                                    "FULL"
                                }
                                .into(),
                            ]
                        })
                        .collect(),
                }
            } else {
                ResultSet {
                    columns: vec![
                        col("name", nv(128)),
                        col("state_desc", nv(60)),
                        col("is_in_standby", T::Bit),
                    ],
                    rows: dbs
                        .map(|d| {
                            vec![
                                d.name.clone().into(),
                                d.state.desc().into(),
                                Cell::Bit(d.state == DbState::Standby),
                            ]
                        })
                        .collect(),
                }
            };
            Ok(rows(rs, out))
        }
        S::MasterFiles(db) => {
            let st = shared.state();
            let rows_ = st
                .db(db)
                .map(|d| {
                    let restoring = d.state != DbState::Online;
                    vec![
                        d.redo_start_lsn
                            .filter(|_| restoring)
                            .map_or(Cell::Null, |l| Cell::Numeric(l.to_decimal())),
                        d.redo_start_fork_guid
                            .filter(|_| restoring)
                            .map_or(Cell::Null, Cell::Guid),
                    ]
                })
                .into_iter()
                .collect();
            Ok(rows(
                ResultSet {
                    columns: vec![
                        col("redo_start_lsn", T::Numeric(25)),
                        col("redo_start_fork_guid", T::Guid),
                    ],
                    rows: rows_,
                },
                out,
            ))
        }
        S::Sessions(db) => {
            let ids = if db_id(&shared.state(), db).is_some() {
                sessions_in(shared, db, cx.spid)
            } else {
                Vec::new()
            };
            Ok(rows(
                ResultSet {
                    columns: vec![col("session_id", T::SmallInt)],
                    rows: ids.into_iter().map(|i| vec![Cell::Int(i as i64)]).collect(),
                },
                out,
            ))
        }
        S::Requests(v) => {
            let id = v.as_int().unwrap_or(-1);
            let conns = shared.conns();
            let row = u16::try_from(id).ok().and_then(|id| {
                let c = conns.get(&id)?;
                let (cmd, pct) = c
                    .request
                    .clone()
                    .unwrap_or(("AWAITING COMMAND".into(), 0.0));
                Some(vec![Cell::Int(id as i64), cmd.into(), Cell::Real(pct)])
            });
            Ok(rows(
                ResultSet {
                    columns: vec![
                        col("session_id", T::SmallInt),
                        col("command", nv(32)),
                        col("percent_complete", T::Real),
                    ],
                    rows: row.into_iter().collect(),
                },
                out,
            ))
        }
        S::Kill(v) => kill(cx, v),
        S::Who2 => Ok(rows(who2(shared), out)),
        S::LogShippingJoin(_)
        | S::LsTable(_)
        | S::Job(_)
        | S::UpdateJob { .. }
        | S::DeleteSecondary(_) => super::msdb::exec(shared, stmt, out),
        S::HeaderOnly(_) | S::RestoreLog { .. } | S::Recover(_) => {
            unreachable!("restore statements run in restore.rs")
        }
    }
}

fn kill(cx: &mut Ctx<'_>, v: &Value) -> Result<Done, Vec<Msg>> {
    let shared = cx.shared;
    let Some(id) = v.as_int() else {
        return Err(vec![msg(
            102,
            1,
            15,
            format!(
                "Incorrect syntax near '{}'.",
                v.as_text().unwrap_or_default()
            ),
        )]);
    };
    if id == cx.spid as i64 {
        return Err(vec![msg(
            6104,
            1,
            16,
            "Cannot use KILL to kill your own process.",
        )]);
    }
    if !(1..=32767).contains(&id) {
        return Err(vec![msg(
            6106,
            2,
            16,
            format!("Process ID {id} is not an active process ID."),
        )]);
    }
    let id = id as u16;
    if let Some(c) = shared.conns().get(&id) {
        c.kill.cancel();
        return Ok(none());
    }
    let killed: Option<UserSession> = shared
        .mutate(|st| {
            st.sessions
                .iter()
                .position(|s| s.spid == id)
                .map(|p| st.sessions.remove(p))
        })
        .map_err(|e| vec![e])?;
    match killed {
        None => Err(vec![msg(
            6106,
            2,
            16,
            format!("Process ID {id} is not an active process ID."),
        )]),
        Some(s) => {
            if s.reconnect {
                let r = shared
                    .mutate(|st| {
                        let r = Returning {
                            database: s.database.clone(),
                            due_unix_ms: state::now_unix_ms() + st.reconnect_after_ms,
                        };
                        st.returning.push(r.clone());
                        r
                    })
                    .map_err(|e| vec![e])?;
                tokio::spawn(return_later(Arc::clone(shared), r));
            }
            Ok(none())
        }
    }
}

/// Brings a killed session back under a new id when it is due.
async fn return_later(shared: Arc<Shared>, r: Returning) {
    let wait = r.due_unix_ms.saturating_sub(state::now_unix_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let conns: Vec<u16> = shared.conns().keys().copied().collect();
    let _ = shared.mutate(|st| {
        let Some(p) = st.returning.iter().position(|x| *x == r) else {
            return;
        };
        st.returning.remove(p);
        let spid = st.alloc_spid(&|id| conns.contains(&id));
        st.sessions.push(UserSession {
            spid,
            database: r.database.clone(),
            reconnect: true,
        });
    });
}

/// `sp_who2`'s columns; simulated users show as sleeping application sessions.
fn who2(shared: &Shared) -> ResultSet {
    let mut list: Vec<(u16, Vec<Cell>)> = Vec::new();
    for (id, c) in shared.conns().iter() {
        let (status, cmd) = match &c.request {
            Some((cmd, _)) => ("RUNNABLE", cmd.clone()),
            None => ("sleeping", "AWAITING COMMAND".to_string()),
        };
        list.push((
            *id,
            who2_row(
                *id,
                status,
                &c.login,
                &c.host,
                &c.database,
                &cmd,
                &c.program,
            ),
        ));
    }
    for s in &shared.state().sessions {
        list.push((
            s.spid,
            who2_row(
                s.spid,
                "sleeping",
                "app",
                "APPSRV",
                &s.database,
                "AWAITING COMMAND",
                "Lync Persistent Chat",
            ),
        ));
    }
    list.sort_by_key(|(id, _)| *id);
    let nv = T::NVarChar;
    ResultSet {
        columns: vec![
            col("SPID", nv(10)),
            col("Status", nv(30)),
            col("Login", nv(128)),
            col("HostName", nv(128)),
            col("BlkBy", nv(10)),
            col("DBName", nv(128)),
            col("Command", nv(32)),
            col("CPUTime", T::Int),
            col("DiskIO", T::BigInt),
            col("LastBatch", nv(20)),
            col("ProgramName", nv(128)),
            col("SPID", nv(10)),
            col("REQUESTID", T::Int),
        ],
        rows: list.into_iter().map(|(_, r)| r).collect(),
    }
}

fn who2_row(
    id: u16,
    status: &str,
    login: &str,
    host: &str,
    db: &str,
    cmd: &str,
    program: &str,
) -> Vec<Cell> {
    vec![
        format!("{id:<5}").into(),
        status.into(),
        login.into(),
        host.into(),
        "  .".into(),
        db.into(),
        cmd.into(),
        Cell::Int(0),
        Cell::Int(0),
        "".into(),
        program.into(),
        format!("{id:<5}").into(),
        Cell::Int(0),
    ]
}
