//! The tiberius connection: configuration from `[sql]`, login, statements, typed cells.

use std::time::Duration;

use tiberius::{AuthMethod, Client, ColumnData, EncryptionLevel, Row, ToSql};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::stmt::{Param, Statement};
use super::SqlError;
use crate::config::{Encrypt, SqlAuth, SqlConfig};

/// Everything needed to open connections to the secondary, again and again.
#[derive(Clone)]
pub struct Connector {
    config: tiberius::Config,
    named_instance: bool,
    connect_timeout: Duration,
    /// `host:port` or `host\instance`, for messages.
    pub addr: String,
}

impl std::fmt::Debug for Connector {
    // tiberius's Config holds the password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The password for SQL authentication: from the environment variable the configuration names,
/// or a prompt on the terminal. Never from argv or the file.
pub fn read_password(sql: &SqlConfig) -> Result<String, SqlError> {
    if let Ok(p) = std::env::var(&sql.password_env) {
        return Ok(p);
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let user = sql.user.as_deref().unwrap_or("");
        return rpassword::prompt_password(format!(
            "Password for SQL login {user} on {}: ",
            sql.host
        ))
        .map_err(|e| SqlError::Password(format!("prompt failed: {e}")));
    }
    Err(SqlError::Password(format!(
        "set the environment variable {} (sql.password_env) or run on a terminal to be prompted",
        sql.password_env
    )))
}

impl Connector {
    /// Builds the connection settings. `password` is needed for SQL and NTLM authentication.
    pub fn new(sql: &SqlConfig, password: Option<String>) -> Result<Connector, SqlError> {
        let mut c = tiberius::Config::new();
        c.host(&sql.host);
        let addr = match (&sql.instance, sql.port) {
            (Some(inst), _) => {
                c.instance_name(inst);
                format!("{}\\{inst}", sql.host)
            }
            (None, port) => {
                let port = port.unwrap_or(1433);
                c.port(port);
                format!("{}:{port}", sql.host)
            }
        };
        c.application_name("logship");
        c.database("master");
        c.encryption(match sql.encrypt {
            Encrypt::Required => EncryptionLevel::Required,
            Encrypt::Off => EncryptionLevel::Off,
            Encrypt::NotSupported => EncryptionLevel::NotSupported,
        });
        if sql.trust_server_certificate {
            c.trust_cert();
        }
        let user = sql.user.clone().unwrap_or_default();
        c.authentication(match sql.auth {
            SqlAuth::Sql => {
                let pw = password.ok_or_else(|| {
                    SqlError::Password("SQL authentication needs a password".into())
                })?;
                AuthMethod::sql_server(user, pw)
            }
            SqlAuth::Windows => windows_auth(&user, password)?,
            SqlAuth::Integrated => integrated_auth()?,
        });
        let connect_timeout = Duration::from_secs(sql.connect_timeout_secs.max(1));
        c.handshake_timeout(Some(connect_timeout));
        Ok(Connector {
            config: c,
            named_instance: sql.instance.is_some(),
            connect_timeout,
            addr,
        })
    }

    /// Opens a connection. `command_timeout` bounds each server round trip; restores pass `None`,
    /// since a RESTORE can be silent for many minutes.
    pub async fn connect(&self, command_timeout: Option<Duration>) -> Result<Conn, SqlError> {
        let mut config = self.config.clone();
        config.command_timeout(command_timeout);
        let fut = async {
            let tcp = if self.named_instance {
                use tiberius::SqlBrowser;
                TcpStream::connect_named(&config).await?
            } else {
                TcpStream::connect(config.get_addr()).await.map_err(|e| {
                    tiberius::error::Error::Io {
                        kind: e.kind(),
                        message: e.to_string(),
                    }
                })?
            };
            tcp.set_nodelay(true).ok();
            Client::connect(config, tcp.compat_write()).await
        };
        let client = match tokio::time::timeout(self.connect_timeout, fut).await {
            Err(_) => {
                return Err(SqlError::Connect {
                    addr: self.addr.clone(),
                    message: format!("timed out after {:?}", self.connect_timeout),
                })
            }
            Ok(Err(tiberius::error::Error::Server(e))) => {
                return Err(SqlError::from_token(e, "login"))
            }
            Ok(Err(e)) => {
                return Err(SqlError::Connect {
                    addr: self.addr.clone(),
                    message: e.to_string(),
                })
            }
            Ok(Ok(c)) => c,
        };
        let mut conn = Conn { client, spid: 0 };
        let rows = conn.query(&Statement::spid()).await?;
        conn.spid = rows.first().and_then(|r| int_at(r, 0)).unwrap_or(0) as i32;
        Ok(conn)
    }
}

#[cfg(all(windows, feature = "windows-auth"))]
fn windows_auth(user: &str, password: Option<String>) -> Result<AuthMethod, SqlError> {
    let pw = password.ok_or_else(|| {
        SqlError::Password("Windows (NTLM) authentication needs a password".into())
    })?;
    Ok(AuthMethod::windows(user, pw))
}

#[cfg(not(all(windows, feature = "windows-auth")))]
fn windows_auth(_user: &str, _password: Option<String>) -> Result<AuthMethod, SqlError> {
    Err(SqlError::Unsupported(
        "auth = \"windows\" needs a Windows build with the `windows-auth` feature".into(),
    ))
}

#[cfg(any(
    all(windows, feature = "windows-auth"),
    all(unix, feature = "kerberos")
))]
fn integrated_auth() -> Result<AuthMethod, SqlError> {
    Ok(AuthMethod::Integrated)
}

#[cfg(not(any(
    all(windows, feature = "windows-auth"),
    all(unix, feature = "kerberos")
)))]
fn integrated_auth() -> Result<AuthMethod, SqlError> {
    Err(SqlError::Unsupported(
        "auth = \"integrated\" needs the `windows-auth` feature on Windows or `kerberos` on Unix"
            .into(),
    ))
}

/// One open connection.
pub struct Conn {
    client: Client<Compat<TcpStream>>,
    /// This connection's session id (`@@SPID`).
    pub spid: i32,
}

fn bind(params: &[Param]) -> Vec<&dyn ToSql> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(s) => s as &dyn ToSql,
            Param::Int(v) => v as &dyn ToSql,
            Param::Guid(g) => g as &dyn ToSql,
        })
        .collect()
}

impl Conn {
    /// Runs a statement that returns rows; the first result set.
    pub async fn query(&mut self, s: &Statement) -> Result<Vec<Row>, SqlError> {
        let params = bind(&s.params);
        let res = if params.is_empty() {
            self.client.simple_query(s.sql.as_str()).await
        } else {
            self.client.query(s.sql.as_str(), &params).await
        };
        let stream = res.map_err(|e| SqlError::from_tiberius(e, &s.sql))?;
        stream
            .into_first_result()
            .await
            .map_err(|e| SqlError::from_tiberius(e, &s.sql))
    }

    /// Runs a statement for its effect, draining every result so errors surface.
    pub async fn execute(&mut self, s: &Statement) -> Result<(), SqlError> {
        let params = bind(&s.params);
        if params.is_empty() {
            let stream = self
                .client
                .simple_query(s.sql.as_str())
                .await
                .map_err(|e| SqlError::from_tiberius(e, &s.sql))?;
            stream
                .into_results()
                .await
                .map_err(|e| SqlError::from_tiberius(e, &s.sql))?;
            return Ok(());
        }
        self.client
            .execute(s.sql.as_str(), &params)
            .await
            .map_err(|e| SqlError::from_tiberius(e, &s.sql))?;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// An integer cell of any width (the server may type ids as smallint, int or bigint).
pub fn int_at(row: &Row, idx: usize) -> Option<i64> {
    match row.cells().nth(idx)?.1 {
        ColumnData::U8(v) => v.map(i64::from),
        ColumnData::I16(v) => v.map(i64::from),
        ColumnData::I32(v) => v.map(i64::from),
        ColumnData::I64(v) => *v,
        ColumnData::Bit(v) => v.map(i64::from),
        ColumnData::Numeric(v) => v.map(|n| n.value() as i64),
        ColumnData::F64(v) => v.map(|f| f as i64),
        ColumnData::F32(v) => v.map(|f| f as i64),
        _ => None,
    }
}

/// A boolean cell: `bit`, or an integer 0/1.
pub fn bool_at(row: &Row, idx: usize) -> Option<bool> {
    int_at(row, idx).map(|v| v != 0)
}

/// A text cell.
pub fn text_at(row: &Row, idx: usize) -> Option<String> {
    match row.cells().nth(idx)?.1 {
        ColumnData::String(v) => v.as_ref().map(|s| s.to_string()),
        ColumnData::Guid(v) => v.map(|g| g.to_string()),
        _ => None,
    }
}

/// A `uniqueidentifier` cell (or its text form).
pub fn guid_at(row: &Row, idx: usize) -> Option<uuid::Uuid> {
    match row.cells().nth(idx)?.1 {
        ColumnData::Guid(v) => *v,
        ColumnData::String(Some(s)) => s.parse().ok(),
        _ => None,
    }
}

/// A `numeric(25,0)` LSN cell (or its decimal text form).
pub fn lsn_at(row: &Row, idx: usize) -> Option<crate::lsn::Lsn> {
    match row.cells().nth(idx)?.1 {
        ColumnData::Numeric(Some(n)) if n.value() >= 0 => {
            let v = n.value() as u128 / 10u128.pow(n.scale() as u32);
            crate::lsn::Lsn::from_decimal(v)
        }
        ColumnData::I64(Some(v)) if *v >= 0 => crate::lsn::Lsn::from_decimal(*v as u128),
        ColumnData::String(Some(s)) => s.parse().ok(),
        _ => None,
    }
}
