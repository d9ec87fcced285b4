//! TDS packet framing: the 8-byte header, reassembling messages from packets (with a size cap)
//! and splitting responses into packets at the negotiated size.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const HEADER_LEN: usize = 8;
/// The largest packet TDS allows (the packet size option tops out at 32767; some clients round up).
pub const MAX_PACKET: usize = 32768;
/// The largest message the simulator accepts: the statements it serves are small, so a client
/// claiming more is refused instead of being allowed to grow a buffer without bound.
pub const MAX_MESSAGE: usize = 4 << 20;

pub const TYPE_SQL_BATCH: u8 = 1;
pub const TYPE_RPC: u8 = 3;
pub const TYPE_REPLY: u8 = 4;
pub const TYPE_ATTENTION: u8 = 6;
pub const TYPE_TRANSACTION_MANAGER: u8 = 14;
pub const TYPE_LOGIN7: u8 = 16;
pub const TYPE_PRELOGIN: u8 = 18;

pub const STATUS_EOM: u8 = 0x01;

/// A packet header as read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: u8,
    pub status: u8,
    pub length: u16,
    pub spid: u16,
    pub id: u8,
}

/// Why bytes from the client are not a valid TDS stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("packet length {0} outside {HEADER_LEN}..={MAX_PACKET}")]
    BadLength(u16),
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("packet of type {got} inside a message of type {expected}")]
    MixedTypes { expected: u8, got: u8 },
    #[error("truncated: {0} bytes where a packet header needs {HEADER_LEN}")]
    Truncated(usize),
}

/// Parses a packet header; checks the length is possible.
pub fn parse_header(b: &[u8]) -> Result<Header, FrameError> {
    if b.len() < HEADER_LEN {
        return Err(FrameError::Truncated(b.len()));
    }
    let length = u16::from_be_bytes([b[2], b[3]]);
    if (length as usize) < HEADER_LEN || length as usize > MAX_PACKET {
        return Err(FrameError::BadLength(length));
    }
    Ok(Header {
        ty: b[0],
        status: b[1],
        length,
        spid: u16::from_be_bytes([b[4], b[5]]),
        id: b[6],
    })
}

/// One whole client message: its type and the payloads of its packets joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub ty: u8,
    pub status: u8,
    pub payload: Vec<u8>,
}

/// Reassembles messages from a byte slice holding whole packets (pure; used by the fuzz target).
/// Returns the messages and the number of bytes consumed (an incomplete tail is left).
pub fn split_messages(mut b: &[u8]) -> Result<(Vec<Message>, usize), FrameError> {
    let total = b.len();
    let mut out = Vec::new();
    let mut cur: Option<Message> = None;
    let mut consumed = 0;
    while b.len() >= HEADER_LEN {
        let h = parse_header(b)?;
        if b.len() < h.length as usize {
            break;
        }
        let body = &b[HEADER_LEN..h.length as usize];
        let msg = cur.get_or_insert_with(|| Message {
            ty: h.ty,
            status: h.status,
            payload: Vec::new(),
        });
        if msg.ty != h.ty {
            return Err(FrameError::MixedTypes {
                expected: msg.ty,
                got: h.ty,
            });
        }
        if msg.payload.len() + body.len() > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        msg.payload.extend_from_slice(body);
        b = &b[h.length as usize..];
        if h.status & STATUS_EOM != 0 {
            out.push(cur.take().expect("message in progress"));
            consumed = total - b.len();
        }
    }
    Ok((out, consumed))
}

/// Reads one whole message. `Ok(None)` on a clean end of stream between messages.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Message>> {
    let mut msg: Option<Message> = None;
    loop {
        let mut hb = [0u8; HEADER_LEN];
        match r.read_exact(&mut hb).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && msg.is_none() => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
        let h = parse_header(&hb).map_err(invalid)?;
        let m = msg.get_or_insert_with(|| Message {
            ty: h.ty,
            status: h.status,
            payload: Vec::new(),
        });
        if m.ty != h.ty {
            return Err(invalid(FrameError::MixedTypes {
                expected: m.ty,
                got: h.ty,
            }));
        }
        let n = h.length as usize - HEADER_LEN;
        if m.payload.len() + n > MAX_MESSAGE {
            return Err(invalid(FrameError::TooLarge));
        }
        let start = m.payload.len();
        m.payload.resize(start + n, 0);
        r.read_exact(&mut m.payload[start..]).await?;
        if h.status & STATUS_EOM != 0 {
            return Ok(msg);
        }
    }
}

fn invalid(e: FrameError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Splits `payload` into reply packets of at most `packet_size` bytes; `last` sets EOM on the last.
pub fn frame(payload: &[u8], packet_size: usize, last: bool, first_id: &mut u8) -> Vec<u8> {
    let body = packet_size.clamp(512, MAX_PACKET) - HEADER_LEN;
    let mut out = Vec::with_capacity(payload.len() + (payload.len() / body + 1) * HEADER_LEN);
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(body).collect()
    };
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        let status = if last && i + 1 == n { STATUS_EOM } else { 0 };
        let len = (c.len() + HEADER_LEN) as u16;
        out.extend_from_slice(&[TYPE_REPLY, status]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[0, 0, *first_id, 0]);
        *first_id = first_id.wrapping_add(1);
        out.extend_from_slice(c);
    }
    out
}

/// Writes framed bytes and flushes.
pub async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ty: u8, status: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, status];
        v.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0, 1, 0]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn reassembles_and_rejects() {
        let mut b = packet(1, 0, b"abc");
        b.extend(packet(1, 1, b"de"));
        b.extend(packet(3, 1, b"x"));
        let (msgs, used) = split_messages(&b).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].payload, b"abcde");
        assert_eq!(used, b.len());
        // a mixed-type message, a short length and a huge one
        let mut bad = packet(1, 0, b"a");
        bad.extend(packet(3, 1, b"b"));
        assert!(matches!(
            split_messages(&bad),
            Err(FrameError::MixedTypes { .. })
        ));
        assert_eq!(
            parse_header(&[1, 1, 0, 4, 0, 0, 0, 0]),
            Err(FrameError::BadLength(4))
        );
        assert_eq!(
            parse_header(&[1, 1, 0xff, 0xff, 0, 0, 0, 0]),
            Err(FrameError::BadLength(0xffff))
        );
        assert_eq!(parse_header(&[1, 1]), Err(FrameError::Truncated(2)));
    }

    #[test]
    fn frames_at_packet_size() {
        let mut id = 1;
        let out = frame(&vec![7u8; 1000], 512, true, &mut id);
        let (msgs, used) = split_messages(&out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(msgs[0].payload.len(), 1000);
        assert_eq!(out.len(), 1000 + 2 * 8);
        assert_eq!(id, 3);
    }
}
