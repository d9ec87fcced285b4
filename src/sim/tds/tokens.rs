//! Server tokens: LOGINACK, ENVCHANGE, INFO, ERROR, COLMETADATA, ROW, DONE, RETURNSTATUS, written
//! into a byte buffer the connection frames into packets.

use uuid::Uuid;

/// SQL_Latin1_General_CP1_CI_AS, the collation the simulated server reports.
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xd0, 0x00, 0x34];
pub const TDS_74: u32 = 0x7400_0004;

pub const DONE_MORE: u16 = 0x01;
pub const DONE_ERROR: u16 = 0x02;
pub const DONE_COUNT: u16 = 0x10;
pub const DONE_ATTN: u16 = 0x20;
pub const CMD_SELECT: u16 = 0xc1;

/// The SQL types of result-set columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Bit,
    Real,
    /// nvarchar(n), n in characters (at most 4000).
    NVarChar(u16),
    /// numeric(p, 0): the form of LSNs.
    Numeric(u8),
    DateTime,
    DateTime2,
    Guid,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Bit(bool),
    Real(f32),
    Str(String),
    Numeric(u128),
    /// Seconds since the Unix epoch (UTC), plus nanoseconds.
    Time(i64, u32),
    Guid(Uuid),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Str(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Str(s)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(o: Option<T>) -> Cell {
        o.map_or(Cell::Null, Into::into)
    }
}

pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
}

pub const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty }
}

/// A result set to send: columns and rows of cells.
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// A token buffer.
#[derive(Default)]
pub struct Tokens {
    pub buf: Vec<u8>,
}

fn b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(units.len() as u8);
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn us_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(65535).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn with_len(out: &mut Vec<u8>, token: u8, body: &[u8]) {
    out.push(token);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(body);
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn login_ack(&mut self, tds_version: u32) {
        let mut b = vec![1];
        b.extend_from_slice(&tds_version.to_be_bytes());
        b_varchar(&mut b, "Microsoft SQL Server");
        b.extend_from_slice(&[13, 0, 0x13, 0xd9]);
        with_len(&mut self.buf, 0xad, &b);
    }

    /// ENVCHANGE with B_VARCHAR values (database 1, language 2, packet size 4).
    pub fn env_change(&mut self, ty: u8, new: &str, old: &str) {
        let mut b = vec![ty];
        b_varchar(&mut b, new);
        b_varchar(&mut b, old);
        with_len(&mut self.buf, 0xe3, &b);
    }

    pub fn env_collation(&mut self) {
        let mut b = vec![7, 5];
        b.extend_from_slice(&COLLATION);
        b.push(0);
        with_len(&mut self.buf, 0xe3, &b);
    }

    fn message(&mut self, token: u8, number: u32, state: u8, class: u8, text: &str, server: &str) {
        let mut b = Vec::new();
        b.extend_from_slice(&number.to_le_bytes());
        b.push(state);
        b.push(class);
        us_varchar(&mut b, text);
        b_varchar(&mut b, server);
        b_varchar(&mut b, "");
        b.extend_from_slice(&1u32.to_le_bytes());
        with_len(&mut self.buf, token, &b);
    }

    pub fn info(&mut self, number: u32, state: u8, class: u8, text: &str, server: &str) {
        self.message(0xab, number, state, class, text, server);
    }

    pub fn error(&mut self, number: u32, state: u8, class: u8, text: &str, server: &str) {
        self.message(0xaa, number, state, class, text, server);
    }

    /// DONE (0xFD), DONEPROC (0xFE) or DONEINPROC (0xFF).
    pub fn done(&mut self, token: u8, status: u16, cmd: u16, rows: u64) {
        self.buf.push(token);
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.buf.extend_from_slice(&cmd.to_le_bytes());
        self.buf.extend_from_slice(&rows.to_le_bytes());
    }

    pub fn return_status(&mut self, v: i32) {
        self.buf.push(0x79);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// COLMETADATA then one ROW per row.
    pub fn result_set(&mut self, rs: &ResultSet) {
        let b = &mut self.buf;
        b.push(0x81);
        b.extend_from_slice(&(rs.columns.len() as u16).to_le_bytes());
        for c in &rs.columns {
            b.extend_from_slice(&0u32.to_le_bytes()); // user type
            b.extend_from_slice(&1u16.to_le_bytes()); // flags: nullable
            type_info(b, c.ty);
            b_varchar(b, c.name);
        }
        for row in &rs.rows {
            b.push(0xd1);
            for (c, v) in rs.columns.iter().zip(row) {
                cell(b, c.ty, v);
            }
        }
    }
}

fn type_info(b: &mut Vec<u8>, ty: ColType) {
    match ty {
        ColType::TinyInt => b.extend_from_slice(&[0x26, 1]),
        ColType::SmallInt => b.extend_from_slice(&[0x26, 2]),
        ColType::Int => b.extend_from_slice(&[0x26, 4]),
        ColType::BigInt => b.extend_from_slice(&[0x26, 8]),
        ColType::Bit => b.extend_from_slice(&[0x68, 1]),
        ColType::Real => b.extend_from_slice(&[0x6d, 4]),
        ColType::NVarChar(n) => {
            b.push(0xe7);
            b.extend_from_slice(&(n.min(4000) * 2).to_le_bytes());
            b.extend_from_slice(&COLLATION);
        }
        ColType::Numeric(p) => b.extend_from_slice(&[0x6c, numeric_len(p), p, 0]),
        ColType::DateTime => b.extend_from_slice(&[0x6f, 8]),
        ColType::DateTime2 => b.extend_from_slice(&[0x2a, 7]),
        ColType::Guid => b.extend_from_slice(&[0x24, 16]),
    }
}

fn numeric_len(p: u8) -> u8 {
    match p {
        1..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

const DAYS_1900_TO_1970: i64 = 25567;
const DAYS_0001_TO_1970: i64 = 719162;

fn cell(b: &mut Vec<u8>, ty: ColType, v: &Cell) {
    match (ty, v) {
        (ColType::NVarChar(n), Cell::Null) => {
            let _ = n;
            b.extend_from_slice(&0xffffu16.to_le_bytes())
        }
        (_, Cell::Null) => b.push(0),
        (ColType::TinyInt, Cell::Int(i)) => b.extend_from_slice(&[1, *i as u8]),
        (ColType::SmallInt, Cell::Int(i)) => {
            b.push(2);
            b.extend_from_slice(&(*i as i16).to_le_bytes())
        }
        (ColType::Int, Cell::Int(i)) => {
            b.push(4);
            b.extend_from_slice(&(*i as i32).to_le_bytes())
        }
        (ColType::BigInt, Cell::Int(i)) => {
            b.push(8);
            b.extend_from_slice(&i.to_le_bytes())
        }
        (ColType::Bit, Cell::Bit(x)) => b.extend_from_slice(&[1, *x as u8]),
        (ColType::Bit, Cell::Int(x)) => b.extend_from_slice(&[1, (*x != 0) as u8]),
        (ColType::Real, Cell::Real(f)) => {
            b.push(4);
            b.extend_from_slice(&f.to_le_bytes())
        }
        (ColType::NVarChar(n), Cell::Str(s)) => {
            let units: Vec<u16> = s.encode_utf16().take(n.min(4000) as usize).collect();
            b.extend_from_slice(&((units.len() * 2) as u16).to_le_bytes());
            for u in units {
                b.extend_from_slice(&u.to_le_bytes());
            }
        }
        (ColType::Numeric(p), Cell::Numeric(v)) => {
            let len = numeric_len(p);
            b.push(len);
            b.push(1);
            b.extend_from_slice(&v.to_le_bytes()[..len as usize - 1]);
        }
        (ColType::DateTime, Cell::Time(secs, nanos)) => {
            let days = secs.div_euclid(86400) + DAYS_1900_TO_1970;
            let sod = secs.rem_euclid(86400);
            let ticks = sod * 300 + (*nanos as i64 * 3 / 10_000_000);
            b.push(8);
            b.extend_from_slice(&(days as i32).to_le_bytes());
            b.extend_from_slice(&(ticks as u32).to_le_bytes());
        }
        (ColType::DateTime2, Cell::Time(secs, nanos)) => {
            let days = secs.div_euclid(86400) + DAYS_0001_TO_1970;
            let sod = secs.rem_euclid(86400) as u64;
            let t = sod * 10_000_000 + *nanos as u64 / 100;
            b.push(8);
            b.extend_from_slice(&t.to_le_bytes()[..5]);
            b.extend_from_slice(&(days as u32).to_le_bytes()[..3]);
        }
        (ColType::Guid, Cell::Guid(g)) => {
            let mut d = *g.as_bytes();
            super::rpc::reorder_guid(&mut d);
            b.push(16);
            b.extend_from_slice(&d);
        }
        // a cell that does not fit its column is sent as NULL rather than corrupt the stream
        (ColType::NVarChar(_), _) => b.extend_from_slice(&0xffffu16.to_le_bytes()),
        _ => b.push(0),
    }
}
