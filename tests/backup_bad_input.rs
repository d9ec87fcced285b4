//! Bad input never panics and always names the file and the reason: empty files, random bytes,
//! every real sample cut at every block boundary, one flipped byte in every header, the MSSQLBAK
//! magic, encrypted streams, unknown versions, and thousands of seeded mutations.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use logship::backup::{check_whole, read_headers, BackupHeader, ReadError, ReadErrorKind};

fn samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    if dir.join("NOTES.md").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is missing", dir.display());
        None
    }
}

const SAMPLES: &[&str] = &[
    "RestoreTimeClean.bak",
    "RestoreTimeClean_1.trn",
    "RestoreTimeClean_2.trn",
    "RestoreTimeClean_3.trn",
    "RestoreTimeClean2.bak",
    "RestoreTimeClean2_1.trn",
    "test_LOG_20160629_141500.trn",
];

fn load(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

fn read(bytes: &[u8]) -> Result<Vec<BackupHeader>, ReadError> {
    let path = Path::new("x/bad.trn");
    let r = read_headers(Cursor::new(bytes), path);
    if let Err(e) = &r {
        assert_eq!(e.path, path, "the error names the file");
        assert!(e.to_string().starts_with("x/bad.trn: "), "{e}");
    }
    r
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn xor16(b: &[u8]) -> u16 {
    b.chunks_exact(2)
        .fold(0, |a, w| a ^ u16::from_le_bytes([w[0], w[1]]))
}

/// One descriptor block as an independent walk of the test sees it.
#[derive(Debug)]
struct Block {
    off: usize,
    kind: [u8; 4],
    /// Offsets of its stream headers, with id and data length.
    streams: Vec<(usize, [u8; 4], u64)>,
    end: usize,
}

/// The block layout of a well-formed file (the test's own walk, to place cuts and flips).
fn blocks(d: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 52 <= d.len() {
        let kind: [u8; 4] = d[off..off + 4].try_into().unwrap();
        let fso = le16(d, off + 8) as usize;
        if &kind == b"SFMB" {
            out.push(Block {
                off,
                kind,
                streams: vec![],
                end: off + fso,
            });
            off += fso;
            continue;
        }
        let mut s = off + fso;
        let mut streams = vec![];
        let end = loop {
            let id: [u8; 4] = d[s..s + 4].try_into().unwrap();
            let len = u64::from_le_bytes(d[s + 8..s + 16].try_into().unwrap());
            streams.push((s, id, len));
            let e = s + 22 + len as usize;
            if &id == b"SPAD" {
                break e;
            }
            s = (e + 3) & !3;
        };
        out.push(Block {
            off,
            kind,
            streams,
            end,
        });
        off = end;
    }
    assert_eq!(off, d.len(), "the test's walk covers the file");
    out
}

fn end_of(bs: &[Block], kind: &[u8; 4]) -> usize {
    bs.iter().find(|b| &b.kind == kind).unwrap().end
}

#[test]
fn empty_and_random_files() {
    assert_eq!(read(&[]).unwrap_err().kind, ReadErrorKind::Empty);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for len in [1usize, 3, 4, 51, 52, 100, 4096, 70_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(
            read(&bytes).unwrap_err().kind,
            ReadErrorKind::NotMtf,
            "{len} random bytes"
        );
    }
    assert_eq!(
        read(b"TAP").unwrap_err().kind,
        ReadErrorKind::Truncated { offset: 0 }
    );
    assert_eq!(
        read(b"TAPE and then nothing").unwrap_err().kind,
        ReadErrorKind::Truncated { offset: 0 }
    );
    let mut zeros = b"TAPE".to_vec();
    zeros.resize(4096, 0);
    assert!(matches!(
        read(&zeros).unwrap_err().kind,
        ReadErrorKind::Checksum { offset: 0, .. }
    ));
}

#[test]
fn every_sample_cut_at_every_block_boundary() {
    let Some(dir) = samples() else { return };
    for name in SAMPLES {
        let d = load(&dir, name);
        let whole = read(&d).unwrap();
        let bs = blocks(&d);
        let (msci_end, msls_end) = (end_of(&bs, b"MSCI"), end_of(&bs, b"MSLS"));
        let mut cuts: Vec<usize> = bs
            .iter()
            .flat_map(|b| [b.off, b.off + 1, b.off + 52, b.off + 100])
            .collect();
        cuts.extend(bs.iter().flat_map(|b| b.streams.iter().map(|s| s.0 + 11)));
        cuts.retain(|&c| c < d.len());
        for cut in cuts {
            let r = read(&d[..cut]);
            if cut == 0 {
                assert_eq!(r.unwrap_err().kind, ReadErrorKind::Empty);
            } else if cut < msci_end {
                let e = r.unwrap_err();
                assert!(
                    matches!(e.kind, ReadErrorKind::Truncated { .. }),
                    "{name} cut at {cut}: {e}"
                );
            } else {
                let h = r.unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
                assert_eq!(h.len(), 1);
                assert_eq!(h[0].complete, cut >= msls_end, "{name} cut at {cut}");
                assert_eq!(
                    (h[0].first_lsn, h[0].last_lsn),
                    (whole[0].first_lsn, whole[0].last_lsn)
                );
                assert_eq!(h[0].backup_set_guid, whole[0].backup_set_guid);
            }
        }
    }
}

#[test]
fn check_whole_rejects_every_cut() {
    let Some(dir) = samples() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let name = "test_LOG_20160629_141500.trn";
    let d = load(&dir, name);
    for b in blocks(&d).iter().skip(1) {
        let path = tmp.path().join(format!("cut{}.trn", b.off));
        std::fs::write(&path, &d[..b.off]).unwrap();
        let e = check_whole(&path, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(e.kind, ReadErrorKind::Truncated { .. }),
            "cut at {}: {e}",
            b.off
        );
        assert_eq!(e.path, path);
    }
}

#[test]
fn one_flipped_byte_in_any_header_is_a_checksum_error() {
    let Some(dir) = samples() else { return };
    for name in SAMPLES.iter().filter(|n| n.ends_with(".trn")) {
        let mut d = load(&dir, name);
        let bs = blocks(&d);
        let mut headers: Vec<(usize, usize)> = bs.iter().map(|b| (b.off, 52)).collect();
        headers.extend(bs.iter().flat_map(|b| b.streams.iter().map(|s| (s.0, 22))));
        for (at, len) in headers {
            for i in at..at + len {
                d[i] ^= 0x41;
                let kind = read(&d).unwrap_err().kind;
                d[i] ^= 0x41;
                if i < 4 {
                    assert_eq!(kind, ReadErrorKind::NotMtf, "{name} byte {i}");
                } else {
                    assert!(
                        matches!(kind, ReadErrorKind::Checksum { offset, .. } if offset == at as u64),
                        "{name} byte {i} of the header at {at}: {kind:?}"
                    );
                }
            }
        }
    }
}

/// Rewrites a stream header field and fixes its checksum, as an encrypting writer would.
fn set_stream_field(d: &mut [u8], s: usize, field: usize, v: u16) {
    d[s + field..s + field + 2].copy_from_slice(&v.to_le_bytes());
    let ck = xor16(&d[s..s + 20]);
    d[s + 20..s + 22].copy_from_slice(&ck.to_le_bytes());
}

#[test]
fn outside_the_envelope_says_why() {
    let Some(dir) = samples() else { return };
    let d = load(&dir, "RestoreTimeClean_1.trn");
    let bs = blocks(&d);

    let mut compressed = b"MSSQLBAK".to_vec();
    compressed.extend_from_slice(&d);
    let e = read(&compressed).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Compressed);
    assert!(e.server_may_read());

    let mqci = bs.iter().find(|b| &b.kind == b"MSCI").unwrap().streams[0].0;
    for field in [16, 18] {
        let mut enc = d.clone();
        set_stream_field(&mut enc, mqci, field, 1);
        let e = read(&enc).unwrap_err();
        assert_eq!(
            e.kind,
            ReadErrorKind::Encrypted {
                offset: mqci as u64
            },
            "field {field}"
        );
        assert!(e.server_may_read());
    }
    let mqtl = bs
        .iter()
        .flat_map(|b| &b.streams)
        .find(|s| &s.1 == b"MQTL")
        .unwrap()
        .0;
    let mut enc = d.clone();
    set_stream_field(&mut enc, mqtl, 16, 3);
    assert_eq!(
        read(&enc).unwrap_err().kind,
        ReadErrorKind::Encrypted {
            offset: mqtl as u64
        }
    );

    // SCIN is not covered by a checksum: a changed major version reaches the version check.
    let mut v9 = d.clone();
    for b in bs
        .iter()
        .filter(|b| &b.kind == b"MSCI" || &b.kind == b"MSLS")
    {
        let scin = b.streams[0].0 + 22;
        assert_eq!(&v9[scin..scin + 4], b"SCIN");
        v9[scin + 0x1B] = 9;
    }
    let e = read(&v9).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::UnknownVersion { major: 9 });
    assert!(e.to_string().contains("version 9"), "{e}");

    let msci = bs.iter().find(|b| &b.kind == b"MSCI").unwrap();
    let mut nometa = d.clone();
    nometa[msci.streams[0].0 + 22 + 3] = b'X';
    assert_eq!(
        read(&nometa).unwrap_err().kind,
        ReadErrorKind::NoMetadata {
            offset: msci.off as u64
        }
    );

    // MSCI and MSLS must agree on the LSNs.
    let msls = bs.iter().find(|b| &b.kind == b"MSLS").unwrap();
    let mut disagree = d.clone();
    disagree[msls.streams[0].0 + 22 + 0x2A + 4] ^= 1;
    assert!(matches!(
        read(&disagree).unwrap_err().kind,
        ReadErrorKind::Malformed { .. }
    ));

    let mut notmtf = d.clone();
    notmtf[..4].copy_from_slice(b"TAPF");
    assert_eq!(read(&notmtf).unwrap_err().kind, ReadErrorKind::NotMtf);
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Thousands of seeded mutations of the bytes the reader reads (block heads, stream headers,
/// the MQCI metadata, the RAID stream), sometimes with a cut: never a panic, always a header or
/// an error naming the file.
#[test]
fn seeded_mutations_never_panic() {
    let Some(dir) = samples() else { return };
    let mut rng = SplitMix(2026);
    let (mut ok, mut errs) = (0u32, 0u32);
    for name in SAMPLES.iter().filter(|n| n.ends_with(".trn")) {
        let mut d = load(&dir, name);
        let bs = blocks(&d);
        // Byte ranges the reader looks at.
        let mut regions: Vec<(usize, usize)> = Vec::new();
        for b in &bs {
            let head_len = b.streams.first().map_or(b.end - b.off, |s| s.0 - b.off);
            regions.push((b.off, head_len));
            for &(s, id, len) in &b.streams {
                regions.push((s, 22));
                if &id == b"MQCI" || &id == b"RAID" {
                    regions.push((s + 22, (len as usize).min(0x200)));
                }
            }
        }
        for _ in 0..1500 {
            let mut saved = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let (at, len) = regions[rng.below(regions.len())];
                let i = at + rng.below(len);
                saved.push((i, d[i]));
                d[i] = match rng.below(4) {
                    0 => d[i] ^ (1 << rng.below(8)),
                    1 => 0xFF,
                    2 => 0,
                    _ => rng.next() as u8,
                };
            }
            let cut = if rng.below(8) == 0 {
                rng.below(d.len())
            } else {
                d.len()
            };
            match read(&d[..cut]) {
                Ok(h) => {
                    assert!(!h.is_empty());
                    ok += 1;
                }
                Err(_) => errs += 1,
            }
            for (i, b) in saved.into_iter().rev() {
                d[i] = b;
            }
        }
    }
    eprintln!("mutations: {ok} still read, {errs} rejected");
    assert!(errs > ok, "most mutations of headers must be rejected");
}

#[test]
fn missing_file_and_folder_are_io_errors_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("gone.trn");
    for p in [missing.as_path(), tmp.path()] {
        let e = logship::backup::read_file(p).unwrap_err();
        assert!(matches!(e.kind, ReadErrorKind::Io(_)), "{e}");
        assert_eq!(e.path, p);
        let e = check_whole(p, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(e.kind, ReadErrorKind::Io(_) | ReadErrorKind::Empty),
            "{e}"
        );
    }
}

/// MTF checksums cover the block and stream headers, not the data: check_whole finds a damaged
/// header anywhere up to the end, but a flipped byte inside the log records passes (SQL Server
/// itself only notices when it replays the record).
#[test]
fn check_whole_sees_headers_to_the_end_but_not_the_data() {
    let Some(dir) = samples() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = load(&dir, "RestoreTimeClean_1.trn");
    let bs = blocks(&d);
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    let last = bs.last().unwrap().off;
    let mut tail = d.clone();
    tail[last + 20] ^= 4;
    let e = check_whole(&write("tail.trn", &tail), &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(e.kind, ReadErrorKind::Checksum { offset, .. } if offset == last as u64),
        "{e}"
    );

    let (mqtl, _, len) = *bs
        .iter()
        .flat_map(|b| &b.streams)
        .find(|s| &s.1 == b"MQTL")
        .unwrap();
    let mut data = d.clone();
    data[mqtl + 22 + len as usize / 2] ^= 0xFF;
    let headers = check_whole(&write("data.trn", &data), &mut |_, _| {}).unwrap();
    assert_eq!(
        headers,
        read(&d)
            .unwrap()
            .into_iter()
            .map(|mut h| {
                h.path = tmp.path().join("data.trn");
                h
            })
            .collect::<Vec<_>>()
    );
}
