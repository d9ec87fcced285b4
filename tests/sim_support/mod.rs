//! Shared helpers for the simulator's integration tests: an in-process server on 127.0.0.1:0,
//! a tiberius client, and a raw TDS client that sees every packet (INFO messages, ATTENTION).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use logship::lsn::Lsn;
use logship::sim::state::{self, Scenario};
use logship::sim::tds::login::build_login7;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub const PASSWORD: &str = "s1m-Secret!";
pub const REDO: Lsn = Lsn::new(39, 488, 71);

pub fn scenario() -> Scenario {
    Scenario::new(
        "mgc",
        REDO,
        r"\\backupsrv\mgc_logship",
        r"D:\LSCopy\mgc",
        PASSWORD,
    )
}

/// A running simulator; stops when dropped.
pub struct Sim {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    pub async fn start(dir: &Path) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let d = dir.to_path_buf();
        let task = tokio::spawn(async move {
            logship::sim::serve(listener, d, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Sim {
            addr,
            dir: dir.to_path_buf(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn with(sc: &Scenario) -> (Sim, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        state::init(dir.path(), sc).unwrap();
        (Sim::start(dir.path()).await, dir)
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }

    pub fn state(&self) -> logship::sim::SimState {
        state::load(&self.dir).unwrap()
    }

    pub async fn client(&self) -> Client<Compat<TcpStream>> {
        self.client_as("failover", PASSWORD).await.unwrap()
    }

    pub async fn client_as(
        &self,
        user: &str,
        pw: &str,
    ) -> tiberius::Result<Client<Compat<TcpStream>>> {
        let mut config = Config::new();
        config.host("127.0.0.1");
        config.port(self.addr.port());
        config.authentication(AuthMethod::sql_server(user, pw));
        config.encryption(EncryptionLevel::NotSupported);
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        Client::connect(config, tcp.compat_write()).await
    }
}

/// A server message as the raw client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMsg {
    pub error: bool,
    pub number: u32,
    pub class: u8,
    pub text: String,
    /// Index of the packet it arrived in, and whether that packet ended the response.
    pub packet: usize,
    pub in_last_packet: bool,
}

/// What the raw client read of one response.
#[derive(Debug, Default)]
pub struct RawResponse {
    pub msgs: Vec<RawMsg>,
    pub done_status: Vec<u16>,
    pub packets: usize,
}

/// A minimal TDS client: PRELOGIN, LOGIN7, SQL batches, ATTENTION; parses only the tokens
/// of statements without result sets.
pub struct Raw {
    pub s: TcpStream,
}

pub fn packet(ty: u8, status: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, status];
    v.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0, 1, 0]);
    v.extend_from_slice(body);
    v
}

pub fn batch_payload(sql: &str) -> Vec<u8> {
    let mut b = vec![22, 0, 0, 0, 18, 0, 0, 0, 2, 0];
    b.extend([0u8; 8]);
    b.extend([1, 0, 0, 0]);
    b.extend(sql.encode_utf16().flat_map(|u| u.to_le_bytes()));
    b
}

pub fn prelogin_payload() -> Vec<u8> {
    // VERSION, ENCRYPTION (NOT_SUP), terminator
    let mut b = vec![0, 0, 11, 0, 6, 1, 0, 17, 0, 1, 0xff];
    b.extend([0x0f, 0, 0x07, 0xd0, 0, 0]);
    b.push(2);
    b
}

impl Raw {
    pub async fn login(addr: SocketAddr, user: &str, pw: &str) -> (Raw, RawResponse) {
        Raw::login_sized(addr, user, pw, 4096).await
    }

    pub async fn login_sized(
        addr: SocketAddr,
        user: &str,
        pw: &str,
        packet_size: u32,
    ) -> (Raw, RawResponse) {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut raw = Raw { s };
        raw.send(18, &prelogin_payload()).await;
        let (_, _) = raw.read_message().await.expect("prelogin answer");
        raw.send(16, &build_login7(user, pw, "master", packet_size))
            .await;
        let r = raw.response().await.expect("login answer");
        (raw, r)
    }

    pub async fn send(&mut self, ty: u8, body: &[u8]) {
        self.s.write_all(&packet(ty, 1, body)).await.unwrap();
    }

    pub async fn batch(&mut self, sql: &str) {
        self.send(1, &batch_payload(sql)).await;
    }

    pub async fn attention(&mut self) {
        self.s.write_all(&packet(6, 1, &[])).await.unwrap();
    }

    /// Reads one packet: (status, payload). None at end of stream.
    pub async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 8];
        self.s.read_exact(&mut h).await.ok()?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut body = vec![0u8; len - 8];
        self.s.read_exact(&mut body).await.ok()?;
        Some((h[1], body))
    }

    pub async fn read_message(&mut self) -> Option<(usize, Vec<u8>)> {
        let mut all = Vec::new();
        let mut n = 0;
        loop {
            let (st, b) = self.read_packet().await?;
            n += 1;
            all.extend(b);
            if st & 1 != 0 {
                return Some((n, all));
            }
        }
    }

    /// Reads packets until the end of the response, parsing tokens as they come.
    pub async fn response(&mut self) -> Option<RawResponse> {
        let mut r = RawResponse::default();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let (st, b) = self.read_packet().await?;
            let last = st & 1 != 0;
            buf.extend(b);
            let first_new = r.msgs.len();
            let used = parse_tokens(&buf, r.packets, &mut r);
            buf.drain(..used);
            for m in &mut r.msgs[first_new..] {
                m.in_last_packet = last;
            }
            r.packets += 1;
            if last {
                return Some(r);
            }
        }
    }
}

/// Parses whole tokens of `b` (INFO, ERROR, ENVCHANGE, LOGINACK, DONE*, RETURNSTATUS); returns
/// the bytes used.
fn parse_tokens(b: &[u8], packet: usize, r: &mut RawResponse) -> usize {
    let mut i = 0;
    while i < b.len() {
        let t = b[i];
        match t {
            0xaa | 0xab | 0xe3 | 0xad => {
                if i + 3 > b.len() {
                    break;
                }
                let len = u16::from_le_bytes([b[i + 1], b[i + 2]]) as usize;
                if i + 3 + len > b.len() {
                    break;
                }
                let body = &b[i + 3..i + 3 + len];
                if t == 0xaa || t == 0xab {
                    let number = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                    let class = body[5];
                    let n = u16::from_le_bytes([body[6], body[7]]) as usize;
                    let units: Vec<u16> = body[8..8 + 2 * n]
                        .chunks(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    r.msgs.push(RawMsg {
                        error: t == 0xaa,
                        number,
                        class,
                        text: String::from_utf16_lossy(&units),
                        packet,
                        in_last_packet: false,
                    });
                }
                i += 3 + len;
            }
            0xfd..=0xff => {
                if i + 13 > b.len() {
                    break;
                }
                r.done_status.push(u16::from_le_bytes([b[i + 1], b[i + 2]]));
                i += 13;
            }
            0x79 => {
                if i + 5 > b.len() {
                    break;
                }
                i += 5;
            }
            other => panic!("raw client: unexpected token 0x{other:02x}"),
        }
    }
    i
}

/// Rows of a query as strings (NULL as "NULL"), for compact assertions.
pub async fn rows(
    c: &mut Client<Compat<TcpStream>>,
    sql: &str,
    params: &[&dyn tiberius::ToSql],
) -> Vec<Vec<String>> {
    let rows = c
        .query(sql, params)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.cells().map(|(_, v)| cell_text(v)).collect())
        .collect()
}

pub fn cell_text(v: &tiberius::ColumnData<'_>) -> String {
    use tiberius::ColumnData as C;
    match v {
        C::U8(Some(x)) => x.to_string(),
        C::I16(Some(x)) => x.to_string(),
        C::I32(Some(x)) => x.to_string(),
        C::I64(Some(x)) => x.to_string(),
        C::F32(Some(x)) => x.to_string(),
        C::Bit(Some(x)) => (*x as u8).to_string(),
        C::String(Some(s)) => s.to_string(),
        C::Guid(Some(g)) => g.to_string(),
        C::Numeric(Some(n)) => n.value().to_string(),
        other if format!("{other:?}").contains("None") => "NULL".into(),
        other => format!("{other:?}"),
    }
}

/// The server error a tiberius call failed with: (number, class, message).
pub fn server_error<T: std::fmt::Debug>(r: tiberius::Result<T>) -> (u32, u8, String) {
    match r {
        Err(tiberius::error::Error::Server(e)) => (e.code(), e.class(), e.message().to_string()),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Writes a continuous chain of `n` synthetic log backups of `db` starting at `first`, each with
/// `log_bytes` of log records; returns their paths and the LSN after the last.
pub fn gen_chain(dir: &Path, db: &str, first: Lsn, n: u32, log_bytes: u64) -> (Vec<PathBuf>, Lsn) {
    use logship::backup::synth::SynthBackup;
    use logship::backup::MtfDate;
    let mut paths = Vec::new();
    let mut lsn = first;
    for i in 0..n {
        let next = Lsn::new(lsn.vlf + 1, 100 + i, 1);
        let start = MtfDate::from_unix(1_767_571_200 + 300 * i as u64);
        let mut b = SynthBackup::log(db, lsn, next, start, 1000 + i as u64);
        b.log_bytes = log_bytes;
        let p = dir.join(format!("{db}_{}.trn", start.compact()));
        let mut f = std::fs::File::create(&p).unwrap();
        b.write_to(&mut f).unwrap();
        paths.push(p);
        lsn = next;
    }
    (paths, lsn)
}
