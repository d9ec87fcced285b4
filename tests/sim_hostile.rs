//! Hostile input never panics the simulator and never stops it serving others: garbage, a
//! truncated packet, LOGIN7 offsets outside the packet, a message claiming 100 MB, a PLP value
//! claiming 100 MB, 1,000 connections opened and dropped, clients still connected when the server
//! stops. Plus property tests of the parsers.

mod sim_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use logship::sim::tds::{login, packet, rpc};
use proptest::prelude::*;
use sim_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

fn count_panics() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            prev(info);
        }));
    });
}

/// Reads until the server closes the connection; returns the bytes it sent. The timeout only
/// guards against a hang (a failure); it decides nothing on a working server.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "server did not close the connection");
    out
}

async fn still_serves(sim: &Sim) {
    let mut c = sim.client().await;
    assert_eq!(rows(&mut c, "SELECT 1", &[]).await, vec![vec!["1"]]);
}

fn lcg(seed: &mut u64) -> u8 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) as u8
}

#[tokio::test]
async fn garbage_truncation_and_bad_lengths() {
    count_panics();
    let (sim, _d) = Sim::with(&scenario()).await;
    let mut seed = 7u64;
    for k in 0..20 {
        let mut s = TcpStream::connect(sim.addr).await.unwrap();
        let junk: Vec<u8> = (0..(64 + k * 97)).map(|_| lcg(&mut seed)).collect();
        let _ = s.write_all(&junk).await;
        let _ = s.shutdown().await;
        until_closed(&mut s).await;
    }
    // a truncated packet, then the client goes away
    let mut s = TcpStream::connect(sim.addr).await.unwrap();
    s.write_all(&packet(18, 1, &prelogin_payload())[..10])
        .await
        .unwrap();
    drop(s);
    // a truncated packet on a connection that stays open does not block anyone
    let mut held = TcpStream::connect(sim.addr).await.unwrap();
    held.write_all(&[18, 1, 0, 100, 0, 0, 1, 0, 1, 2, 3])
        .await
        .unwrap();
    still_serves(&sim).await;
    // lengths below the header size and above the largest packet
    for len in [0u16, 7, 0xffff, 40000] {
        let mut s = TcpStream::connect(sim.addr).await.unwrap();
        let mut p = vec![18, 1];
        p.extend(len.to_be_bytes());
        p.extend([0, 0, 1, 0]);
        p.extend([0u8; 64]);
        s.write_all(&p).await.unwrap();
        until_closed(&mut s).await;
    }
    // a PRELOGIN option pointing outside the message
    let mut s = TcpStream::connect(sim.addr).await.unwrap();
    s.write_all(&packet(18, 1, &[1, 0x7f, 0, 0, 1, 0xff]))
        .await
        .unwrap();
    until_closed(&mut s).await;
    // a message of another type before login
    let mut s = TcpStream::connect(sim.addr).await.unwrap();
    s.write_all(&packet(1, 1, &batch_payload("SELECT 1")))
        .await
        .unwrap();
    until_closed(&mut s).await;
    still_serves(&sim).await;
    drop(held);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn login7_offsets_outside_the_packet() {
    count_panics();
    let (sim, _d) = Sim::with(&scenario()).await;
    let good = login::build_login7("failover", PASSWORD, "master", 4096);
    for at in [36usize, 40, 44, 48, 52, 64, 68] {
        let mut bad = good.clone();
        bad[at..at + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
        bad[at + 2..at + 4].copy_from_slice(&200u16.to_le_bytes());
        let mut s = TcpStream::connect(sim.addr).await.unwrap();
        s.write_all(&packet(18, 1, &prelogin_payload()))
            .await
            .unwrap();
        s.write_all(&packet(16, 1, &bad)).await.unwrap();
        let got = until_closed(&mut s).await;
        // only the PRELOGIN answer came back: no LOGINACK
        assert_eq!(
            got.len(),
            login::prelogin_response().len() + 8,
            "field {at}: only the PRELOGIN answer"
        );
    }
    // a LOGIN7 shorter than its fixed part
    let mut s = TcpStream::connect(sim.addr).await.unwrap();
    s.write_all(&packet(16, 1, &good[..40])).await.unwrap();
    until_closed(&mut s).await;
    still_serves(&sim).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_message_claiming_100_mb_is_refused() {
    count_panics();
    let (sim, _d) = Sim::with(&scenario()).await;
    // after login, packets without end-of-message beyond the message cap
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    let body = vec![b'x'; 32760];
    let mut sent = 0usize;
    while sent < 100 << 20 {
        if raw.s.write_all(&packet(1, 0, &body)).await.is_err() {
            break;
        }
        sent += body.len();
    }
    assert!(
        sent < 100 << 20,
        "the server stopped reading long before 100 MB"
    );
    let _ = until_closed(&mut raw.s).await;

    // a PLP parameter whose chunk claims 100 MB inside a small RPC: an error, the session goes on
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    let mut b = vec![22, 0, 0, 0, 18, 0, 0, 0, 2, 0];
    b.extend([0u8; 8]);
    b.extend([1, 0, 0, 0]);
    b.extend([0xff, 0xff, 10, 0, 0, 0, 0, 0]);
    b.extend([0xe7, 0xff, 0xff, 0, 0, 0, 0, 0]);
    b.extend((100u64 << 20).to_le_bytes());
    b.extend((100u32 << 20).to_le_bytes());
    b.extend([b'a'; 64]);
    raw.send(3, &b).await;
    let r = raw.response().await.unwrap();
    assert_eq!(
        r.msgs.iter().map(|m| m.number).collect::<Vec<_>>(),
        vec![8009]
    );
    raw.batch("SET NOCOUNT ON").await;
    let r = raw.response().await.unwrap();
    assert!(r.msgs.is_empty() && r.done_status == vec![0]);
    still_serves(&sim).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_thousand_connections_opened_and_dropped() {
    count_panics();
    let (sim, _d) = Sim::with(&scenario()).await;
    for round in 0..10 {
        let mut tasks = Vec::new();
        for k in 0..100 {
            let addr = sim.addr;
            tasks.push(tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(addr).await else {
                    return;
                };
                match (round + k) % 3 {
                    0 => {}
                    1 => {
                        let _ = s.write_all(&packet(18, 1, &prelogin_payload())).await;
                    }
                    _ => {
                        let _ = s.write_all(&packet(18, 0, &prelogin_payload())[..5]).await;
                    }
                }
                drop(s);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    still_serves(&sim).await;
    // and many logged-in clients at once
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(sim.client().await);
    }
    for c in &mut clients {
        assert_eq!(rows(c, "SELECT 1", &[]).await.len(), 1);
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// Whether the server has closed `s` already: a non-blocking read sees the end of the stream.
fn closed_now(s: TcpStream) -> bool {
    use std::io::Read;
    let mut s = s.into_std().unwrap();
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // What the server sent before closing (a login answer).
            Ok(_) => continue,
            // Nothing to read and no end yet: the session is still open.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            // Closed with a reset: closed all the same.
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn a_stopped_server_has_ended_every_session() {
    // A caller removes the state folder once `serve` returns, so no session may still be running
    // then: not one that never finished its handshake, not an idle logged-in one.
    let (sim, _d) = Sim::with(&scenario()).await;
    let silent = TcpStream::connect(sim.addr).await.unwrap();
    let mut half = TcpStream::connect(sim.addr).await.unwrap();
    half.write_all(&packet(18, 1, &prelogin_payload()))
        .await
        .unwrap();
    let (idle, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    sim.stop().await;
    assert!(
        closed_now(silent),
        "a session in its handshake outlived the server"
    );
    assert!(
        closed_now(half),
        "a session after PRELOGIN outlived the server"
    );
    assert!(
        closed_now(idle.s),
        "a logged-in session outlived the server"
    );
}

#[tokio::test]
async fn unknown_message_type_after_login_closes_only_that_connection() {
    let (sim, _d) = Sim::with(&scenario()).await;
    let (mut raw, _) = Raw::login(sim.addr, "failover", PASSWORD).await;
    raw.send(7, &[1, 2, 3]).await;
    until_closed(&mut raw.s).await;
    still_serves(&sim).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = packet::split_messages(&bytes);
        let _ = login::parse_prelogin(&bytes);
        let _ = login::parse_login7(&bytes);
        let _ = rpc::parse_rpc(&bytes);
        let _ = rpc::parse_batch(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = logship::sim::sql::parse_batch(&text, &Default::default());
    }

    #[test]
    fn mutated_login7_never_panics(pos in 0usize..200, val in any::<u8>(), cut in 0usize..250) {
        let mut b = login::build_login7("failover", "pw", "master", 4096);
        if pos < b.len() {
            b[pos] = val;
        }
        b.truncate(cut.max(1));
        let _ = login::parse_login7(&b);
    }
}
