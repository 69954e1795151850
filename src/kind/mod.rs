//! The kinds of semaphore, behind one interface.
//!
//! A name says which kind it is (`name.rs`); each kind lives in a module of its own and
//! implements two traits: [`Kind`], what is done to a name (create, open, destroy,
//! inspect, list, prune), and [`Semaphore`], what is done to an open semaphore. Each kind
//! also says what it can do ([`Capabilities`]); an operation it can't do fails with
//! [`ErrorKind::Unsupported`], never with a wrong answer, and front ends ask before they
//! offer something (a holder that needs the kernel's undo, say).
//!
//! Adding a kind: a module here implementing both traits, a variant of [`crate::Name`]
//! with its parsing in `name.rs`, and its tests. Nothing else changes.

use std::path::Path;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::name::Name;
use crate::parse::Timeout;
use crate::status::{Entry, Pruned, Status};

pub mod posix;
#[cfg(feature = "redis")]
pub mod redis;
pub mod sysv;

/// What a kind of semaphore can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `post(n)` adds `n` in one atomic step; otherwise it posts `n` times, and other
    /// processes may take counts in between.
    pub atomic_post_n: bool,
    /// `take(n)` takes `n` at once, all or none; otherwise only `n` = 1.
    pub take_n: bool,
    /// Counts the processes blocked taking ([`Status::waiters`]).
    pub waiters: bool,
    /// [`Semaphore::relax`] releases every blocked waiter.
    pub relax: bool,
    /// [`Semaphore::hold`]: the count comes back by itself when the holding process ends,
    /// however it ends (System V's `SEM_UNDO`). Without it a front end that holds counts
    /// for a command must give them back itself (a guard process).
    pub undo: bool,
    /// [`Semaphore::lease`]: counts held under a lease that the holder refreshes, which
    /// come back when it runs out (Redis: a dead machine can't give anything back).
    pub lease: bool,
    /// Knows the pid and time of the last operation.
    pub last_op: bool,
    /// The largest value.
    pub max_value: u32,
}

/// How [`Kind::init`] creates a semaphore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitOptions {
    /// Permission bits, honoured exactly whatever the umask (default 0600).
    pub mode: u32,
    /// The group, instead of the caller's effective group (a caller other than root must
    /// be a member).
    pub group: Option<u32>,
    /// Replace a name the caller owns that another IPC namespace made (System V).
    pub force: bool,
}

impl Default for InitOptions {
    fn default() -> InitOptions {
        InitOptions {
            mode: 0o600,
            group: None,
            force: false,
        }
    }
}

/// What is done to a name of one kind.
pub trait Kind: Sync {
    /// The kind's name in reports: `sysv`, `posix`.
    fn label(&self) -> &'static str;

    /// What its semaphores can do.
    fn capabilities(&self) -> Capabilities;

    /// Open the semaphore `name`, verified.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is none; [`ErrorKind::Stale`] when what is there
    /// can't be trusted; [`ErrorKind::PermissionDenied`].
    fn open(&self, name: &Name) -> Result<Box<dyn Semaphore>>;

    /// Create the semaphore `name` with `value`, exclusively: of many racing callers
    /// exactly one succeeds, and nothing half-made is ever seen or left behind.
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when something stands at the name;
    /// [`ErrorKind::OutOfRange`] for a value above the kind's maximum.
    fn init(&self, name: &Name, value: u32, opts: &InitOptions) -> Result<()>;

    /// Remove the semaphore `name` (its owner only), ending every wait on it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::NotOwner`].
    fn destroy(&self, name: &Name) -> Result<()>;

    /// What `name` stands for now, live or not.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing is there; [`ErrorKind::Stale`] when it isn't a
    /// semaphore at all.
    fn inspect(&self, name: &Name) -> Result<Entry>;

    /// The semaphores of this kind in `place` (a directory, for System V; ignored by
    /// kinds with one place of their own).
    ///
    /// # Errors
    /// When the place can't be read.
    fn list(&self, place: &Path) -> Result<Vec<Entry>>;

    /// Remove the caller's stale names in `place`.
    ///
    /// # Errors
    /// When the place can't be read; failures on single names are in [`Pruned`].
    fn prune(&self, place: &Path) -> Result<Vec<Pruned>>;
}

/// What is done to an open semaphore, of whatever kind.
pub trait Semaphore {
    /// Its name.
    fn name(&self) -> Name;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Add `n`, waking up to `n` waiters (atomically when [`Capabilities::atomic_post_n`]).
    ///
    /// # Errors
    /// [`ErrorKind::OutOfRange`] past the maximum; [`ErrorKind::Removed`];
    /// [`ErrorKind::PermissionDenied`].
    fn post(&self, n: u32) -> Result<()>;

    /// Take `n` counts if they are there now.
    ///
    /// # Errors
    /// [`ErrorKind::WouldBlock`]; [`ErrorKind::Unsupported`] for `n` > 1 without
    /// [`Capabilities::take_n`].
    fn try_take(&self, n: u32) -> Result<()>;

    /// Take `n` counts, waiting at most `timeout`; `cancel` ends the wait having taken
    /// nothing. A count taken is the caller's until it posts it.
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`] ([`ErrorKind::WouldBlock`] for [`Timeout::Never`]);
    /// [`ErrorKind::Interrupted`] when cancelled; [`ErrorKind::Removed`] when the
    /// semaphore was destroyed meanwhile; [`ErrorKind::Unsupported`] as for `try_take`.
    fn take(&self, n: u32, timeout: Timeout, cancel: &Cancel) -> Result<()>;

    /// Like [`Semaphore::take`], but the counts come back by themselves when this process
    /// ends, however it ends ([`Capabilities::undo`]).
    ///
    /// # Errors
    /// As for `take`; [`ErrorKind::Unsupported`] without [`Capabilities::undo`].
    fn hold(&self, n: u32, timeout: Timeout, cancel: &Cancel) -> Result<()> {
        let _ = (n, timeout, cancel);
        Err(unsupported(
            &self.name(),
            "give a count back when its holder dies",
        ))
    }

    /// Like [`Semaphore::take`], but held under a lease of `lease`, which the returned
    /// [`Lease`] must refresh; when it runs out (the holder or its machine died, or was cut
    /// off) the counts come back by themselves ([`Capabilities::lease`]).
    ///
    /// # Errors
    /// As for `take`; [`ErrorKind::Unsupported`] without [`Capabilities::lease`].
    fn lease(
        &self,
        n: u32,
        timeout: Timeout,
        cancel: &Cancel,
        lease: Duration,
    ) -> Result<Box<dyn Lease>> {
        let _ = (n, timeout, cancel, lease);
        Err(unsupported(&self.name(), "hold a count under a lease"))
    }

    /// The value.
    ///
    /// # Errors
    /// [`ErrorKind::Removed`]; [`ErrorKind::PermissionDenied`].
    fn value(&self) -> Result<u32>;

    /// Release every process blocked taking, as if posted once for each; returns how many.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] without [`Capabilities::relax`].
    fn relax(&self) -> Result<u32> {
        Err(unsupported(
            &self.name(),
            "count its waiters, so it can't relax",
        ))
    }

    /// A snapshot for reports.
    ///
    /// # Errors
    /// [`ErrorKind::Removed`]; [`ErrorKind::PermissionDenied`].
    fn status(&self) -> Result<Status>;

    /// The uid that owns it.
    fn owner(&self) -> u32;
}

/// The variable that sets the lease, in seconds.
pub const LEASE_ENV: &str = "SEM_LEASE";
/// The lease when `SEM_LEASE` is not set.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// The shortest lease `SEM_LEASE` may set.
const MIN_LEASE: Duration = Duration::from_millis(500);
/// The longest: a day.
const MAX_LEASE: Duration = Duration::from_secs(86_400);
/// The lease `SEM_LEASE` sets, or the default.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for anything but seconds from 0.5 to 86400.
pub fn lease_from_env() -> Result<Duration> {
    let Some(v) = std::env::var_os(LEASE_ENV) else {
        return Ok(DEFAULT_LEASE);
    };
    let bad = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{LEASE_ENV}={}: expected seconds from 0.5 to 86400",
                v.to_string_lossy()
            ),
        )
    };
    let s = v.to_str().ok_or_else(bad)?;
    match crate::parse::timeout(s) {
        Ok(Timeout::After(d)) if (MIN_LEASE..=MAX_LEASE).contains(&d) => Ok(d),
        _ => Err(bad()),
    }
}

/// Counts held under a lease ([`Semaphore::lease`]).
pub trait Lease {
    /// The grant's fence number: it only rises, per semaphore, from grant to grant.
    fn fence(&self) -> u64;

    /// How long the lease lasts from each refresh.
    fn duration(&self) -> Duration;

    /// Extend the lease to [`Lease::duration`] from now, by the server's clock.
    ///
    /// # Errors
    /// [`ErrorKind::LeaseLost`] when the lease ran out or the semaphore is gone (the
    /// counts may be someone else's already); [`ErrorKind::Unreachable`] when the server
    /// can't be reached now (the caller may try again while its lease lasts).
    fn refresh(&mut self) -> Result<()>;

    /// Give the counts back and end the lease.
    ///
    /// # Errors
    /// [`ErrorKind::LeaseLost`] when it had already run out; [`ErrorKind::Unreachable`].
    fn release(&mut self) -> Result<()>;
}

/// The error for what a kind can't do: "NAME: a KIND semaphore can't WHAT".
pub fn unsupported(name: &Name, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("a {} semaphore can't {what}", name.kind().label()),
    )
    .at(name.label())
}

/// Open `name`, creating it with `value` and `opts` first if nothing is there: create on
/// first use. Returns the semaphore and whether this call created it. Of many callers
/// racing on a missing name exactly one creates it, and none fails because another was
/// first (its init loses, and it opens the winner's). A stale name the caller may reclaim
/// is reclaimed, as init does; an existing semaphore is used as it is, whatever its value
/// and mode.
///
/// # Errors
/// As for [`Kind::open`] and [`Kind::init`]: [`ErrorKind::AlreadyExists`] when what stands
/// at the name is neither a semaphore nor a stale name the caller may reclaim.
pub fn init_or_open(
    name: &Name,
    value: u32,
    opts: &InitOptions,
) -> Result<(Box<dyn Semaphore>, bool)> {
    let kind = name.kind();
    for _ in 0..16 {
        match kind.open(name) {
            Ok(sem) => return Ok((sem, false)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Stale) => {}
            Err(e) => return Err(e),
        }
        match kind.init(name, value, opts) {
            // Opened again, verified like any other: a destroy may have come in between.
            Ok(()) => match kind.open(name) {
                Ok(sem) => return Ok((sem, true)),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            },
            // Another caller created it first, or what stands there can't be reclaimed.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match kind.open(name) {
                Ok(sem) => return Ok((sem, false)),
                Err(again) if again.kind() == ErrorKind::NotFound => continue,
                // A stale name init won't reclaim, or not a semaphore: init says why.
                Err(again) if again.kind() == ErrorKind::Stale => return Err(e),
                Err(again) => return Err(again),
            },
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(ErrorKind::Other, "the name keeps changing; try again").at(name.label()))
}
