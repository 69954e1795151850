//! `parse::mode` against its specification: octal digits (`600`, `0660`, `00600`: any
//! number of leading zeros, then at most three digits), at most 0777 (no set-id or sticky bits), giving the owner read and write; it returns
//! that number. Everything else is invalid input, with a one-line message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sem::parse::mode;
use sem::ErrorKind;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let significant = s.trim_start_matches('0');
    let octal = !s.is_empty()
        && significant.len() <= 3
        && s.chars().all(|c| ('0'..='7').contains(&c));
    let want = if octal {
        // At most three significant octal digits: no overflow possible.
        let m = significant
            .chars()
            .fold(0u32, |m, c| m * 8 + (c as u32 - '0' as u32));
        Some(m).filter(|&m| m <= 0o777 && m & 0o600 == 0o600)
    } else {
        None
    };
    match (mode(&s), want) {
        (Ok(got), Some(want)) => assert_eq!(got, want, "{s:?}"),
        (Err(e), None) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s:?}: {e}");
            let msg = e.to_string();
            assert!(!msg.contains(['\n', '\r']), "a multi-line message: {msg:?}");
        }
        (got, want) => panic!("{s:?}: parsed as {got:?}, specified {want:?}"),
    }
});
