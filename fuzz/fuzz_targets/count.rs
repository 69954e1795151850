//! `parse::count` (how much `post NAME N` adds) and `parse::exit_status` against their
//! specifications: a count is decimal digits whose number is 1 to 32767, an exit status
//! decimal digits whose number is 0 to 255 (leading zeros allowed in both). A count of
//! digits above 32767 is out of range; everything else is invalid input, with a one-line
//! message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sem::parse::{count, exit_status};
use sem::ErrorKind;

/// The number `s` spells if it is all ASCII digits, saturating far above any limit here.
fn digits_value(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u32, |n, b| {
        n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    }))
}

fn one_line(msg: &str) {
    assert!(!msg.contains(['\n', '\r']), "a multi-line message: {msg:?}");
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let n = digits_value(&s);

    match (count(&s), n) {
        (Ok(got), Some(want)) if (1..=32767).contains(&want) => {
            assert_eq!(u32::from(got), want, "{s:?}")
        }
        (Err(e), Some(0) | None) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s:?}: {e}");
            one_line(&e.to_string());
        }
        (Err(e), Some(want)) if want > 32767 => {
            assert_eq!(e.kind(), ErrorKind::OutOfRange, "{s:?}: {e}");
            one_line(&e.to_string());
        }
        (got, want) => panic!("count {s:?}: parsed as {got:?}, specified {want:?}"),
    }

    match (exit_status(&s), n) {
        (Ok(got), Some(want)) if want <= 255 => assert_eq!(u32::from(got), want, "{s:?}"),
        (Err(e), want) if want.map_or(true, |w| w > 255) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s:?}: {e}");
            one_line(&e.to_string());
        }
        (got, want) => panic!("exit status {s:?}: parsed as {got:?}, specified {want:?}"),
    }
});
