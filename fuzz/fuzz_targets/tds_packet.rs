//! Fuzz target for the simulator's TDS parsers: packet framing, PRELOGIN, LOGIN7, RPC and batch
//! payloads, and the statement parser. The first byte picks the parser; none may panic.
//! Run: `cargo +nightly fuzz run tds_packet` from the crate root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logship::sim::tds::{login, packet, rpc};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            let _ = packet::split_messages(rest);
        }
        1 => {
            let _ = login::parse_prelogin(rest);
        }
        2 => {
            let _ = login::parse_login7(rest);
        }
        3 => {
            let _ = rpc::parse_rpc(rest);
        }
        4 => {
            let _ = rpc::parse_batch(rest);
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let _ = logship::sim::sql::parse_batch(&text, &Default::default());
        }
    }
});
