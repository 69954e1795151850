//! Wall-clock time for people (local time stamps) and an interruptible nap.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;

use crate::sys;

/// Now, as seconds and milliseconds since the Unix epoch.
pub fn now() -> (i64, u32) {
    // A clock before 1970 is reported as the epoch.
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_millis(),
    )
}

/// `secs` since the epoch as local time, `YYYY-MM-DD HH:MM:SS` (localtime(3), so TZ
/// applies). Out-of-range times are shown as seconds.
pub fn local(secs: i64) -> String {
    match sys::local_time(secs) {
        Ok(tm) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            i64::from(tm.tm_year) + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        ),
        Err(_) => format!("@{secs}"),
    }
}

/// Sleep for `d`, or less when a handled signal arrives (then `false`).
pub fn nap(d: Duration) -> bool {
    !matches!(sys::nap(d), Err(Errno::EINTR))
}
