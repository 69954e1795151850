//! The record parser on arbitrary bytes. Beyond "never panics":
//! - an accepted record is canonical: written back, it gives exactly the input bytes
//!   (so no two different files mean the same set) and parses to the same record again;
//! - it fits the size limit the reader enforces, names a non-zero key and a non-negative id;
//! - "another format version" is said only of input that starts `sem/N` followed by a
//!   space or the final newline, with N canonical digits other than the current version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sem::fuzzing::{ParseError, Record, MAX_LEN, VERSION};

fn canonical_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fuzz_target!(|data: &[u8]| {
    match Record::parse(data) {
        Ok(rec) => {
            let line = rec.to_string();
            assert_eq!(
                line.as_bytes(),
                data,
                "accepted a record that does not write back to the same bytes"
            );
            assert!(
                data.len() as u64 <= MAX_LEN,
                "accepted a record over MAX_LEN"
            );
            assert_ne!(rec.key.0, 0, "accepted key 0 (IPC_PRIVATE)");
            assert!(rec.id.0 >= 0, "accepted a negative id");
            assert_eq!(Record::parse(line.as_bytes()), Ok(rec));
        }
        Err(ParseError::OtherVersion(v)) => {
            assert!(
                canonical_digits(&v),
                "other version {v:?} is not canonical digits"
            );
            assert_ne!(v, VERSION.to_string(), "the current version called another");
            let prefix = format!("sem/{v}");
            assert!(data.starts_with(prefix.as_bytes()));
            assert!(
                matches!(data.get(prefix.len()), Some(b' ' | b'\n')),
                "the version is not a whole field"
            );
            assert_eq!(data.last(), Some(&b'\n'));
        }
        Err(ParseError::Malformed) => {}
    }
});
