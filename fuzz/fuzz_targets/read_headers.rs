//! Fuzz target: the native header reader on arbitrary bytes must return headers or a ReadError
//! naming the file, never panic, and agree with itself when the input is a valid backup.
//! Run: `cargo +nightly fuzz run read_headers` (seed corpus: `fuzz/seed.sh` copies the samples).

#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.trn");
    match logship::backup::read_headers(Cursor::new(data), path) {
        Ok(headers) => {
            assert!(!headers.is_empty(), "Ok with no backup set");
            for h in &headers {
                assert_eq!(h.path, path);
                assert!(h.first_lsn <= h.last_lsn, "FirstLSN after LastLSN accepted");
                assert!(logship::backup::KNOWN_MAJORS.contains(&h.software_version.major));
                assert!(h.family_sequence >= 1 && h.family_sequence <= h.family_count);
            }
        }
        Err(e) => assert_eq!(e.path, path),
    }
});
