//! PRELOGIN and LOGIN7: parsing what clients send (every offset checked against the packet)
//! and building the PRELOGIN answer.

/// Why a PRELOGIN or LOGIN7 payload is malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error("{what}: offset {offset} + length {len} outside the {size}-byte message")]
    OutOfBounds {
        what: &'static str,
        offset: usize,
        len: usize,
        size: usize,
    },
    #[error("PRELOGIN option table not terminated")]
    Unterminated,
    #[error("LOGIN7 shorter than its fixed part ({0} bytes)")]
    Short(usize),
}

/// The options of a client PRELOGIN the simulator cares about.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prelogin {
    pub encryption: Option<u8>,
    pub version: Option<(u32, u16)>,
}

pub const ENCRYPT_NOT_SUP: u8 = 2;

/// Parses the option table of a PRELOGIN payload; options pointing outside it are errors.
pub fn parse_prelogin(b: &[u8]) -> Result<Prelogin, LoginError> {
    let mut out = Prelogin::default();
    let mut i = 0;
    loop {
        let token = *b.get(i).ok_or(LoginError::Unterminated)?;
        if token == 0xff {
            return Ok(out);
        }
        let e = b.get(i + 1..i + 5).ok_or(LoginError::Unterminated)?;
        let off = u16::from_be_bytes([e[0], e[1]]) as usize;
        let len = u16::from_be_bytes([e[2], e[3]]) as usize;
        let data = b.get(off..off + len).ok_or(LoginError::OutOfBounds {
            what: "PRELOGIN option",
            offset: off,
            len,
            size: b.len(),
        })?;
        match token {
            0 if len >= 6 => {
                out.version = Some((
                    u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                    u16::from_be_bytes([data[4], data[5]]),
                ))
            }
            1 if len >= 1 => out.encryption = Some(data[0]),
            _ => {}
        }
        i += 5;
    }
}

/// The server's PRELOGIN answer: VERSION (13.0.5081), ENCRYPTION = NOT_SUP, INSTOPT ok, MARS off.
pub fn prelogin_response() -> Vec<u8> {
    let opts: [(u8, Vec<u8>); 3] = [
        (0, vec![13, 0, 0x13, 0xd9, 0, 0]),
        (1, vec![ENCRYPT_NOT_SUP]),
        (4, vec![0]),
    ];
    let table_len = opts.len() * 5 + 1;
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (tok, d) in &opts {
        table.push(*tok);
        table.extend_from_slice(&((table_len + data.len()) as u16).to_be_bytes());
        table.extend_from_slice(&(d.len() as u16).to_be_bytes());
        data.extend_from_slice(d);
    }
    table.push(0xff);
    table.extend(data);
    table
}

/// What a LOGIN7 message says. The password is decoded only to be hashed and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login7 {
    pub tds_version: u32,
    pub packet_size: u32,
    pub hostname: String,
    pub username: String,
    pub password: String,
    pub app_name: String,
    pub server_name: String,
    pub language: String,
    pub database: String,
    /// SSPI (Windows authentication) data was sent: not supported by the simulator.
    pub sspi: bool,
}

const FIXED: usize = 94;

/// Parses a LOGIN7 payload; every (offset, length) pair is checked against the payload.
pub fn parse_login7(b: &[u8]) -> Result<Login7, LoginError> {
    if b.len() < FIXED {
        return Err(LoginError::Short(b.len()));
    }
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let string = |what: &'static str, o: usize| -> Result<String, LoginError> {
        let (off, chars) = (u16_at(o), u16_at(o + 2));
        let len = chars * 2;
        let raw = b.get(off..off + len).ok_or(LoginError::OutOfBounds {
            what,
            offset: off,
            len,
            size: b.len(),
        })?;
        Ok(utf16(raw))
    };
    let pw_off = u16_at(44);
    let pw_len = u16_at(46) * 2;
    let pw = b
        .get(pw_off..pw_off + pw_len)
        .ok_or(LoginError::OutOfBounds {
            what: "password",
            offset: pw_off,
            len: pw_len,
            size: b.len(),
        })?;
    // The client swaps each byte's nibbles and XORs it with 0xA5; undo it.
    let decoded: Vec<u8> = pw.iter().map(|x| (x ^ 0xa5).rotate_left(4)).collect();
    Ok(Login7 {
        tds_version: u32_at(4),
        packet_size: u32_at(8),
        hostname: string("hostname", 36)?,
        username: string("username", 40)?,
        password: utf16(&decoded),
        app_name: string("app name", 48)?,
        server_name: string("server name", 52)?,
        language: string("language", 64)?,
        database: string("database", 68)?,
        sspi: u16_at(80) > 0,
    })
}

fn utf16(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Builds a LOGIN7 payload the way clients do (tests and the fuzz seed corpus use it).
pub fn build_login7(user: &str, password: &str, database: &str, packet_size: u32) -> Vec<u8> {
    let enc = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect() };
    let pw: Vec<u8> = enc(password)
        .into_iter()
        .map(|x| x.rotate_left(4) ^ 0xa5)
        .collect();
    let fields: [(usize, Vec<u8>, usize); 9] = [
        (36, enc("host"), 4),
        (40, enc(user), user.encode_utf16().count()),
        (44, pw, password.encode_utf16().count()),
        (48, enc("logship-test"), 12),
        (52, enc("sim"), 3),
        (56, Vec::new(), 0),
        (60, enc("test"), 4),
        (64, Vec::new(), 0),
        (68, enc(database), database.encode_utf16().count()),
    ];
    let mut b = vec![0u8; FIXED];
    b[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
    b[8..12].copy_from_slice(&packet_size.to_le_bytes());
    for (at, data, chars) in fields {
        let off = b.len() as u16;
        b[at..at + 2].copy_from_slice(&off.to_le_bytes());
        b[at + 2..at + 4].copy_from_slice(&(chars as u16).to_le_bytes());
        b.extend(data);
    }
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login7_round_trip_and_bounds() {
        let b = build_login7("failover", "pässword", "master", 4096);
        let l = parse_login7(&b).unwrap();
        assert_eq!(
            (
                l.username.as_str(),
                l.password.as_str(),
                l.database.as_str()
            ),
            ("failover", "pässword", "master")
        );
        assert_eq!(l.packet_size, 4096);
        // every offset field pointing past the end is refused, never a panic
        for at in [36, 40, 44, 48, 52, 64, 68] {
            let mut bad = b.clone();
            bad[at..at + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
            bad[at + 2..at + 4].copy_from_slice(&5u16.to_le_bytes());
            assert!(
                matches!(parse_login7(&bad), Err(LoginError::OutOfBounds { .. })),
                "field at {at}"
            );
        }
        assert_eq!(parse_login7(&b[..50]), Err(LoginError::Short(50)));
    }

    #[test]
    fn prelogin_parse() {
        let r = prelogin_response();
        let p = parse_prelogin(&r).unwrap();
        assert_eq!(p.encryption, Some(ENCRYPT_NOT_SUP));
        assert_eq!(
            parse_prelogin(&[1, 0, 0x20, 0, 1, 0xff]).unwrap_err(),
            LoginError::OutOfBounds {
                what: "PRELOGIN option",
                offset: 32,
                len: 1,
                size: 6
            }
        );
        assert_eq!(parse_prelogin(&[1, 0]), Err(LoginError::Unterminated));
    }
}
