//! The TCP side: accepting connections, the PRELOGIN/LOGIN7 handshake, reading requests while
//! a statement runs (so ATTENTION and a closed socket are seen mid-restore), and framing the
//! answers at the negotiated packet size.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::engine::{self, msg, ConnInfo, Ctx, Done, Msg, Shared};
use super::restore::{self, Outcome};
use super::sql::{self, SqlError, Statement};
use super::tds::login::{parse_login7, parse_prelogin, prelogin_response};
use super::tds::packet::{self, Message};
use super::tds::rpc::{self, Value};
use super::tds::tokens::{self, Tokens, DONE_ATTN, DONE_COUNT, DONE_ERROR, DONE_MORE};

/// At most this many connections at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a stopping simulator waits for its sessions to end.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// A client must finish PRELOGIN and LOGIN7 within this time.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a running statement stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Attention,
    Gone,
}

/// One logged-in connection.
pub struct Conn {
    pub shared: Arc<Shared>,
    pub spid: u16,
    pub database: String,
    pub tokens: Tokens,
    packet_size: usize,
    packet_id: u8,
    writer: OwnedWriteHalf,
    attn: Arc<AtomicBool>,
    attn_wake: Arc<Notify>,
    /// The socket closed or the session was killed.
    gone: CancellationToken,
    /// ATTENTIONs already answered, whose messages are still queued.
    attn_answered: usize,
}

impl Conn {
    pub fn info(&mut self, number: u32, state: u8, text: &str) {
        let server = self.shared.state().server_name.clone();
        self.tokens.info(number, state, 0, text, &server);
    }

    fn errors(&mut self, msgs: &[Msg]) {
        let server = self.shared.state().server_name.clone();
        for m in msgs {
            self.tokens
                .error(m.number, m.state, m.class, &m.text, &server);
        }
    }

    /// Sends what is buffered now, as non-final packets (progress messages of a long restore).
    pub async fn flush_partial(&mut self) -> std::io::Result<()> {
        let bytes = packet::frame(
            &self.tokens.buf,
            self.packet_size,
            false,
            &mut self.packet_id,
        );
        self.tokens.buf.clear();
        packet::write_all(&mut self.writer, &bytes).await
    }

    async fn flush_final(&mut self) -> std::io::Result<()> {
        let slow = self.shared.state().faults.slow_ms;
        if slow > 0 {
            tokio::time::sleep(Duration::from_millis(slow)).await;
        }
        let bytes = packet::frame(
            &self.tokens.buf,
            self.packet_size,
            true,
            &mut self.packet_id,
        );
        self.tokens.buf.clear();
        packet::write_all(&mut self.writer, &bytes).await
    }

    /// Resolves when ATTENTION arrives or the connection goes away.
    pub async fn stopped(&self) -> Stop {
        loop {
            if self.gone.is_cancelled() {
                return Stop::Gone;
            }
            if self.attn.load(Ordering::SeqCst) {
                return Stop::Attention;
            }
            tokio::select! {
                _ = self.gone.cancelled() => return Stop::Gone,
                _ = self.attn_wake.notified() => {}
            }
        }
    }

    pub fn set_request(&self, r: Option<(String, f32)>) {
        if let Some(c) = self.shared.conns().get_mut(&self.spid) {
            c.request = r;
        }
    }

    /// Runs one request (batch or RPC) and answers it. `Err` ends the connection.
    async fn run(
        &mut self,
        stmts: Result<Vec<Statement>, Vec<Msg>>,
        rpc: bool,
    ) -> Result<(), Stop> {
        let inner = if rpc { 0xff } else { 0xfd };
        let stmts = match stmts {
            Ok(s) => s,
            Err(msgs) => {
                self.errors(&msgs);
                self.finish(rpc, true, inner);
                return self.flush_final().await.map_err(|_| Stop::Gone);
            }
        };
        let n = stmts.len();
        let mut failed = false;
        for (i, st) in stmts.iter().enumerate() {
            let last = i + 1 == n;
            let outcome = self.exec(st).await;
            match outcome {
                Outcome::Ok(Done { rows, select }) => {
                    let status = if rows.is_some() { DONE_COUNT } else { 0 }
                        | if !last || rpc { DONE_MORE } else { 0 };
                    let cmd = if select { tokens::CMD_SELECT } else { 0 };
                    self.tokens.done(inner, status, cmd, rows.unwrap_or(0));
                }
                Outcome::Err(msgs) => {
                    self.errors(&msgs);
                    failed = true;
                    if rpc {
                        self.tokens.done(inner, DONE_ERROR | DONE_MORE, 0, 0);
                    } else {
                        self.tokens.done(inner, DONE_ERROR, 0, 0);
                    }
                    break;
                }
                Outcome::Attention => {
                    self.tokens.buf.clear();
                    self.tokens.done(0xfd, DONE_ATTN, 0, 0);
                    self.attn.store(false, Ordering::SeqCst);
                    self.attn_answered += 1;
                    return self.flush_final().await.map_err(|_| Stop::Gone);
                }
                Outcome::Gone => return Err(Stop::Gone),
            }
        }
        if rpc {
            self.finish(true, failed, inner);
        } else if n == 0 {
            self.tokens.done(0xfd, 0, 0, 0);
        }
        self.flush_final().await.map_err(|_| Stop::Gone)
    }

    fn finish(&mut self, rpc: bool, failed: bool, inner: u8) {
        if rpc {
            self.tokens.return_status(if failed { 1 } else { 0 });
            self.tokens
                .done(0xfe, if failed { DONE_ERROR } else { 0 }, 0, 0);
        } else {
            self.tokens.done(inner, DONE_ERROR, 0, 0);
        }
    }

    async fn exec(&mut self, st: &Statement) -> Outcome {
        match st {
            Statement::HeaderOnly(p) => restore::header_only(self, p).await,
            Statement::RestoreLog { db, path, opts } => {
                restore::restore_log(self, db, path, opts).await
            }
            Statement::Recover(db) => restore::recover(self, db).await,
            _ => {
                let shared = Arc::clone(&self.shared);
                let mut database = self.database.clone();
                let mut cx = Ctx {
                    shared: &shared,
                    spid: self.spid,
                    database: &mut database,
                };
                let r = engine::exec_simple(&mut cx, st, &mut self.tokens);
                self.database = database;
                match r {
                    Ok(d) => Outcome::Ok(d),
                    Err(m) => Outcome::Err(m),
                }
            }
        }
    }
}

fn sql_error(e: SqlError) -> Msg {
    match e {
        SqlError::Unclosed(_) => msg(105, 1, 15, e.to_string()),
        SqlError::UndeclaredVar(_) => msg(137, 2, 15, e.to_string()),
        SqlError::Unsupported(s) => msg(
            102,
            1,
            15,
            format!(
                "Incorrect syntax near '{}'. logship sim does not support this statement: {s}",
                s.split(' ').next().unwrap_or("")
            ),
        ),
    }
}

/// The statements of an RPC request: `sp_executesql` (id 10 or by name) with its parameters.
fn rpc_statements(payload: &[u8]) -> Result<Vec<Statement>, Vec<Msg>> {
    let call = rpc::parse_rpc(payload).map_err(|e| vec![msg(8009, 1, 16, format!("The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. {e}"))])?;
    let is_exec_sql = call.proc_id == Some(10)
        || call.proc_name.as_deref().is_some_and(|n| {
            n.rsplit('.')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("sp_executesql"))
        });
    if !is_exec_sql {
        if let Some(st) = call
            .proc_name
            .as_deref()
            .and_then(|n| procedure_call(n, &call.params))
        {
            return Ok(vec![st]);
        }
        let name = call
            .proc_name
            .unwrap_or_else(|| format!("#{}", call.proc_id.unwrap_or(0)));
        return Err(vec![msg(
            2812,
            62,
            16,
            format!("Could not find stored procedure '{name}'."),
        )]);
    }
    let mut it = call.params.into_iter();
    let text = it.next().and_then(|(_, v)| v.as_text()).unwrap_or_default();
    let decl = it.next().and_then(|(_, v)| v.as_text()).unwrap_or_default();
    let declared = sql::declared_names(&decl);
    let mut params: HashMap<String, Value> = HashMap::new();
    for (k, (name, v)) in it.enumerate() {
        let key = if name.is_empty() {
            declared.get(k).cloned().unwrap_or_default()
        } else {
            name.to_lowercase()
        };
        params.insert(key, v);
    }
    sql::parse_batch(&text, &params).map_err(|e| vec![sql_error(e)])
}

/// The two procedures an operator's client may call by name over RPC (python-tds `callproc`),
/// with named or positional parameters.
fn procedure_call(name: &str, params: &[(String, Value)]) -> Option<Statement> {
    let arg = |key: &str, pos: usize| -> Option<Value> {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(key))
            .or_else(|| params.get(pos).filter(|(n, _)| n.is_empty()))
            .map(|(_, v)| v.clone())
    };
    match name
        .rsplit('.')
        .next()?
        .trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase()
        .as_str()
    {
        "sp_delete_log_shipping_secondary_database" => Some(Statement::DeleteSecondary(
            arg("@secondary_database", 0)?.as_text()?,
        )),
        "sp_update_job" => Some(Statement::UpdateJob {
            job: arg("@job_id", 0)?,
            enabled: arg("@enabled", 1)?,
        }),
        _ => None,
    }
}

fn batch_statements(payload: &[u8]) -> Result<Vec<Statement>, Vec<Msg>> {
    let text = rpc::parse_batch(payload).map_err(|e| vec![msg(8009, 1, 16, e.to_string())])?;
    sql::parse_batch(&text, &HashMap::new()).map_err(|e| vec![sql_error(e)])
}

/// Accepts connections until `shutdown` resolves, then ends every session and waits for them
/// (at most `SHUTDOWN_WAIT`), so nothing writes the state folder after it returns.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    let stop_all = CancellationToken::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            acc = listener.accept() => {
                let (sock, peer) = match acc {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                    tracing::warn!(%peer, "too many connections: refused");
                    drop(sock);
                    continue;
                };
                let shared = Arc::clone(&shared);
                let stop = stop_all.child_token();
                tokio::spawn(async move {
                    let _ = sock.set_nodelay(true);
                    if let Err(e) = connection(sock, shared, stop).await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    drop(permit);
                });
            }
        }
    }
    stop_all.cancel();
    // Each connection holds a permit until its task ends: having them all back means no session
    // is still finishing a statement, so nothing writes the state folder after `serve` returns
    // (a caller may remove the folder next). Bounded, so a stuck session cannot hold up the stop.
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, limit.acquire_many(MAX_CONNECTIONS as u32)).await;
    Ok(())
}

async fn connection(
    sock: TcpStream,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = sock.into_split();
    // Handshake: PRELOGIN (optional) then LOGIN7, within LOGIN_TIMEOUT; a stopping server ends it.
    let handshake = tokio::time::timeout(LOGIN_TIMEOUT, async {
        let mut id = 1u8;
        loop {
            let Some(m) = packet::read_message(&mut rd).await? else {
                return Ok(None);
            };
            match m.ty {
                packet::TYPE_PRELOGIN => {
                    parse_prelogin(&m.payload).map_err(invalid)?;
                    let out = packet::frame(&prelogin_response(), 4096, true, &mut id);
                    packet::write_all(&mut wr, &out).await?;
                }
                packet::TYPE_LOGIN7 => return Ok(Some(parse_login7(&m.payload).map_err(invalid)?)),
                t => return Err(invalid(format!("message type {t} before login"))),
            }
        }
    });
    let login = tokio::select! {
        r = handshake => r.map_err(|_| invalid("login timeout"))??,
        _ = stop.cancelled() => None,
    };
    let Some(login) = login else { return Ok(()) };

    let (server, ok, db_ok) = {
        let st = shared.state();
        let db = if login.database.is_empty() {
            "master".to_string()
        } else {
            login.database.clone()
        };
        let db_state = st.db(&db).map(|d| (d.name.clone(), d.state));
        (
            st.server_name.clone(),
            login.username.eq_ignore_ascii_case(&st.login) && st.password_ok(&login.password),
            db_state,
        )
    };
    let mut t = Tokens::default();
    let mut id = 1u8;
    if !ok || login.sspi {
        t.error(
            18456,
            1,
            14,
            &format!("Login failed for user '{}'.", login.username),
            &server,
        );
        t.done(0xfd, DONE_ERROR, 0, 0);
        packet::write_all(&mut wr, &packet::frame(&t.buf, 4096, true, &mut id)).await?;
        return Ok(());
    }
    let database = match db_ok {
        Some((name, super::state::DbState::Online | super::state::DbState::Standby)) => name,
        _ => {
            let db = &login.database;
            t.error(
                4060,
                1,
                11,
                &format!("Cannot open database \"{db}\" requested by the login. The login failed."),
                &server,
            );
            t.error(
                18456,
                1,
                14,
                &format!("Login failed for user '{}'.", login.username),
                &server,
            );
            t.done(0xfd, DONE_ERROR, 0, 0);
            packet::write_all(&mut wr, &packet::frame(&t.buf, 4096, true, &mut id)).await?;
            return Ok(());
        }
    };
    let packet_size = match login.packet_size {
        0 => 4096,
        n => n.clamp(512, 32767) as usize,
    };
    let tds_version = match login.tds_version {
        v @ (0x7209_0002 | 0x730a_0003 | 0x730b_0003 | 0x7400_0004) => v,
        _ => tokens::TDS_74,
    };
    t.env_change(1, &database, "master");
    t.info(
        5701,
        2,
        0,
        &format!("Changed database context to '{database}'."),
        &server,
    );
    t.env_collation();
    t.env_change(2, "us_english", "");
    t.info(
        5703,
        1,
        0,
        "Changed language setting to us_english.",
        &server,
    );
    t.login_ack(tds_version);
    t.env_change(4, &packet_size.to_string(), "4096");
    t.done(0xfd, 0, 0, 0);
    packet::write_all(&mut wr, &packet::frame(&t.buf, 4096, true, &mut id)).await?;

    let spid = shared.new_spid();
    let kill = stop.child_token();
    shared.conns().insert(
        spid,
        ConnInfo {
            database: database.clone(),
            login: login.username.clone(),
            host: login.hostname.clone(),
            program: login.app_name.clone(),
            kill: kill.clone(),
            request: None,
        },
    );
    let attn = Arc::new(AtomicBool::new(false));
    let attn_wake = Arc::new(Notify::new());
    let gone = kill.child_token();
    let (tx, mut rx) = mpsc::channel::<Message>(8);
    let reader = {
        let (attn, attn_wake, gone) = (Arc::clone(&attn), Arc::clone(&attn_wake), gone.clone());
        tokio::spawn(async move {
            while let Ok(Some(m)) = packet::read_message(&mut rd).await {
                if m.ty == packet::TYPE_ATTENTION {
                    attn.store(true, Ordering::SeqCst);
                    attn_wake.notify_one();
                }
                if tx.send(m).await.is_err() {
                    break;
                }
            }
            gone.cancel();
        })
    };
    let mut conn = Conn {
        shared: Arc::clone(&shared),
        spid,
        database,
        tokens: Tokens::default(),
        packet_size,
        packet_id: id,
        writer: wr,
        attn,
        attn_wake,
        gone: gone.clone(),
        attn_answered: 0,
    };
    let result = serve_requests(&mut conn, &mut rx).await;
    shared.conns().remove(&spid);
    reader.abort();
    let _ = conn.writer.shutdown().await;
    result
}

async fn serve_requests(conn: &mut Conn, rx: &mut mpsc::Receiver<Message>) -> std::io::Result<()> {
    loop {
        let m = tokio::select! {
            m = rx.recv() => m,
            _ = conn.gone.cancelled() => None,
        };
        let Some(m) = m else { return Ok(()) };
        let r = match m.ty {
            packet::TYPE_SQL_BATCH => conn.run(batch_statements(&m.payload), false).await,
            packet::TYPE_RPC => conn.run(rpc_statements(&m.payload), true).await,
            packet::TYPE_ATTENTION => {
                if conn.attn_answered > 0 {
                    conn.attn_answered -= 1;
                } else {
                    // Nothing was running: acknowledge all the same, as SQL Server does.
                    conn.attn.store(false, Ordering::SeqCst);
                    conn.tokens.done(0xfd, DONE_ATTN, 0, 0);
                    if conn.flush_final().await.is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            }
            packet::TYPE_TRANSACTION_MANAGER => {
                // Transactions are not simulated: acknowledge so clients that begin one at connect
                // (python-tds without autocommit) can go on.
                conn.tokens.done(0xfd, 0, 0, 0);
                conn.flush_final().await.map_err(|_| Stop::Gone)
            }
            t => return Err(invalid(format!("unexpected message type {t}"))),
        };
        if r.is_err() {
            return Ok(());
        }
    }
}

fn invalid(e: impl ToString) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}
