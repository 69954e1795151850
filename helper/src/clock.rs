//! Wall-clock time for people (local time stamps) and interruptible naps.

use std::os::fd::BorrowedFd;
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

/// How [`nap_watching`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nap {
    /// The whole nap was slept.
    Slept,
    /// A handled signal ended it early.
    Interrupted,
    /// The descriptor watched reported an error or a hang-up: for a pipe we write to,
    /// nobody reads it any more.
    HungUp,
}

/// Sleep for `d`, or less when a handled signal arrives or `fd` hangs up (poll(2) with no
/// events: a pipe whose readers are gone reports `POLLERR`). For a writer that would
/// otherwise learn that its reader left only at its next write, which may be long after.
pub fn nap_watching(fd: BorrowedFd<'_>, d: Duration) -> Nap {
    match sys::hung_up_within(fd, d) {
        Ok(false) => Nap::Slept,
        Ok(true) => Nap::HungUp,
        Err(Errno::EINTR) => Nap::Interrupted,
        // ENOMEM: sleep all the same, so that a caller's loop doesn't spin.
        Err(_) => match nap(d) {
            true => Nap::Slept,
            false => Nap::Interrupted,
        },
    }
}
