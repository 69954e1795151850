//! Strict parsers for the command-line values: a semaphore value, a timeout and a mode.
//!
//! They accept exactly the documented forms and nothing "close enough": no sign on a
//! value, no hex, no exponent, no surrounding spaces. A malformed argument is
//! [`ErrorKind::InvalidInput`]; a well-formed one beyond its limit is
//! [`ErrorKind::OutOfRange`].

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The largest value a System V semaphore holds (SEMVMX).
pub const MAX_VALUE: u16 = 32767;

/// The longest finite timeout accepted, in seconds (about 136 years).
pub const MAX_TIMEOUT_SECS: u64 = u32::MAX as u64;

/// How long a wait may block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Block until the count is taken (a negative or omitted timeout).
    Forever,
    /// Don't block at all (a timeout of zero).
    Never,
    /// Block for at most this long.
    After(Duration),
}

/// Parse a semaphore value: decimal digits only, 0 to 32767 (a System V semaphore's
/// largest value).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] unless `s` is all digits; [`ErrorKind::OutOfRange`] above
/// 32767.
pub fn value(s: &str) -> Result<u16> {
    value_up_to(s, u32::from(MAX_VALUE)).map(|v| v as u16)
}

/// Parse a semaphore value: decimal digits only, 0 to `max` (the kind's largest value).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] unless `s` is all digits; [`ErrorKind::OutOfRange`] above
/// `max`.
pub fn value_up_to(s: &str, max: u32) -> Result<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid value {s:?}: expected decimal digits, 0 to {max}"),
        ));
    }
    match s.parse::<u64>() {
        Ok(v) if v <= u64::from(max) => Ok(v as u32),
        _ => Err(Error::new(
            ErrorKind::OutOfRange,
            format!("value {s} is out of range: at most {max}"),
        )),
    }
}

/// Parse how much a post adds: decimal digits, 1 to 32767.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] unless `s` is all digits, or for 0;
/// [`ErrorKind::OutOfRange`] above 32767.
pub fn count(s: &str) -> Result<u16> {
    count_up_to(s, u32::from(MAX_VALUE)).map(|v| v as u16)
}

/// Parse how much a post adds: decimal digits, 1 to `max` (the kind's largest value).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] unless `s` is all digits, or for 0;
/// [`ErrorKind::OutOfRange`] above `max`.
pub fn count_up_to(s: &str, max: u32) -> Result<u32> {
    match value_up_to(s, max) {
        Ok(0) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid count {s:?}: a post adds 1 to {max}"),
        )),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == ErrorKind::InvalidInput => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid count {s:?}: expected decimal digits, 1 to {max}"),
        )),
        Err(_) => Err(Error::new(
            ErrorKind::OutOfRange,
            format!("count {s} is out of range: a post adds at most {max}"),
        )),
    }
}

/// Parse an exit status: decimal digits, 0 to 255.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] unless `s` is all digits and at most 255.
pub fn exit_status(s: &str) -> Result<u8> {
    match s.parse::<u8>() {
        Ok(v) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid exit code {s:?}: expected 0 to 255"),
        )),
    }
}

/// Parse a timeout in seconds: `5`, `0.25`, `.5`, `5.`; negative means forever, `0` means
/// don't wait. Digits beyond nanoseconds are ignored.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for anything but an optional `-`, digits and one optional
/// `.` with digits (so no `nan`, `inf`, `1e3` or `+1`); [`ErrorKind::OutOfRange`] for a
/// finite timeout above [`MAX_TIMEOUT_SECS`].
pub fn timeout(s: &str) -> Result<Timeout> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!("invalid timeout {s:?}: expected seconds such as 5, 0.25 or -1"),
        )
    };
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let zero = whole.bytes().all(|b| b == b'0') && frac.bytes().all(|b| b == b'0');
    if zero {
        return Ok(Timeout::Never);
    }
    if negative {
        return Ok(Timeout::Forever);
    }
    let secs = match whole.trim_start_matches('0') {
        "" => 0,
        w => match w.parse::<u64>() {
            Ok(v) if v <= MAX_TIMEOUT_SECS => v,
            _ => {
                return Err(Error::new(
                    ErrorKind::OutOfRange,
                    format!("timeout {s} is out of range: at most {MAX_TIMEOUT_SECS} seconds"),
                ))
            }
        },
    };
    let mut nanos: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    match Duration::new(secs, nanos) {
        d if d.is_zero() => Ok(Timeout::Never),
        d => Ok(Timeout::After(d)),
    }
}

/// Parse a mode: octal digits (`600`, `0660`), at most 0777, giving the owner read and
/// write permission.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for anything else.
pub fn mode(s: &str) -> Result<u32> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("invalid mode {s:?}: {why}"),
        )
    };
    // Leading zeros are allowed, as chmod(1) allows them (00600).
    let digits = s.trim_start_matches('0');
    if s.is_empty() || digits.len() > 3 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad("expected octal permissions such as 0600 or 0660"));
    }
    let m = u32::from_str_radix(if digits.is_empty() { "0" } else { digits }, 8)
        .map_err(|_| bad("expected octal permissions"))?;
    if m > 0o777 {
        return Err(bad("expected permission bits only, at most 0777"));
    }
    if m & 0o600 != 0o600 {
        return Err(bad("the owner needs read and write permission (0600)"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_exit_statuses() {
        assert_eq!(count("1").unwrap(), 1);
        assert_eq!(count("32767").unwrap(), 32767);
        assert_eq!(count("0").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(count("32768").unwrap_err().kind(), ErrorKind::OutOfRange);
        assert_eq!(count("-1").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(count("").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(exit_status("0").unwrap(), 0);
        assert_eq!(exit_status("255").unwrap(), 255);
        for bad in ["256", "-1", "+1", "", " 1", "1x"] {
            assert!(exit_status(bad).is_err(), "{bad}");
        }
    }

    fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
        r.unwrap_err().kind()
    }

    #[test]
    fn values() {
        assert_eq!(value("0").unwrap(), 0);
        assert_eq!(value("32767").unwrap(), 32767);
        assert_eq!(value("007").unwrap(), 7);
        for bad in ["", "-1", "+1", "1.5", "0x10", " 1", "1 ", "１"] {
            assert_eq!(kind(value(bad)), ErrorKind::InvalidInput, "{bad:?}");
        }
        for big in ["32768", "99999999999999999999", "65536"] {
            assert_eq!(kind(value(big)), ErrorKind::OutOfRange, "{big:?}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout("0").unwrap(), Timeout::Never);
        assert_eq!(timeout("0.000").unwrap(), Timeout::Never);
        assert_eq!(timeout("-0").unwrap(), Timeout::Never);
        assert_eq!(timeout("-1").unwrap(), Timeout::Forever);
        assert_eq!(timeout("-0.5").unwrap(), Timeout::Forever);
        assert_eq!(timeout("-99999999999999999999").unwrap(), Timeout::Forever);
        assert_eq!(
            timeout("1").unwrap(),
            Timeout::After(Duration::from_secs(1))
        );
        assert_eq!(
            timeout("0.25").unwrap(),
            Timeout::After(Duration::from_millis(250))
        );
        assert_eq!(
            timeout(".5").unwrap(),
            Timeout::After(Duration::from_millis(500))
        );
        assert_eq!(
            timeout("1.0000000019").unwrap(),
            Timeout::After(Duration::new(1, 1))
        );
        assert_eq!(timeout("0.0000000001").unwrap(), Timeout::Never);
        assert_eq!(
            timeout("5.").unwrap(),
            Timeout::After(Duration::from_secs(5))
        );
        for bad in [
            "", "-", ".", "abc", "nan", "inf", "1e3", "--1", "+1", " 1", "-.", "1.2.3", "0x1",
        ] {
            assert_eq!(kind(timeout(bad)), ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(kind(timeout("99999999999999999999")), ErrorKind::OutOfRange);
        assert_eq!(kind(timeout("4294967296")), ErrorKind::OutOfRange);
        assert!(timeout("4294967295").is_ok());
    }

    #[test]
    fn modes() {
        assert_eq!(mode("600").unwrap(), 0o600);
        assert_eq!(mode("00600").unwrap(), 0o600);
        assert_eq!(mode("0660").unwrap(), 0o660);
        assert_eq!(mode("0777").unwrap(), 0o777);
        for bad in ["", "999", "0o600", "-1", "0400", "1600", "06600", "rw"] {
            assert_eq!(kind(mode(bad)), ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
