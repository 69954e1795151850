//! `parse::timeout` against its specification: an optional `-`, then digits with at most
//! one `.` and at least one digit; zero (in any spelling, or below a nanosecond) means
//! "don't wait", any other negative number "forever", and a positive one that many seconds
//! (digits past nanoseconds ignored) up to 2^32-1 s, beyond which it is out of range.
//! Anything else (`nan`, `inf`, `1e3`, `+1`, spaces) is invalid input. Messages are one
//! line.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sem::parse::{timeout, MAX_TIMEOUT_SECS};
use sem::{ErrorKind, Timeout};

fn model(s: &str) -> Result<Timeout, ErrorKind> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = match unsigned.find('.') {
        Some(dot) => (&unsigned[..dot], &unsigned[dot + 1..]),
        None => (unsigned, ""),
    };
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if whole.len() + frac.len() == 0 || !all_digits(whole) || !all_digits(frac) {
        return Err(ErrorKind::InvalidInput);
    }
    if whole.chars().chain(frac.chars()).all(|c| c == '0') {
        return Ok(Timeout::Never);
    }
    if negative {
        return Ok(Timeout::Forever);
    }
    let whole = whole.trim_start_matches('0');
    let max = MAX_TIMEOUT_SECS.to_string();
    if whole.len() > max.len() || (whole.len() == max.len() && whole > max.as_str()) {
        return Err(ErrorKind::OutOfRange);
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().unwrap()
    };
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)])
        .parse()
        .unwrap();
    match Duration::new(secs, nanos) {
        d if d.is_zero() => Ok(Timeout::Never),
        d => Ok(Timeout::After(d)),
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    match (timeout(&s), model(&s)) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{s:?}"),
        (Err(e), Err(want)) => {
            assert_eq!(e.kind(), want, "{s:?}: {e}");
            let msg = e.to_string();
            assert!(!msg.contains(['\n', '\r']), "a multi-line message: {msg:?}");
        }
        (got, want) => panic!("{s:?}: parsed as {got:?}, specified {want:?}"),
    }
});
