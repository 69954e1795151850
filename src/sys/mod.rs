//! The only code of the library with `unsafe`: one file per kernel facility, one thin,
//! typed function per system call.
//!
//! Every function turns the raw return value into a `Result` at once, so no other module
//! ever sees a `-1`. The front ends' own process policy (signal handlers, forks, pidfds)
//! is theirs, not the library's.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{compiler_fence, Ordering};
use std::time::Duration;

pub mod posix_sem;
pub mod random;
pub mod sysv_sem;

/// The timeout a blocking call hands the kernel, kept where a cancel can reach it.
///
/// A blocked wait must end, taking nothing, when it is cancelled; but a count it has
/// already taken must never be lost. A cancel that only sets a flag leaves one race: it
/// lands after the flag was checked and before the kernel entered the wait, which would
/// then sleep through it. So the waiter hands the kernel a pointer to this slot, and a
/// cancel zeroes it: the kernel reads the timeout when the call starts, so a cancel before
/// that turns the wait into a non-blocking try, and one during it (from a signal handler)
/// ends the call with `EINTR`.
pub struct WaitSlot(UnsafeCell<libc::timespec>);

// SAFETY: the slot is written by the one thread that waits on it and by a cancel, which
// only ever stores zero (a signal handler interrupting that thread, or another thread,
// whose racing store the kernel reads either before or after: both are valid timespecs).
unsafe impl Sync for WaitSlot {}

impl WaitSlot {
    /// A slot holding zero.
    pub const fn new() -> WaitSlot {
        WaitSlot(UnsafeCell::new(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }))
    }

    /// A slot holding `d` (for tests).
    #[cfg(test)]
    pub fn after(d: Duration) -> WaitSlot {
        let slot = WaitSlot::new();
        slot.set(d);
        slot
    }

    /// Hand the kernel `d` at the next call; ordered before any later check of a cancel
    /// flag, as seen by a signal handler of this thread.
    pub fn set(&self, d: Duration) {
        let ts = libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a volatile store of a plain struct into memory we own; see `Sync` above.
        unsafe { std::ptr::write_volatile(self.0.get(), ts) };
        compiler_fence(Ordering::SeqCst);
    }

    /// Hand the kernel zero: async-signal-safe (a volatile store, no allocation or lock).
    pub fn zero(&self) {
        self.set(Duration::ZERO);
    }

    pub(crate) fn as_ptr(&self) -> *const libc::timespec {
        self.0.get()
    }
}

impl Default for WaitSlot {
    fn default() -> WaitSlot {
        WaitSlot::new()
    }
}
