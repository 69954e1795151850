//! Holding counts for exactly as long as something lives.
//!
//! Where the kind has the kernel's undo (System V), both commands take the counts with
//! `SEM_UNDO`, so the kernel gives them back when the holding process ends, however it
//! ends, SIGKILL included. `run` then execs the program: the undo survives execve(2), so
//! the counts belong to the program's own process and outlive a killed caller. `hold`
//! keeps them in a process of its own for a shell function (or for sem_hold), and lets
//! them go when its caller says so or dies.
//!
//! A kind without undo (POSIX) takes the counts plainly and gives them back itself:
//! `hold` posts them when it lets go; `run` starts a guard process (`guard`) that watches
//! the program through a pidfd and posts them when it ends, however it ends. What can
//! still lose a count there: the holder or the guard killed with -9.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::unistd::AccessFlags;
use sem::{ErrorKind, Name, Semaphore, Timeout};

use crate::exit_codes::ExitCode;
use crate::process::{self, Event};
use crate::signals::{self, CANCEL};
use crate::{utf8, Slot};

/// The signal `release` sends a `hold --shell` to ask it to give its counts back: a
/// real-time signal above the one the parent-death watch uses, blocked in the holder and
/// read from a signalfd by its release thread, so that it never interrupts anything.
fn release_signal() -> libc::c_int {
    crate::sys::first_realtime_signal() + 2
}

/// `run`'s status when it fails itself (as env(1) and timeout(1) do).
pub const RUN_FAILED: u8 = 125;
/// `run`'s status when the program was found but can't be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// `run`'s status when the program isn't found.
const NOT_FOUND: u8 = 127;

/// Find `prog` as execvp(3) would, before any count is taken: on failure, the status to
/// exit with and why.
fn find_program(prog: &OsStr) -> Result<PathBuf, (u8, &'static str)> {
    if prog.is_empty() {
        return Err((NOT_FOUND, "command not found"));
    }
    let executable = |p: &Path| p.is_file() && nix::unistd::access(p, AccessFlags::X_OK).is_ok();
    if prog.as_bytes().contains(&b'/') {
        let p = Path::new(prog);
        return match p.symlink_metadata() {
            Err(_) => Err((NOT_FOUND, "No such file or directory")),
            Ok(_) if p.is_dir() => Err((CANNOT_EXECUTE, "Is a directory")),
            Ok(_) if executable(p) => Ok(p.to_path_buf()),
            Ok(_) => Err((CANNOT_EXECUTE, "Permission denied")),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = false;
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(prog);
        if executable(&candidate) {
            return Ok(candidate);
        }
        denied |= candidate.is_file();
    }
    match denied {
        true => Err((CANNOT_EXECUTE, "Permission denied")),
        false => Err((NOT_FOUND, "command not found")),
    }
}

/// What `run` does with the outcome of its take: on time-out (or would-block) exit with
/// `code`, silently; interrupted by a signal, die of it; any other error is returned.
pub fn taken_or_exit<T>(taken: sem::Result<T>, code: u8) -> anyhow::Result<T> {
    match taken {
        Ok(t) => Ok(t),
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            std::process::exit(code.into())
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => match signals::caught() {
            Some(sig) => signals::die_of(sig),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// `run NAME [-w S] [-E C] -- PROGRAM [ARG...]`: take a count, then become PROGRAM.
pub fn run(
    name: OsString,
    slot: &Slot,
    timeout: Timeout,
    code: Option<OsString>,
    command: Vec<OsString>,
) -> anyhow::Result<ExitCode> {
    let code = match code {
        Some(c) => sem::parse::exit_status(&utf8(c, "exit code")?)?,
        None => 1,
    };
    // The program must start with the signal mask our caller gave us.
    let start_mask = SigSet::thread_get_mask()?;
    let (program, args) = command.split_first().expect("clap requires PROGRAM");
    let path = match find_program(program) {
        Ok(p) => p,
        Err((status, why)) => {
            crate::say("run", &format!("{}: {why}", program.to_string_lossy()));
            std::process::exit(status.into());
        }
    };
    let name = Name::parse(&name)?;
    // While we wait, a caller that dies or is interrupted takes the wait with it.
    signals::die_with_parent(signals::expected_parent())?;
    signals::abort_waits_on_stop_signals()?;
    let sem = slot.open(&name)?;
    if sem.capabilities().lease {
        return crate::lease::run(
            &*sem,
            &name,
            slot.count,
            timeout,
            code,
            &path,
            program,
            args,
            &start_mask,
        );
    }
    let undo = sem.capabilities().undo;
    taken_or_exit(take(&*sem, slot.count, timeout, undo), code)?;
    // The count is ours. A stop signal caught just before we blocked them cancels the
    // run (exiting gives the count back); one that comes later stays pending through the
    // exec and then acts on the program as it would have on us.
    signals::defer_stop_signals()?;
    if let Some(sig) = signals::caught() {
        signals::die_of(sig);
    }
    // Without the kernel's undo, a guard gives the counts back when the program (this
    // process, after the exec) ends.
    if !undo {
        if let Err(e) = crate::guard::start(&name, slot.count) {
            let _ = sem.post(slot.count);
            return Err(e);
        }
    }
    // The program must outlive a killed caller, keeping its count until it ends.
    process::forget_parent()?;
    signals::restore_for_exec(&start_mask)?;
    // exec also gives SIGPIPE, which Rust ignores, its default action back.
    let err = std::process::Command::new(&path)
        .arg0(program)
        .args(args)
        .env_remove(signals::PARENT_ENV)
        .env_remove(crate::CALLER_ENV)
        .exec();
    crate::say("run", &format!("{}: {err}", program.to_string_lossy()));
    let status = match err.kind() {
        std::io::ErrorKind::NotFound => NOT_FOUND,
        _ => CANNOT_EXECUTE,
    };
    std::process::exit(status.into());
}

/// Whether `hold` has its count: a release that comes before it is a cancel (exit 1).
static HELD: AtomicBool = AtomicBool::new(false);

/// How long a `hold` keeps its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// sem_run's functions: until a byte arrives on stdin, or stdin's end of file, which
    /// comes once every writer of the pipe has gone: the shell (its descriptors live in
    /// redirections that bash undoes when the function ends, even when an interactive
    /// shell abandons it at Ctrl-C) and every process the function started, which
    /// inherited a copy.
    UntilReleased,
    /// sem_hold: until the caller ends, however it ends, or `release` ends us.
    WhileCallerLives,
}

/// Take `n` counts: with the kernel's undo when `undo` (they come back when this process
/// ends), else plainly (the caller gives them back).
fn take(sem: &dyn Semaphore, n: u32, timeout: Timeout, undo: bool) -> sem::Result<()> {
    match undo {
        true => sem.hold(n, timeout, &CANCEL),
        false => sem.take(n, timeout, &CANCEL),
    }
}

/// What the release thread tells a holder without undo: give the counts back now.
static RELEASE: AtomicBool = AtomicBool::new(false);

/// The reason a release gives [`CANCEL`] for a wait still in progress (not a signal).
const RELEASED: i32 = -2;

/// On a thread of its own, sleep until the counts must go back (see [`Keep`]). With the
/// kernel's undo, the thread then ends the process, which gives them back: status 0 if
/// they were taken, 1 (nothing taken) if the end came first. Without it, the thread asks
/// the main thread to post them (and cancels a wait still in progress), which then ends
/// the process. All signals are blocked on that thread, so they reach the main thread,
/// whose wait they must interrupt.
fn release_when(keep: Keep, pidfd: OwnedFd, undo: bool) -> anyhow::Result<()> {
    // Blocked here, before the thread starts, so that both threads have it blocked.
    let request = match keep {
        Keep::WhileCallerLives => Some(crate::sys::signalfd_for(release_signal())?),
        Keep::UntilReleased => None,
    };
    let main = nix::unistd::gettid();
    crate::sys::prepare_wake()?;
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old))?;
    let spawned = std::thread::Builder::new()
        .name("release".into())
        .spawn(move || {
            match keep {
                Keep::UntilReleased => {
                    let stdin = std::io::stdin();
                    process::watch(Some(stdin.as_fd()), None, None, None);
                }
                Keep::WhileCallerLives => loop {
                    // While we wait for the count, a caller that stopped reading our
                    // answer (an interactive shell abandoning sem_hold at Ctrl-C) cancels
                    // the wait; once held, only the caller's end or `release` counts.
                    let stdout = std::io::stdout();
                    let answer = (!HELD.load(Ordering::SeqCst)).then(|| stdout.as_fd());
                    let req = request.as_ref().map(AsFd::as_fd);
                    match process::watch(None, Some(pidfd.as_fd()), answer, req) {
                        Event::ReaderGone if HELD.load(Ordering::SeqCst) => continue,
                        _ => break,
                    }
                },
            }
            // Held with the kernel's undo: ending the process gives the counts back, at
            // once. Otherwise the main thread decides: it may be answering, or taking.
            if undo && HELD.load(Ordering::SeqCst) {
                std::process::exit(0);
            }
            RELEASE.store(true, Ordering::SeqCst);
            CANCEL.cancel(RELEASED);
            // Wake the main thread wherever it sleeps; it posts what it holds and exits.
            let _ = crate::sys::wake_thread(main.as_raw());
            loop {
                std::thread::park();
            }
        });
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
    spawned?;
    Ok(())
}

/// Tell the caller that no count was taken, and with which status we end: `no CODE`.
pub fn answer_no(code: u8) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "no {code}").and_then(|()| out.flush());
}

/// `hold NAME [-n N] [--init V ...] [-w S] [--shell]`: take the counts, answer `ok`, and
/// keep them as [`Keep`] says. Without them it answers `no CODE` and exits with CODE.
pub fn hold(name: OsString, slot: &Slot, timeout: Timeout, keep: Keep) -> anyhow::Result<ExitCode> {
    match take_and_hold(name, slot, timeout, keep) {
        Ok(never) => match never {},
        Err(e) => {
            let code = ExitCode::of(&e);
            crate::say("hold", &format!("{e:#}"));
            answer_no(code as u8);
            Ok(code)
        }
    }
}

fn take_and_hold(
    name: OsString,
    slot: &Slot,
    timeout: Timeout,
    keep: Keep,
) -> anyhow::Result<std::convert::Infallible> {
    let name = Name::parse(&name)?;
    // What the caller had open (a lock file, the other ends of its pipes) must not live
    // as long as we do.
    process::close_inherited_descriptors()?;
    // Leave the caller's process substitution (so that a bare `wait` in the calling shell
    // doesn't wait for us) while watching the caller's life through a pidfd.
    let shell = signals::expected_parent();
    let pidfd = match process::detach_watching(shell) {
        Ok(fd) => fd,
        // Nobody is left to answer.
        Err(e) if e.kind() == ErrorKind::Interrupted => std::process::exit(RUN_FAILED.into()),
        Err(e) => return Err(e.into()),
    };
    signals::abort_waits_on_stop_signals()?;
    let sem = slot.open(&name)?;
    let undo = sem.capabilities().undo;
    let leased = sem.capabilities().lease;
    release_when(keep, pidfd, undo)?;
    let asked = std::time::Instant::now();
    let taken = match leased {
        true => sem::lease_from_env()
            .and_then(|d| sem.lease(slot.count, timeout, &CANCEL, d))
            .map(Some),
        false => take(&*sem, slot.count, timeout, undo).map(|()| None),
    };
    let mut lease = match taken {
        Ok(l) => l.map(|l| crate::lease::HeldLease::new(l, asked)),
        // Released (the caller let go, or ended) before anything was taken.
        Err(e) if e.kind() == ErrorKind::Interrupted && signals::caught() == Some(RELEASED) => {
            std::process::exit(ExitCode::WouldBlock as i32)
        }
        // No count in time is an answer, not an error: silent, as for run and flock.
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            answer_no(ExitCode::WouldBlock as u8);
            std::process::exit(ExitCode::WouldBlock as i32);
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => match signals::caught() {
            Some(sig) => {
                answer_no(u8::try_from(128 + sig).unwrap_or(255));
                signals::die_of(sig)
            }
            None => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    HELD.store(true, Ordering::SeqCst);
    if !undo {
        // Nothing but this process remembers the count now: leave the caller's process
        // group and session, so that a kill of the whole group (a CI cancel, kill -9
        // -PGID) doesn't take the count with it. We still end when the caller does.
        let _ = nix::unistd::setsid();
    }
    if RELEASE.load(Ordering::SeqCst) {
        // Released while the take completed: give it back at once.
        give_back(&*sem, slot.count, undo, lease.as_mut());
    }
    // Held. From now on only our caller decides: Ctrl-C reaches the whole process group,
    // and a shell that traps it keeps running the function, so its slot must stay held.
    signals::defer_stop_signals()?;
    let mut out = std::io::stdout().lock();
    // Under a lease, the answer carries the grant's fence: `ok FENCE`.
    let answer = match &lease {
        Some(held) => format!("ok {}", held.fence()),
        None => "ok".to_owned(),
    };
    if writeln!(out, "{answer}")
        .and_then(|()| out.flush())
        .is_err()
    {
        // Nobody reads our answer: the caller is gone.
        std::process::exit(RUN_FAILED.into());
    }
    drop(out);
    if keep == Keep::WhileCallerLives {
        // The caller read its answer and goes on; hold nothing of its pipes. (Its
        // stderr too: a `$(sem_hold ...)` reading both would wait for us.)
        process::let_go_of_stdio()?;
    }
    loop {
        // The release thread sets RELEASE and wakes us (or, held with undo, simply ends
        // the process).
        if RELEASE.load(Ordering::SeqCst) {
            give_back(&*sem, slot.count, undo, lease.as_mut());
        }
        match lease.as_mut() {
            None => {
                crate::clock::nap(Duration::from_secs(3600));
            }
            // Under a lease: refresh it in time, and let go once it is lost (a function
            // sem_run runs can't be stopped from here; the README says so).
            Some(held) => {
                crate::clock::nap(held.due_in().max(Duration::from_millis(1)));
                if let Err(why) = held.tend() {
                    let line = format!(
                        "{}: lease lost ({why}); the count is no longer held",
                        name.label().display()
                    );
                    match keep {
                        // Our stderr is still the caller's.
                        Keep::UntilReleased => crate::say("hold", &line),
                        // We let go of the caller's stderr: write to the shell's own.
                        Keep::WhileCallerLives => process::tell(shell, &crate::said("hold", &line)),
                    }
                    std::process::exit(ExitCode::LeaseLost as i32);
                }
            }
        }
    }
}

/// Give back the `n` counts held, and end: with the kernel's undo, by ending; else by
/// posting them first. Exits 0 when they are back, 7 (with one line) when the post
/// failed (the semaphore destroyed meanwhile, say).
fn give_back(
    sem: &dyn Semaphore,
    n: u32,
    undo: bool,
    lease: Option<&mut crate::lease::HeldLease>,
) -> ! {
    if undo {
        std::process::exit(0);
    }
    let given = match lease {
        Some(l) => l.release(),
        None => sem.post(n),
    };
    match given {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            crate::say("hold", &format!("cannot give the count back: {e}"));
            std::process::exit(ExitCode::Failure as i32)
        }
    }
}

/// How long `release` waits for a holder it ended to be gone.
const RELEASE_PATIENCE: Duration = Duration::from_secs(5);

/// `release NAME`: end every `hold --shell` of NAME that our caller (the shell named in
/// `SEMCTL_PARENT`, else our parent) started, and return once their counts are back.
/// Exit 1 when there was none.
pub fn release(name: OsString) -> anyhow::Result<ExitCode> {
    let name = Name::parse(&name)?;
    let shell = signals::expected_parent().as_raw();
    let uid = nix::unistd::geteuid().as_raw();
    let mut released = 0;
    for pid in processes() {
        if pid == std::process::id() as libc::pid_t || !holds_for(pid, shell, uid, &name) {
            continue;
        }
        // Refer to it by pidfd, then check again that it is what we read: a process alive
        // before and after the check is the one the check read.
        let Ok(p) = process::Process::open(pid) else {
            continue;
        };
        if !holds_for(pid, shell, uid, &name) || !p.alive() {
            continue;
        }
        // Ask it to let go (a holder without undo posts its counts before it ends); one
        // that doesn't end in time is killed, which a holder with undo survives unharmed.
        if p.signal_and_wait(release_signal(), RELEASE_PATIENCE)
            .is_err()
        {
            p.signal_and_wait(libc::SIGKILL, RELEASE_PATIENCE)?;
        }
        released += 1;
    }
    if released == 0 {
        return Err(sem::Error::new(
            ErrorKind::WouldBlock,
            format!("this shell (pid {shell}) holds no count of it"),
        )
        .at(name.label())
        .into());
    }
    Ok(ExitCode::Success)
}

/// The pids in /proc.
fn processes() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether process `pid` is a `hold --shell` of `name` for `shell`, running as `uid`.
fn holds_for(pid: libc::pid_t, shell: libc::pid_t, uid: u32, name: &Name) -> bool {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
        return false;
    };
    // "Uid:\treal\teffective\tsaved\tfs"
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse::<u32>().ok());
    if euid != Some(uid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    // argv: the helper, "hold", its options, "--", NAME, and the final empty piece.
    let held = match args.as_slice() {
        [_, verb, options @ .., dashes, held, last]
            if *verb == b"hold"
                && options.iter().any(|o| *o == b"--shell")
                && *dashes == b"--"
                && last.is_empty() =>
        {
            Some(*held)
        }
        _ => None,
    };
    let Some(held) = held else { return false };
    // By label: a URL's password is blanked in a holder's command line (title.rs).
    let same_name = Name::parse(OsStr::from_bytes(held)).map(|n| n.label() == name.label());
    if same_name.ok() != Some(true) {
        return false;
    }
    let Ok(environ) = std::fs::read(dir.join("environ")) else {
        return false;
    };
    let want = format!("{}={shell}", signals::PARENT_ENV);
    environ.split(|&b| b == 0).any(|e| e == want.as_bytes())
}
