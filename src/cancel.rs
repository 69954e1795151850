//! Cancelling a blocking wait from outside the code that waits.
//!
//! The library installs no signal handler and reads no process state: the front end
//! decides what cancels a wait and passes a [`Cancel`] in. The helper keeps one in static
//! memory and calls [`Cancel::cancel`] from its signal handlers; a front end living inside
//! another program (a bash builtin) gives it a probe that reads that program's own
//! interrupt state, and the waits then sleep in short slices so that the probe is asked.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use crate::sys::WaitSlot;

/// How long a wait sleeps before asking a [`Cancel`]'s probe again.
pub const PROBE_SLICE: Duration = Duration::from_millis(20);

/// A request to end a blocking wait, taking nothing; see the module docs.
pub struct Cancel {
    /// The reason given to [`Cancel::cancel`] (a signal number, say), or 0.
    reason: AtomicI32,
    /// The timeout the current kernel wait reads; a cancel zeroes it.
    slot: WaitSlot,
    /// Asked between slices; returns a reason when the wait must end.
    probe: Option<fn() -> Option<i32>>,
}

impl Cancel {
    /// A cancel that only [`Cancel::cancel`] triggers (usable in a `static`).
    pub const fn new() -> Cancel {
        Cancel {
            reason: AtomicI32::new(0),
            slot: WaitSlot::new(),
            probe: None,
        }
    }

    /// A cancel that also ends a wait when `probe` returns a reason; waits then sleep at
    /// most [`PROBE_SLICE`] at a time.
    pub const fn with_probe(probe: fn() -> Option<i32>) -> Cancel {
        Cancel {
            reason: AtomicI32::new(0),
            slot: WaitSlot::new(),
            probe: Some(probe),
        }
    }

    /// Ask the current and every later wait to end, for `reason` (non-zero; 0 is taken
    /// as -1). Async-signal-safe: an atomic store and a volatile one, nothing else.
    pub fn cancel(&self, reason: i32) {
        let reason = if reason == 0 { -1 } else { reason };
        self.reason.store(reason, Ordering::SeqCst);
        self.slot.zero();
    }

    /// Why the wait must end, if it must: the reason given to [`Cancel::cancel`], else
    /// what the probe says.
    pub fn reason(&self) -> Option<i32> {
        match self.reason.load(Ordering::SeqCst) {
            0 => self.probe.and_then(|p| p()),
            r => Some(r),
        }
    }

    /// For a kind's wait: hand the kernel at most `d` (less with a probe), or say why the
    /// wait must end instead. The slot is set before the check, so a cancel landing
    /// between the two zeroes the timeout that the kernel will read.
    pub(crate) fn arm(&self, d: Duration) -> Result<&WaitSlot, i32> {
        let d = match self.probe {
            Some(_) => d.min(PROBE_SLICE),
            None => d,
        };
        self.slot.set(d);
        match self.reason() {
            Some(r) => Err(r),
            None => Ok(&self.slot),
        }
    }
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_is_seen_and_zeroes_the_slot() {
        let c = Cancel::new();
        assert!(c.arm(Duration::from_secs(5)).is_ok());
        c.cancel(15);
        assert_eq!(c.reason(), Some(15));
        assert_eq!(c.arm(Duration::from_secs(5)).err(), Some(15));
        let zero = Cancel::new();
        zero.cancel(0);
        assert_eq!(zero.reason(), Some(-1));
    }

    #[test]
    fn a_probe_is_asked_and_slices_the_wait() {
        let c = Cancel::with_probe(never);
        assert!(c.arm(Duration::from_secs(5)).is_ok());
        fn never() -> Option<i32> {
            None
        }
        fn now() -> Option<i32> {
            Some(2)
        }
        assert_eq!(Cancel::with_probe(never).reason(), None);
        assert_eq!(Cancel::with_probe(now).reason(), Some(2));
    }
}
