//! `parse::value` against its specification: it accepts exactly the non-empty strings of
//! ASCII digits whose number is at most 32767 (leading zeros allowed), and returns that
//! number; other strings of digits are out of range, anything else is invalid input; every
//! error message is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sem::parse::value;
use sem::{ErrorKind, MAX_VALUE};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Compare as decimal strings, so that no integer of the model can overflow.
    let number = match s.trim_start_matches('0') {
        "" => "0",
        n => n,
    };
    let max = MAX_VALUE.to_string();
    let fits = number.len() < max.len() || (number.len() == max.len() && number <= max.as_str());
    match value(&s) {
        Ok(v) => {
            assert!(digits && fits, "accepted {s:?}");
            assert_eq!(v.to_string(), number, "{s:?}");
        }
        Err(e) => {
            let want = match (digits, fits) {
                (false, _) => ErrorKind::InvalidInput,
                (true, false) => ErrorKind::OutOfRange,
                (true, true) => panic!("refused {s:?}: {e}"),
            };
            assert_eq!(e.kind(), want, "{s:?}: {e}");
            let msg = e.to_string();
            assert!(!msg.contains(['\n', '\r']), "a multi-line message: {msg:?}");
        }
    }
});
