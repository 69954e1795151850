//! Running a command under a lease, for kinds whose counts no kernel gives back (Redis).
//!
//! `run` takes the counts under a lease, starts the program as its child (with
//! `SEM_FENCE` set to the grant's fence number) and stays to refresh the lease every
//! lease/3, counted from when each refresh was sent. The server's lease ends no earlier
//! than a lease after the last refresh it answered was sent, so while refreshes fail
//! (a partition, the server gone) the command is stopped in time: SIGTERM at 2/3 of a
//! lease after the last good refresh was sent, SIGKILL at 5/6, both before the server
//! could give the counts to anyone else. A refresh the server refuses (the lease ran out,
//! or the server lost it) stops the command at once. Either way `run` then says so and
//! exits with [`LEASE_LOST`]; it never takes the counts again by itself.
//!
//! The program ends when we do (SIGKILL on our death), so that nothing runs without a
//! lease behind it. When it ends, however it ends, the counts go back at once.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::SigSet;
use sem::{ErrorKind, Lease, Name, Semaphore, Timeout};

use crate::exit_codes::ExitCode;
use crate::signals;
use crate::sys;

/// `run`'s status when it stopped its command because the lease was lost.
pub const LEASE_LOST: u8 = 122;

/// The signals to pass on to the program, one bit each, set by [`on_signal`].
static PENDING: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    PENDING.fetch_or(1 << sig, Ordering::SeqCst);
}

/// The signals `run` passes on to its program: the stop signals but SIGINT and SIGQUIT,
/// which a terminal sends to the whole foreground job, the program included.
fn forwarded() -> impl Iterator<Item = libc::c_int> {
    signals::STOP_SIGNALS
        .iter()
        .map(|s| *s as libc::c_int)
        .filter(|&s| s != libc::SIGINT && s != libc::SIGQUIT)
}

/// Where the lease stands, by our own monotonic clock.
struct Keeper {
    lease: Box<dyn Lease>,
    /// When the last refresh the server accepted was sent (or the grant was asked).
    good: Instant,
    /// When to refresh next.
    next: Instant,
    /// Why the lease is lost, once it is.
    lost: Option<String>,
}

impl Keeper {
    /// Keep `lease`, asked for at `asked`. The grant's lease started when the server
    /// granted it, which we can't see: refresh at once, so that our deadlines count from
    /// a time we know.
    fn start(lease: Box<dyn Lease>, asked: Instant) -> Keeper {
        let mut keeper = Keeper {
            lease,
            good: asked,
            next: Instant::now(),
            lost: None,
        };
        keeper.refresh();
        keeper
    }

    fn period(&self) -> Duration {
        self.lease.duration() / 3
    }

    /// Refresh now: on success the lease runs a whole lease from when we sent it. One
    /// attempt may take at most half the time left before the command would have to be
    /// stopped (and a sixth of the lease), so that a silent server can't make us miss
    /// that deadline.
    fn refresh(&mut self) {
        let sent = Instant::now();
        let left = self.deadlines().0.saturating_duration_since(sent);
        let patience = (left / 2).min(self.lease.duration() / 6);
        match self.lease.refresh(patience) {
            Ok(()) => {
                self.good = sent;
                self.next = sent + self.period();
            }
            Err(e) if e.kind() == ErrorKind::Unreachable => {
                // Try again soon, while the lease lasts.
                self.next = Instant::now() + self.period().min(Duration::from_millis(250));
            }
            Err(e) => self.lost = Some(e.reason()),
        }
    }

    /// When the command must have had SIGTERM, and SIGKILL, unless a refresh succeeds.
    fn deadlines(&self) -> (Instant, Instant) {
        let l = self.lease.duration();
        (self.good + l * 2 / 3, self.good + l * 5 / 6)
    }
}

/// Take `n` counts of `sem` under a lease, run `path` (as `program` with `args`) while
/// refreshing it, give them back when it ends, and exit as it did.
#[allow(clippy::too_many_arguments)]
pub fn run(
    sem: &dyn Semaphore,
    name: &Name,
    n: u32,
    timeout: Timeout,
    code: u8,
    path: &Path,
    program: &OsStr,
    args: &[OsString],
    start_mask: &SigSet,
) -> anyhow::Result<ExitCode> {
    let duration = sem::lease_from_env()?;
    let asked = Instant::now();
    let lease =
        crate::slot::taken_or_exit(sem.lease(n, timeout, &signals::CANCEL, duration), code)?;
    let mut keeper = Keeper::start(lease, asked);
    if let Some(why) = keeper.lost.take() {
        crate::say("run", &format!("{}: {why}", name.label().display()));
        return Ok(ExitCode::Failure);
    }
    // From here our own signals are passed on to the program; none ends us.
    for s in forwarded() {
        sys::catch(s, on_signal)?;
    }
    for s in [libc::SIGINT, libc::SIGQUIT] {
        let _ = sys::catch(s, on_signal);
    }
    // Our caller's death doesn't end the command (as for a System V run).
    crate::process::forget_parent()?;
    let mut cmd = std::process::Command::new(path);
    std::os::unix::process::CommandExt::arg0(&mut cmd, program);
    cmd.args(args)
        .env("SEM_FENCE", keeper.lease.fence().to_string())
        .env_remove(signals::PARENT_ENV)
        .env_remove(crate::CALLER_ENV);
    sys::die_with_us_and_mask(&mut cmd, *start_mask);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = keeper.lease.release();
            crate::say("run", &format!("{}: {e}", program.to_string_lossy()));
            std::process::exit(crate::slot::CANNOT_EXECUTE.into());
        }
    };
    let proc = crate::process::Process::open(child.id() as libc::pid_t)?;
    let mut kill_by: Option<Instant> = None;
    let mut killed = false;
    loop {
        // Pass on what arrived.
        let pending = PENDING.swap(0, Ordering::SeqCst);
        for s in forwarded() {
            if pending & (1 << s) != 0 {
                let _ = proc.signal(s);
            }
        }
        if proc.ended_within(Duration::ZERO) {
            break;
        }
        let now = Instant::now();
        let (term_at, kill_at) = keeper.deadlines();
        if keeper.lost.is_none() && now >= keeper.next && now < term_at {
            keeper.refresh();
            continue;
        }
        // Stop the command: SIGTERM now, SIGKILL at the lease's 5/6, or half a second
        // after SIGTERM when the lease is lost outright (the counts may be someone
        // else's already).
        if kill_by.is_none() && (keeper.lost.is_some() || now >= term_at) {
            kill_by = Some(match keeper.lost {
                Some(_) => kill_at.min(now + Duration::from_millis(500)),
                None => kill_at,
            });
            if keeper.lost.is_none() {
                keeper.lost = Some("the server could not be reached in time to refresh it".into());
            }
            let _ = proc.signal(libc::SIGTERM);
        }
        if let Some(by) = kill_by {
            if !killed && now >= by {
                killed = true;
                let _ = proc.signal(libc::SIGKILL);
            }
        }
        let wake = match kill_by {
            None => keeper.next.min(term_at),
            Some(by) if !killed => by,
            Some(_) => now + Duration::from_millis(50),
        };
        let d = wake.saturating_duration_since(Instant::now());
        proc.ended_within(d.max(Duration::from_millis(1)));
    }
    let status = child.wait()?;
    if let Some(why) = keeper.lost {
        crate::say(
            "run",
            &format!(
                "{}: lease lost ({why}); stopped the command",
                name.label().display()
            ),
        );
        std::process::exit(LEASE_LOST.into());
    }
    if let Err(e) = keeper.lease.release() {
        crate::say(
            "run",
            &format!(
                "{}: cannot give the count back now ({}); it comes back when the lease runs out",
                name.label().display(),
                e.reason()
            ),
        );
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => std::process::exit(c),
        (None, Some(sig)) => signals::die_of(sig),
        _ => std::process::exit(crate::slot::RUN_FAILED.into()),
    }
}

/// A `hold` under a lease: refresh it until released; `Err` once it is lost.
pub struct HeldLease {
    keeper: Keeper,
}

impl HeldLease {
    /// Keep `lease`, asked for at `asked`.
    pub fn new(lease: Box<dyn Lease>, asked: Instant) -> HeldLease {
        HeldLease {
            keeper: Keeper::start(lease, asked),
        }
    }

    /// The grant's fence number.
    pub fn fence(&self) -> u64 {
        self.keeper.lease.fence()
    }

    /// How long until the next refresh is due.
    pub fn due_in(&self) -> Duration {
        self.keeper.next.saturating_duration_since(Instant::now())
    }

    /// Refresh if due. `Err(why)` when the lease is lost, or may be about to be (no good
    /// refresh for 2/3 of a lease): the holder must let go.
    pub fn tend(&mut self) -> Result<(), String> {
        if Instant::now() >= self.keeper.next {
            self.keeper.refresh();
        }
        if let Some(why) = self.keeper.lost.take() {
            return Err(why);
        }
        if Instant::now() >= self.keeper.deadlines().0 {
            return Err("the server could not be reached in time to refresh it".into());
        }
        Ok(())
    }

    /// Give the counts back.
    pub fn release(&mut self) -> sem::Result<()> {
        self.keeper.lease.release()
    }
}
