//! The statement parser: turns a batch or `sp_executesql` text (with its parameters) into the
//! statements the simulator serves. Matching is by tokens: case-insensitive, whitespace- and
//! comment-tolerant, `[bracketed]` names, `N'..'` literals with `''` escapes, `@P1` parameters.

use std::collections::HashMap;

use super::tds::rpc::Value;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    /// `[name]` or `"name"`.
    Quoted(String),
    Str(String),
    Num(String),
    /// `@name`; `@@name` keeps both signs.
    Var(String),
    Sym(String),
}

/// Why a text is not one of the statements served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("Unclosed quotation mark after the character string '{0}'.")]
    Unclosed(String),
    #[error("Must declare the scalar variable \"{0}\".")]
    UndeclaredVar(String),
    #[error("unsupported statement: {0}")]
    Unsupported(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, SqlError> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '-' && c.get(i + 1) == Some(&'-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if ch == '\'' || ((ch == 'N' || ch == 'n') && c.get(i + 1) == Some(&'\'')) {
            i += if ch == '\'' { 1 } else { 2 };
            let mut v = String::new();
            loop {
                match c.get(i) {
                    None => return Err(SqlError::Unclosed(v)),
                    Some('\'') if c.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        v.push(*x);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(v));
        } else if ch == '[' || ch == '"' {
            let close = if ch == '[' { ']' } else { '"' };
            i += 1;
            let mut v = String::new();
            loop {
                match c.get(i) {
                    None => return Err(SqlError::Unclosed(v)),
                    Some(x) if *x == close && c.get(i + 1) == Some(&close) => {
                        v.push(close);
                        i += 2;
                    }
                    Some(x) if *x == close => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        v.push(*x);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Quoted(v));
        } else if ch == '@' {
            let start = i;
            i += 1;
            if c.get(i) == Some(&'@') {
                i += 1;
            }
            while i < c.len()
                && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '#' || c[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Var(
                c[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ch.is_alphabetic() || ch == '_' || ch == '#' {
            let start = i;
            while i < c.len()
                && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '#' || c[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            if two == "<>" || two == "!=" || two == ">=" || two == "<=" {
                out.push(Tok::Sym(two));
                i += 2;
            } else {
                out.push(Tok::Sym(ch.to_string()));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Drops the optional `master.dbo.`, `msdb.dbo.`, `msdb..` and `dbo.` qualifiers so one pattern
/// serves every spelling; `msdb` is kept as a marker word when it qualified a table.
fn normalize(toks: Vec<Tok>) -> Vec<Tok> {
    let is = |t: &Tok, w: &str| matches!(t, Tok::Word(x) if x.eq_ignore_ascii_case(w));
    let dot = |t: Option<&Tok>| matches!(t, Some(Tok::Sym(s)) if s == ".");
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if (is(t, "master") || is(t, "msdb")) && dot(toks.get(i + 1)) {
            // db . [dbo] . name
            let mut j = i + 2;
            if toks.get(j).is_some_and(|t| is(t, "sys")) {
                i += 2;
                continue;
            }
            if toks.get(j).is_some_and(|t| is(t, "dbo")) {
                j += 1;
            }
            if dot(toks.get(j)) {
                i = j + 1;
                continue;
            }
        }
        if is(t, "dbo") && dot(toks.get(i + 1)) {
            i += 2;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// The statements served (see the module docs of `sim` for the exact list).
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Version,
    Spid,
    ServerProperty(String),
    SelectOne(i64),
    /// `SELECT GETDATE()` / `GETUTCDATE()` (datetime), `SYSDATETIME()` / `SYSUTCDATETIME()` (datetime2).
    Now {
        datetime2: bool,
    },
    /// `SET ...` session options and `USE db`: accepted (USE switches the database).
    Set,
    Use(String),
    Databases {
        name: Option<String>,
        star: bool,
    },
    MasterFiles(String),
    Sessions(String),
    /// `sp_who2`: every session, the runbook's manual way to find who is in the database.
    Who2,
    Requests(Value),
    Kill(Value),
    LogShippingJoin(String),
    LsTable(&'static str),
    Job(Value),
    UpdateJob {
        job: Value,
        enabled: Value,
    },
    DeleteSecondary(String),
    HeaderOnly(String),
    RestoreLog {
        db: String,
        path: String,
        opts: RestoreOpts,
    },
    Recover(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreOpts {
    pub norecovery: bool,
    pub standby: Option<String>,
    pub stats: Option<u32>,
    pub restart: bool,
    pub recovery: bool,
    /// `FILE = n`: the backup set's position in the file (1 when absent).
    pub file: Option<i64>,
}

/// Splits a batch into statements (at top-level `;`) and parses each.
pub fn parse_batch(
    text: &str,
    params: &HashMap<String, Value>,
) -> Result<Vec<Statement>, SqlError> {
    let toks = normalize(lex(text)?);
    let mut out = Vec::new();
    for part in toks.split(|t| matches!(t, Tok::Sym(s) if s == ";")) {
        if part.is_empty() {
            continue;
        }
        // `GO` as typed in a batch ends it like `;`
        let part: Vec<Tok> = part.to_vec();
        out.push(parse_one(&part, params, text)?);
    }
    Ok(out)
}

struct M<'a> {
    t: &'a [Tok],
    i: usize,
    params: &'a HashMap<String, Value>,
    caps: Vec<Value>,
}

impl<'a> M<'a> {
    /// Matches `pat` (space-separated words and symbols, `$` = one value) at the current position.
    fn pat(&mut self, pat: &str) -> Result<bool, SqlError> {
        let save = (self.i, self.caps.len());
        for p in pat.split_whitespace() {
            let ok = match (p, self.t.get(self.i)) {
                ("$", Some(t)) => match self.value(t)? {
                    Some(v) => {
                        self.caps.push(v);
                        true
                    }
                    None => false,
                },
                (_, Some(Tok::Word(w))) => w.eq_ignore_ascii_case(p),
                (_, Some(Tok::Quoted(w))) => w.eq_ignore_ascii_case(p),
                (_, Some(Tok::Var(v))) => v.eq_ignore_ascii_case(p),
                (_, Some(Tok::Sym(s))) => s == p,
                (_, Some(Tok::Num(n))) => n == p,
                _ => false,
            };
            if !ok {
                self.i = save.0;
                self.caps.truncate(save.1);
                return Ok(false);
            }
            self.i += 1;
        }
        Ok(true)
    }

    fn value(&self, t: &Tok) -> Result<Option<Value>, SqlError> {
        Ok(Some(match t {
            Tok::Str(s) | Tok::Quoted(s) => Value::Str(s.clone()),
            Tok::Word(w) => Value::Str(w.clone()),
            Tok::Num(n) => n
                .parse::<i64>()
                .map(Value::Int)
                .unwrap_or_else(|_| Value::Str(n.clone())),
            Tok::Var(v) if !v.starts_with("@@") => self
                .params
                .get(v)
                .cloned()
                .ok_or_else(|| SqlError::UndeclaredVar(v.clone()))?,
            _ => return Ok(None),
        }))
    }

    fn end(&self) -> bool {
        self.i == self.t.len()
    }

    /// Matches the whole statement.
    fn full(&mut self, pat: &str) -> Result<bool, SqlError> {
        self.i = 0;
        self.caps.clear();
        Ok(self.pat(pat)? && self.end())
    }

    fn text(&self, k: usize) -> String {
        self.caps[k].as_text().unwrap_or_default()
    }
}

const LS_JOIN: &str = "SELECT s . secondary_id , s . primary_server , s . primary_database , \
    s . backup_source_directory , s . backup_destination_directory , s . file_retention_period , \
    s . last_copied_file , s . copy_job_id , s . restore_job_id , d . restore_mode , d . disconnect_users , \
    d . last_restored_file , d . restore_delay FROM log_shipping_secondary s JOIN \
    log_shipping_secondary_databases d ON d . secondary_id = s . secondary_id WHERE d . secondary_database = $";

fn parse_one(
    t: &[Tok],
    params: &HashMap<String, Value>,
    whole: &str,
) -> Result<Statement, SqlError> {
    let mut m = M {
        t,
        i: 0,
        params,
        caps: Vec::new(),
    };
    use Statement as S;
    if m.full("SELECT @@VERSION")? {
        return Ok(S::Version);
    }
    if m.full("SELECT @@SPID")? {
        return Ok(S::Spid);
    }
    for (f, datetime2) in [
        ("GETDATE", false),
        ("GETUTCDATE", false),
        ("SYSDATETIME", true),
        ("SYSUTCDATETIME", true),
    ] {
        if m.full(&format!("SELECT {f} ( )"))? {
            return Ok(S::Now { datetime2 });
        }
    }
    if m.full("SELECT SERVERPROPERTY ( $ )")? {
        return Ok(S::ServerProperty(m.text(0)));
    }
    if m.full("SELECT $")? {
        if let Some(i) = m.caps[0].as_int() {
            if matches!(t[1], Tok::Num(_)) {
                return Ok(S::SelectOne(i));
            }
        }
    }
    if matches!(t.first(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("SET")) {
        return Ok(S::Set);
    }
    if m.full("USE $")? {
        return Ok(S::Use(m.text(0)));
    }
    for (pat, star) in [
        (
            "SELECT name , state_desc , is_in_standby FROM sys . databases",
            false,
        ),
        ("SELECT * FROM sys . databases", true),
    ] {
        if m.full(pat)? {
            return Ok(S::Databases { name: None, star });
        }
        if m.full(&format!("{pat} WHERE name = $"))? {
            return Ok(S::Databases {
                name: Some(m.text(0)),
                star,
            });
        }
    }
    if m.full(
        "SELECT redo_start_lsn , redo_start_fork_guid FROM sys . master_files WHERE database_id = DB_ID ( $ ) AND file_id = 1",
    )? {
        return Ok(S::MasterFiles(m.text(0)));
    }
    if m.full("SELECT session_id FROM sys . dm_exec_sessions WHERE database_id = DB_ID ( $ ) AND session_id <> @@SPID")?
        || m.full("SELECT session_id FROM sys . dm_exec_sessions WHERE database_id = DB_ID ( $ ) AND session_id != @@SPID")?
    {
        return Ok(S::Sessions(m.text(0)));
    }
    if m.full("SELECT session_id , command , percent_complete FROM sys . dm_exec_requests WHERE session_id = $")? {
        return Ok(S::Requests(m.caps[0].clone()));
    }
    if m.full("sp_who2")? || m.full("EXEC sp_who2")? || m.full("EXECUTE sp_who2")? {
        return Ok(S::Who2);
    }
    if m.full("KILL $")? {
        return Ok(S::Kill(m.caps[0].clone()));
    }
    if m.full(LS_JOIN)? {
        return Ok(S::LogShippingJoin(m.text(0)));
    }
    for table in [
        "log_shipping_secondary",
        "log_shipping_secondary_databases",
        "log_shipping_monitor_secondary",
    ] {
        if m.full(&format!("SELECT * FROM {table}"))? {
            return Ok(S::LsTable(table));
        }
    }
    if m.full("SELECT job_id , name , enabled FROM sysjobs WHERE job_id = $")? {
        return Ok(S::Job(m.caps[0].clone()));
    }
    for exec in ["EXEC", "EXECUTE"] {
        if m.full(&format!("{exec} sp_update_job @job_id = $ , @enabled = $"))?
            || m.full(&format!("{exec} sp_update_job $ , @enabled = $"))?
        {
            return Ok(S::UpdateJob {
                job: m.caps[0].clone(),
                enabled: m.caps[1].clone(),
            });
        }
        if m.full(&format!(
            "{exec} sp_delete_log_shipping_secondary_database @secondary_database = $"
        ))? || m.full(&format!(
            "{exec} sp_delete_log_shipping_secondary_database $"
        ))? {
            return Ok(S::DeleteSecondary(m.text(0)));
        }
    }
    if m.full("RESTORE HEADERONLY FROM DISK = $")? {
        return Ok(S::HeaderOnly(m.text(0)));
    }
    if m.full("RESTORE DATABASE $ WITH RECOVERY")? {
        return Ok(S::Recover(m.text(0)));
    }
    m.i = 0;
    m.caps.clear();
    if m.pat("RESTORE LOG $ FROM DISK = $")? {
        let (db, path) = (m.text(0), m.text(1));
        let mut opts = RestoreOpts::default();
        if !m.end() {
            if !m.pat("WITH")? {
                return Err(unsupported(whole));
            }
            loop {
                if m.pat("NORECOVERY")? {
                    opts.norecovery = true;
                } else if m.pat("RECOVERY")? {
                    opts.recovery = true;
                } else if m.pat("RESTART")? {
                    opts.restart = true;
                } else if m.pat("STATS = $")? || m.pat("STATS")? {
                    let n = if m.caps.len() > 2 {
                        m.caps.pop().and_then(|v| v.as_int()).unwrap_or(10)
                    } else {
                        10
                    };
                    opts.stats = Some(n.clamp(1, 100) as u32);
                } else if m.pat("FILE = $")? {
                    opts.file = m.caps.pop().and_then(|v| v.as_int());
                    if opts.file.is_none() {
                        return Err(unsupported(whole));
                    }
                } else if m.pat("STANDBY = $")? {
                    opts.standby = m.caps.pop().and_then(|v| v.as_text());
                } else {
                    return Err(unsupported(whole));
                }
                if m.end() {
                    break;
                }
                if !m.pat(",")? {
                    return Err(unsupported(whole));
                }
            }
        }
        return Ok(S::RestoreLog { db, path, opts });
    }
    Err(unsupported(whole))
}

fn unsupported(whole: &str) -> SqlError {
    let s: String = whole.split_whitespace().collect::<Vec<_>>().join(" ");
    SqlError::Unsupported(s.chars().take(200).collect())
}

/// The parameter names declared in an `sp_executesql` declaration string, in order
/// (`@P1 nvarchar(4000),@P2 numeric(25,0)` gives `@p1`, `@p2`).
pub fn declared_names(decl: &str) -> Vec<String> {
    match lex(decl) {
        Ok(toks) => {
            let mut depth = 0;
            let mut out = Vec::new();
            let mut expect = true;
            for t in toks {
                match t {
                    Tok::Sym(s) if s == "(" => depth += 1,
                    Tok::Sym(s) if s == ")" => depth -= 1,
                    Tok::Sym(s) if s == "," && depth == 0 => expect = true,
                    Tok::Var(v) if expect => {
                        out.push(v);
                        expect = false;
                    }
                    _ => {}
                }
            }
            out
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Statement, SqlError> {
        let mut params = HashMap::new();
        params.insert("@p1".to_string(), Value::Str("mgc".into()));
        params.insert("@p2".to_string(), Value::Str(r"C:\x.trn".into()));
        params.insert("@p3".to_string(), Value::Str(r"C:\undo.tuf".into()));
        parse_batch(s, &params).map(|mut v| v.remove(0))
    }

    #[test]
    fn table_of_statements() {
        use Statement as S;
        let cases: Vec<(&str, Statement)> = vec![
            ("select @@version", S::Version),
            ("  SELECT   @@SPID ; ", S::Spid),
            ("SELECT SERVERPROPERTY('ProductVersion')", S::ServerProperty("ProductVersion".into())),
            ("SELECT * FROM sys.databases", S::Databases { name: None, star: true }),
            ("SELECT * FROM master.sys.databases", S::Databases { name: None, star: true }),
            (
                "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1",
                S::Databases { name: Some("mgc".into()), star: false },
            ),
            (
                "SELECT redo_start_lsn, redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(N'mgc') AND file_id = 1",
                S::MasterFiles("mgc".into()),
            ),
            (
                "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID",
                S::Sessions("mgc".into()),
            ),
            ("kill 57", S::Kill(Value::Int(57))),
            ("exec master.dbo.sp_who2", S::Who2),
            ("sp_who2", S::Who2),
            ("exec sp_delete_log_shipping_secondary_database N'mgc'", S::DeleteSecondary("mgc".into())),
            (
                "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1",
                S::DeleteSecondary("mgc".into()),
            ),
            ("SELECT * FROM msdb.dbo.log_shipping_secondary", S::LsTable("log_shipping_secondary")),
            ("SELECT * FROM msdb..log_shipping_monitor_secondary", S::LsTable("log_shipping_monitor_secondary")),
            (
                "EXEC msdb.dbo.sp_update_job @job_id = N'x', @enabled = 0",
                S::UpdateJob { job: Value::Str("x".into()), enabled: Value::Int(0) },
            ),
            ("RESTORE HEADERONLY FROM DISK = @P2", S::HeaderOnly(r"C:\x.trn".into())),
            ("RESTORE DATABASE [mgc] WITH RECOVERY", S::Recover("mgc".into())),
            (
                "RESTORE LOG [m]]gc] FROM DISK = N'C:\\it''s.trn' WITH NORECOVERY",
                S::RestoreLog {
                    db: "m]gc".into(),
                    path: "C:\\it's.trn".into(),
                    opts: RestoreOpts { norecovery: true, ..Default::default() },
                },
            ),
            (
                "RESTORE LOG @P1 FROM DISK = @P2 WITH FILE = 2, STANDBY = @P3, STATS = 5, RESTART",
                S::RestoreLog {
                    db: "mgc".into(),
                    path: r"C:\x.trn".into(),
                    opts: RestoreOpts {
                        standby: Some(r"C:\undo.tuf".into()),
                        stats: Some(5),
                        restart: true,
                        file: Some(2),
                        ..Default::default()
                    },
                },
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(p(sql).unwrap(), want, "{sql}");
        }
        assert!(matches!(
            p("DROP DATABASE mgc"),
            Err(SqlError::Unsupported(_))
        ));
        assert!(matches!(p("SELECT 'abc"), Err(SqlError::Unclosed(_))));
        assert!(matches!(p("KILL @P9"), Err(SqlError::UndeclaredVar(_))));
        assert_eq!(
            declared_names("@P1 nvarchar(4000),@P2 numeric(25,0), @x int"),
            vec!["@p1", "@p2", "@x"]
        );
    }
}
