//! RPC requests and SQL batches as clients send them: ALL_HEADERS, the procedure name or id, and
//! typed parameters (the TYPE_INFO forms tiberius, FreeTDS and python-tds use). Every read is
//! bounds-checked: a malformed request is an error, never a panic.

use uuid::Uuid;

/// A parameter or literal value, reduced to what the statement engine needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    /// A decimal: unscaled value and scale.
    Decimal(i128, u8),
    Str(String),
    Guid(Uuid),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as text, the way SQL Server converts it to nvarchar.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Null | Value::Bytes(_) => None,
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Decimal(v, 0) => Some(v.to_string()),
            Value::Decimal(v, s) => Some(format!("{}", *v as f64 / 10f64.powi(*s as i32))),
            Value::Str(s) => Some(s.clone()),
            Value::Guid(g) => Some(g.to_string().to_uppercase()),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Decimal(v, 0) => i64::try_from(*v).ok(),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_guid(&self) -> Option<Uuid> {
        match self {
            Value::Guid(g) => Some(*g),
            Value::Str(s) => Uuid::parse_str(s.trim().trim_matches(|c| c == '{' || c == '}')).ok(),
            _ => None,
        }
    }
}

/// Why an RPC payload could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RpcError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("unsupported parameter type 0x{0:02x}")]
    UnsupportedType(u8),
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// One RPC call: the procedure (id or name) and its parameters in order.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcCall {
    pub proc_id: Option<u16>,
    pub proc_name: Option<String>,
    pub params: Vec<(String, Value)>,
}

pub struct Cur<'a> {
    b: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RpcError> {
        let s = self.b.get(
            self.pos
                ..self
                    .pos
                    .checked_add(n)
                    .ok_or(RpcError::Truncated(self.pos))?,
        );
        let s = s.ok_or(RpcError::Truncated(self.pos))?;
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, RpcError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, RpcError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    pub fn u32(&mut self) -> Result<u32, RpcError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, RpcError> {
        let s = self.take(8)?;
        Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
    }
    fn utf16(&mut self, chars: usize) -> Result<String, RpcError> {
        Ok(utf16(self.take(chars * 2)?))
    }
}

pub fn utf16(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Skips ALL_HEADERS (TDS 7.2+) at the start of a batch or RPC payload.
pub fn skip_all_headers(c: &mut Cur<'_>) -> Result<(), RpcError> {
    if c.remaining() < 4 {
        return Ok(());
    }
    let at = c.pos;
    let total = c.u32()? as usize;
    // ALL_HEADERS is at least 4 (itself) and plausible headers are small; anything else means the
    // client sent no ALL_HEADERS (pre-7.2) and the bytes are the statement itself.
    if !(4..=1024).contains(&total) || total > c.remaining() + 4 {
        c.pos = at;
        return Ok(());
    }
    c.take(total - 4)?;
    Ok(())
}

/// The text of a SQL batch message.
pub fn parse_batch(b: &[u8]) -> Result<String, RpcError> {
    let mut c = Cur::new(b);
    skip_all_headers(&mut c)?;
    if c.remaining() % 2 != 0 {
        return Err(RpcError::Malformed("batch text of odd length"));
    }
    Ok(utf16(c.take(c.remaining())?))
}

/// Parses an RPC request message (the first call; batched calls are refused).
pub fn parse_rpc(b: &[u8]) -> Result<RpcCall, RpcError> {
    let mut c = Cur::new(b);
    skip_all_headers(&mut c)?;
    let len = c.u16()?;
    let (proc_id, proc_name) = if len == 0xffff {
        (Some(c.u16()?), None)
    } else {
        (None, Some(c.utf16(len as usize)?))
    };
    let _flags = c.u16()?;
    let mut params = Vec::new();
    while c.remaining() > 0 {
        let n = c.u8()?;
        if n == 0x80 || n == 0xff || n == 0xfe {
            return Err(RpcError::Malformed("several RPC calls in one message"));
        }
        let name = c.utf16(n as usize)?;
        let _status = c.u8()?;
        params.push((name, read_typed_value(&mut c)?));
    }
    Ok(RpcCall {
        proc_id,
        proc_name,
        params,
    })
}

fn le_int(b: &[u8]) -> i64 {
    match b.len() {
        1 => b[0] as i64,
        2 => i16::from_le_bytes([b[0], b[1]]) as i64,
        4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        8 => i64::from_le_bytes(b.try_into().expect("8 bytes")),
        _ => 0,
    }
}

fn guid(b: &[u8]) -> Result<Value, RpcError> {
    if b.len() != 16 {
        return Err(RpcError::Malformed("uniqueidentifier not 16 bytes"));
    }
    let mut d: [u8; 16] = b.try_into().expect("16 bytes");
    reorder_guid(&mut d);
    Ok(Value::Guid(Uuid::from_bytes(d)))
}

/// SQL Server stores the first three GUID groups little-endian; swapping is its own inverse.
pub fn reorder_guid(d: &mut [u8; 16]) {
    d[0..4].reverse();
    d[4..6].reverse();
    d[6..8].reverse();
}

fn float(b: &[u8]) -> Value {
    match b.len() {
        4 => Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        8 => Value::Float(f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        _ => Value::Null,
    }
}

fn decimal(b: &[u8], scale: u8) -> Result<Value, RpcError> {
    let (sign, mag) = b
        .split_first()
        .ok_or(RpcError::Malformed("empty decimal"))?;
    if mag.len() > 16 {
        return Err(RpcError::Malformed("decimal longer than 16 bytes"));
    }
    let mut m = [0u8; 16];
    m[..mag.len()].copy_from_slice(mag);
    let v = u128::from_le_bytes(m);
    let v = i128::try_from(v).map_err(|_| RpcError::Malformed("decimal out of range"))?;
    Ok(Value::Decimal(if *sign == 0 { -v } else { v }, scale))
}

/// Reads TYPE_INFO then the value.
pub fn read_typed_value(c: &mut Cur<'_>) -> Result<Value, RpcError> {
    let ty = c.u8()?;
    match ty {
        0x1f => Ok(Value::Null),
        0x30 | 0x32 | 0x34 | 0x38 | 0x7f => {
            let n = match ty {
                0x30 | 0x32 => 1,
                0x34 => 2,
                0x38 => 4,
                _ => 8,
            };
            Ok(Value::Int(le_int(c.take(n)?)))
        }
        0x3b => Ok(float(c.take(4)?)),
        0x3e => Ok(float(c.take(8)?)),
        0x3a | 0x7a => Ok(Value::Bytes(c.take(4)?.to_vec())),
        0x3c | 0x3d => Ok(Value::Bytes(c.take(8)?.to_vec())),
        // byte-length types: TYPE_INFO carries a max length, the value its own length
        0x24 | 0x26 | 0x68 | 0x6d | 0x6e | 0x6f => {
            let _max = c.u8()?;
            let n = c.u8()? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            let b = c.take(n)?;
            match ty {
                0x24 => guid(b),
                0x26 | 0x68 => Ok(Value::Int(le_int(b))),
                0x6d => Ok(float(b)),
                _ => Ok(Value::Bytes(b.to_vec())),
            }
        }
        0x37 | 0x3f | 0x6a | 0x6c => {
            let _max = c.u8()?;
            let _precision = c.u8()?;
            let scale = c.u8()?;
            let n = c.u8()? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            decimal(c.take(n)?, scale)
        }
        0x28 => {
            let n = c.u8()? as usize;
            Ok(if n == 0 {
                Value::Null
            } else {
                Value::Bytes(c.take(n)?.to_vec())
            })
        }
        0x29..=0x2b => {
            let _scale = c.u8()?;
            let n = c.u8()? as usize;
            Ok(if n == 0 {
                Value::Null
            } else {
                Value::Bytes(c.take(n)?.to_vec())
            })
        }
        0xa5 | 0xad | 0xa7 | 0xaf | 0xe7 | 0xef => {
            let max = c.u16()?;
            let text = matches!(ty, 0xa7 | 0xaf | 0xe7 | 0xef);
            if text {
                c.take(5)?; // collation
            }
            let raw = if max == 0xffff {
                match read_plp(c)? {
                    Some(v) => v,
                    None => return Ok(Value::Null),
                }
            } else {
                let n = c.u16()?;
                if n == 0xffff {
                    return Ok(Value::Null);
                }
                c.take(n as usize)?.to_vec()
            };
            Ok(match ty {
                0xe7 | 0xef => {
                    if raw.len() % 2 != 0 {
                        return Err(RpcError::Malformed("odd-length nvarchar"));
                    }
                    Value::Str(utf16(&raw))
                }
                0xa7 | 0xaf => Value::Str(String::from_utf8_lossy(&raw).into_owned()),
                _ => Value::Bytes(raw),
            })
        }
        other => Err(RpcError::UnsupportedType(other)),
    }
}

/// Reads a PLP value (varchar(max) and friends). `None` for NULL.
fn read_plp(c: &mut Cur<'_>) -> Result<Option<Vec<u8>>, RpcError> {
    let total = c.u64()?;
    if total == u64::MAX {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        let n = c.u32()? as usize;
        if n == 0 {
            return Ok(Some(out));
        }
        if out.len() + n > super::packet::MAX_MESSAGE {
            return Err(RpcError::Malformed("PLP value larger than a message"));
        }
        out.extend_from_slice(c.take(n)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nvarchar(s: &str) -> Vec<u8> {
        let mut v = vec![0xe7, 0x40, 0x1f, 0, 0, 0, 0, 0];
        let b: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        v.extend((b.len() as u16).to_le_bytes());
        v.extend(b);
        v
    }

    #[test]
    fn parses_sp_executesql_like_tiberius() {
        let mut b = vec![22, 0, 0, 0, 18, 0, 2, 0];
        b.extend([0u8; 14]);
        b.extend([0xff, 0xff, 10, 0, 0, 0]);
        b.extend([0, 0]);
        b.extend(nvarchar("SELECT @P1"));
        b.extend([0, 0]);
        b.extend(nvarchar("@P1 int"));
        b.extend([3]);
        b.extend("@P1".encode_utf16().flat_map(|u| u.to_le_bytes()));
        b.extend([0, 0x26, 4, 4, 42, 0, 0, 0]);
        b.extend([0, 0, 0x24, 16, 16]);
        b.extend([
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 8, 9, 10, 11, 12, 13, 14, 15,
        ]);
        b.extend([
            0, 0, 0x6c, 17, 25, 0, 13, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let call = parse_rpc(&b).unwrap();
        assert_eq!(call.proc_id, Some(10));
        assert_eq!(call.params[0].1, Value::Str("SELECT @P1".into()));
        assert_eq!(call.params[2], ("@P1".into(), Value::Int(42)));
        assert_eq!(
            call.params[3].1.as_guid().unwrap().to_string(),
            "00112233-4455-6677-0809-0a0b0c0d0e0f"
        );
        assert_eq!(call.params[4].1, Value::Decimal(1, 0));
        // every truncation is an error, never a panic
        for n in 0..b.len() {
            let _ = parse_rpc(&b[..n]);
        }
        assert!(parse_rpc(&b[..b.len() - 1]).is_err());
    }
}
