//! poll(2): sleeping until descriptors have events.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;

/// `poll(fds, timeout)`: sleep until an event on one of `fds` (a negative descriptor is
/// skipped), or for `timeout` (`None`: for ever). Returns how many have events; each
/// entry's `revents` says which (POLLHUP and POLLERR come even when not asked for: a pipe
/// whose other side has gone, a pidfd whose process ended).
///
/// # Errors
/// `EINTR` when a handled signal arrives; see poll(2).
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> Result<usize, Errno> {
    let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as libc::c_int);
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd for the whole call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    Errno::result(r).map(|n| n as usize)
}

/// `poll({fd, events: 0}, 1, timeout)`: sleep for `timeout`, or less when `fd` reports an
/// error or a hang-up, which poll(2) reports even though no event is asked for: the write
/// end of a pipe whose readers are all gone polls `POLLERR`, a socket whose peer closed or
/// a terminal that hung up `POLLHUP`, a descriptor that isn't open `POLLNVAL`. A terminal,
/// a file or a pipe that is still read report nothing, so the call sleeps. Returns whether
/// `fd` reported one of them.
///
/// # Errors
/// `EINTR` when a handled signal arrives, `ENOMEM`; see poll(2).
pub fn hung_up_within(fd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, Errno> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd for the whole call, and nfds is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    Errno::result(r)?;
    Ok(pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_pipe_without_readers_is_seen_at_once() {
        let (r, w) = nix::unistd::pipe().expect("a pipe");
        let t = std::time::Instant::now();
        assert_eq!(
            hung_up_within(w.as_fd(), Duration::from_millis(30)),
            Ok(false)
        );
        assert!(
            t.elapsed() >= Duration::from_millis(25),
            "a read pipe sleeps"
        );
        drop(r);
        let t = std::time::Instant::now();
        assert_eq!(hung_up_within(w.as_fd(), Duration::from_secs(5)), Ok(true));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a pipe without readers wakes at once"
        );
    }
}
