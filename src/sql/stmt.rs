//! The statements the engine sends, as text plus typed parameters, and their printable form.

use uuid::Uuid;

use super::quote::{quote_ident, quote_nstring};

/// A parameter value, sent through `sp_executesql` as `@P1`, `@P2`, ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i32),
    Guid(Uuid),
}

/// One T-SQL statement. `changes` marks statements that change the server (what-if prints them
/// instead of sending them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    pub changes: bool,
}

/// How a log restore leaves the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    NoRecovery,
    /// Read-only between restores, with this undo file (as the server sees it).
    Standby(String),
}

/// Percent steps of the STATS messages the engine asks for.
pub const STATS_PERCENT: i32 = 5;

impl Statement {
    fn read(sql: &str, params: Vec<Param>) -> Statement {
        Statement {
            sql: sql.to_string(),
            params,
            changes: false,
        }
    }

    fn change(sql: &str, params: Vec<Param>) -> Statement {
        Statement {
            sql: sql.to_string(),
            params,
            changes: true,
        }
    }

    pub fn spid() -> Statement {
        Statement::read("SELECT @@SPID", vec![])
    }

    /// `SERVERPROPERTY(name)` for one of the names the engine reads.
    pub fn server_property(name: &'static str) -> Statement {
        Statement::read(&format!("SELECT SERVERPROPERTY('{name}')"), vec![])
    }

    pub fn database_state(db: &str) -> Statement {
        Statement::read(
            "SELECT name, state_desc, is_in_standby FROM sys.databases WHERE name = @P1",
            vec![Param::Text(db.into())],
        )
    }

    pub fn redo_lsn(db: &str) -> Statement {
        Statement::read(
            "SELECT redo_start_lsn, redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(@P1) AND file_id = 1",
            vec![Param::Text(db.into())],
        )
    }

    pub fn log_shipping(db: &str) -> Statement {
        Statement::read(
            "SELECT s.secondary_id, s.primary_server, s.primary_database, s.backup_source_directory, \
             s.backup_destination_directory, s.file_retention_period, s.last_copied_file, s.copy_job_id, \
             s.restore_job_id, d.restore_mode, d.disconnect_users, d.last_restored_file, d.restore_delay \
             FROM msdb.dbo.log_shipping_secondary s JOIN msdb.dbo.log_shipping_secondary_databases d \
             ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1",
            vec![Param::Text(db.into())],
        )
    }

    pub fn job(job_id: Uuid) -> Statement {
        Statement::read(
            "SELECT job_id, name, enabled FROM msdb.dbo.sysjobs WHERE job_id = @P1",
            vec![Param::Guid(job_id)],
        )
    }

    pub fn set_job_enabled(job_id: Uuid, enabled: bool) -> Statement {
        Statement::change(
            "EXEC msdb.dbo.sp_update_job @job_id = @P1, @enabled = @P2",
            vec![Param::Guid(job_id), Param::Int(enabled as i32)],
        )
    }

    pub fn remove_log_shipping(db: &str) -> Statement {
        Statement::change(
            "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1",
            vec![Param::Text(db.into())],
        )
    }

    pub fn sessions(db: &str) -> Statement {
        Statement::read(
            "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID",
            vec![Param::Text(db.into())],
        )
    }

    /// `KILL` takes no parameter; a session id is a number the server gave us.
    pub fn kill(session_id: i32) -> Statement {
        Statement::change(&format!("KILL {session_id}"), vec![])
    }

    pub fn request_progress(session_id: i32) -> Statement {
        Statement::read(
            "SELECT session_id, command, percent_complete FROM sys.dm_exec_requests WHERE session_id = @P1",
            vec![Param::Int(session_id)],
        )
    }

    pub fn headers_only(path_on_server: &str) -> Statement {
        Statement::read(
            "RESTORE HEADERONLY FROM DISK = @P1",
            vec![Param::Text(path_on_server.into())],
        )
    }

    /// `RESTORE LOG` of one backup set; database and paths as parameters.
    pub fn restore_log(
        db: &str,
        path_on_server: &str,
        position: u16,
        mode: &RestoreMode,
        restart: bool,
    ) -> Statement {
        let mut params = vec![Param::Text(db.into()), Param::Text(path_on_server.into())];
        let mut with = Vec::new();
        if position > 1 {
            params.push(Param::Int(position as i32));
            with.push(format!("FILE = @P{}", params.len()));
        }
        match mode {
            RestoreMode::NoRecovery => with.push("NORECOVERY".into()),
            RestoreMode::Standby(undo) => {
                params.push(Param::Text(undo.clone()));
                with.push(format!("STANDBY = @P{}", params.len()));
            }
        }
        if restart {
            with.push("RESTART".into());
        }
        with.push(format!("STATS = {STATS_PERCENT}"));
        Statement::change(
            &format!("RESTORE LOG @P1 FROM DISK = @P2 WITH {}", with.join(", ")),
            params,
        )
    }

    pub fn recover(db: &str) -> Statement {
        Statement::change(
            "RESTORE DATABASE @P1 WITH RECOVERY",
            vec![Param::Text(db.into())],
        )
    }

    /// The statement as an operator would type it: parameters replaced by quoted literals.
    /// The database of `RESTORE` is an identifier there, so it is bracketed.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.sql.len() + 64);
        let bytes = self.sql.as_bytes();
        let mut i = 0;
        let restore_db =
            self.sql.starts_with("RESTORE LOG @P1") || self.sql.starts_with("RESTORE DATABASE @P1");
        while i < bytes.len() {
            if bytes[i] == b'@' && bytes.get(i + 1) == Some(&b'P') {
                let digits = bytes[i + 2..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let n: usize = self.sql[i + 2..i + 2 + digits].parse().unwrap_or(0);
                    if let Some(p) = n.checked_sub(1).and_then(|k| self.params.get(k)) {
                        out.push_str(&match (p, n == 1 && restore_db) {
                            (Param::Text(s), true) => quote_ident(s),
                            (Param::Text(s), false) => quote_nstring(s),
                            (Param::Int(v), _) => v.to_string(),
                            (Param::Guid(g), _) => format!("'{g}'"),
                        });
                        i += 2 + digits;
                        continue;
                    }
                }
            }
            let ch = self.sql[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }
}

/// A log backup's path as the SQL Server sees it: the server's folder joined with the file name,
/// with the server's separator (a backslash for Windows paths).
pub fn server_path(dir_on_server: &str, name: &str) -> String {
    let sep = if dir_on_server.contains('\\') || dir_on_server.as_bytes().get(1) == Some(&b':') {
        '\\'
    } else {
        '/'
    };
    let dir = dir_on_server.trim_end_matches(['\\', '/']);
    format!("{dir}{sep}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_log_renders_with_quoted_names() {
        let s = Statement::restore_log(
            "mg]c'",
            r"D:\LS\it's.trn",
            1,
            &RestoreMode::NoRecovery,
            false,
        );
        assert_eq!(
            s.sql,
            "RESTORE LOG @P1 FROM DISK = @P2 WITH NORECOVERY, STATS = 5"
        );
        assert_eq!(
            s.render(),
            r"RESTORE LOG [mg]]c'] FROM DISK = N'D:\LS\it''s.trn' WITH NORECOVERY, STATS = 5"
        );
        assert!(s.changes);
    }

    #[test]
    fn restore_log_with_position_standby_and_restart() {
        let s = Statement::restore_log(
            "mgc",
            "/x/a.trn",
            3,
            &RestoreMode::Standby("/x/undo.tuf".into()),
            true,
        );
        assert_eq!(
            s.sql,
            "RESTORE LOG @P1 FROM DISK = @P2 WITH FILE = @P3, STANDBY = @P4, RESTART, STATS = 5"
        );
        assert_eq!(
            s.render(),
            "RESTORE LOG [mgc] FROM DISK = N'/x/a.trn' WITH FILE = 3, STANDBY = N'/x/undo.tuf', RESTART, STATS = 5"
        );
    }

    #[test]
    fn render_handles_many_params_and_hostile_text() {
        let s = Statement {
            sql: "SELECT @P1, @P10, @P2, @Px".into(),
            params: (1..=10).map(|i| Param::Text(format!("v{i}';--"))).collect(),
            changes: false,
        };
        assert_eq!(
            s.render(),
            "SELECT N'v1'';--', N'v10'';--', N'v2'';--', @Px"
        );
        let d = Statement::remove_log_shipping("x'; DROP TABLE t;--");
        assert_eq!(
            d.render(),
            "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'x''; DROP TABLE t;--'"
        );
    }

    #[test]
    fn server_paths() {
        assert_eq!(
            server_path(r"D:\LSCopy\mgc", "a.trn"),
            r"D:\LSCopy\mgc\a.trn"
        );
        assert_eq!(
            server_path(r"D:\LSCopy\mgc\", "a.trn"),
            r"D:\LSCopy\mgc\a.trn"
        );
        assert_eq!(server_path(r"\\srv\share", "a.trn"), r"\\srv\share\a.trn");
        assert_eq!(server_path("/var/copy/", "a.trn"), "/var/copy/a.trn");
    }
}
