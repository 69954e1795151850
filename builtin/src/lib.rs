//! `__sem`, a bash loadable builtin: sem.sh's quick operations (post, trywait, wait, peek,
//! relax) on System V names, done in the shell's own process through the sem library,
//! instead of a spawn of semctl-helper (about 3 µs instead of about 1 ms).
//!
//! sem.sh loads it with `enable -f .../sem-builtin.so __sem` when it can, and calls
//!
//! ```text
//! __sem OP [--] NAME [ARG]       OP: post [N], trywait, wait [TIMEOUT], peek, relax
//! __sem version [N]               print the protocol version, or test that it is N
//! ```
//!
//! With the shell variable SEM_VERBOSE set to `1`, a failure prints the helper's one-line
//! reason on stderr, worded as the helper words it (sem.sh's contract). The status is the helper's exit code
//! (`helper/src/exit_codes.rs`), 128+N for a wait that signal N ended, or
//! [`status::NOT_MINE`] for a call the builtin leaves to sem.sh's helper path: a name that
//! is not a System V path or does not parse, an argument that is not UTF-8, or a wrong
//! number of arguments (sem.sh and the helper then say why, in their words). Nothing here is
//! semaphore logic: names, verification, waits and errors are the library's; the
//! [`sem::kind::sysv::cache::Cache`] keeps verified semaphores across calls.
//!
//! It never uses SEM_UNDO (an undo would come back only when the long-lived shell exits),
//! never longjmps (bash acts on a signal when we return), and never lets a panic unwind
//! into bash.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[allow(unsafe_code)]
mod sys;

use std::cell::RefCell;
use std::ffi::{c_int, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use sem::kind::sysv::cache::Cache;
use sem::{Cancel, ErrorKind, Kind as _, Name, Semaphore, Timeout};

/// The version of the protocol above; sem.sh refuses a builtin that speaks another.
pub const PROTOCOL: u32 = 1;

/// The builtin's statuses: the helper's exit codes, and one of its own.
pub mod status {
    use std::ffi::c_int;

    /// The operation succeeded.
    pub const SUCCESS: c_int = 0;
    /// Bad usage (the helper's 2).
    pub const USAGE: c_int = 2;
    /// Any other failure (the helper's 7), a caught panic among them.
    pub const FAILURE: c_int = 7;
    /// Not a name (or an argument) the builtin handles: sem.sh asks the helper instead.
    /// Outside the helper's codes (0..8, 125, 128+N).
    pub const NOT_MINE: c_int = 100;

    /// The helper's exit code for a library error (`helper/src/exit_codes.rs`).
    pub fn of(kind: sem::ErrorKind) -> c_int {
        use sem::ErrorKind as K;
        match kind {
            K::WouldBlock | K::TimedOut | K::Interrupted => 1,
            K::InvalidInput => USAGE,
            K::NotFound | K::Stale | K::OtherNamespace | K::Removed => 3,
            K::PermissionDenied | K::NotOwner => 4,
            K::OutOfRange => 5,
            K::AlreadyExists => 6,
            K::Unsupported => 8,
            _ => FAILURE,
        }
    }
}

thread_local! {
    /// This shell's verified semaphores. A subshell inherits a copy; every use revalidates.
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new());
}

/// `enable -f`: find bash's signal state and set a one-line panic hook. 1 loads, 0 refuses.
fn load() -> c_int {
    if let Err(missing) = sys::resolve() {
        say(&format!(
            "sem-builtin: this bash exports no {missing}; not loaded"
        ));
        return 0;
    }
    // One line for a panic, not Rust's report and backtrace in the user's terminal. The
    // hook is this shared object's own std's, so no other Rust code in the shell sees it.
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string().replace('\n', " ");
        say(&format!("sem-builtin: bug: {text}"));
    }));
    1
}

/// `enable -d`: drop what we keep.
fn unload() {
    let _ = CACHE.try_with(|c| c.borrow_mut().clear());
}

/// Write one line on stderr (fd 2, wherever bash's redirections put it).
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// The signals that end a wait, as they end the helper's (docs/DESIGN.md, Signals).
const STOP: [c_int; 7] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The wait's probe, asked every [`sem::PROBE_SLICE`] and after every EINTR: bash's own
/// record of a signal that should end the command. A fatal signal, a Ctrl-C that bash
/// will act on, or a trapped stop signal whose trap waits to run. SIGCHLD and the
/// signals bash ignores set none of them.
fn probe() -> Option<i32> {
    match (sys::terminating(), sys::interrupt()) {
        (0, 0) => STOP.into_iter().find(|&s| sys::pending_trap(s) > 0),
        (0, _) => Some(libc::SIGINT),
        (t, _) => Some(t),
    }
}

/// One call: `ARGS` are the words after `__sem`.
fn run(args: &[Vec<u8>]) -> c_int {
    let word = |i: usize| args.get(i).map(Vec::as_slice);
    match (word(0), args.len()) {
        (Some(b"version"), 1) => {
            return match writeln!(std::io::stdout().lock(), "{PROTOCOL}") {
                Ok(()) => status::SUCCESS,
                Err(_) => status::FAILURE,
            }
        }
        (Some(b"version"), 2) => {
            // A test, silent: sem.sh asks whether we speak its version.
            return c_int::from(word(1) != Some(PROTOCOL.to_string().as_bytes()));
        }
        // For bats/builtin.bats: proves that a panic prints one line and the shell lives.
        (Some(b"_panic"), _) => panic!("a panic asked for by `__sem _panic`"),
        _ => {}
    }
    let Some(op) = word(0) else {
        return usage();
    };
    // SEM_VERBOSE as sem.sh reads it: the shell's variable, exported or not. Read here
    // rather than passed in: expanding it in sem.sh's function cost more than the rest
    // of the function (docs/BENCH.md).
    let verbose = sys::shell_var(c"SEM_VERBOSE").as_deref() == Some(b"1".as_slice());
    // The arguments of the sem_* function, as sem.sh's functions take them: one leading
    // `--` is dropped. A wrong number of them is left to sem.sh's own function, which
    // says how to call it.
    let mut rest = &args[1..];
    if rest.first().map(Vec::as_slice) == Some(b"--") {
        rest = &rest[1..];
    }
    let op = match (op, rest.len()) {
        (b"post", 1 | 2) => Op::Post,
        (b"trywait", 1) => Op::TryWait,
        (b"wait", 1 | 2) => Op::Wait,
        (b"peek", 1) => Op::Peek,
        (b"relax", 1) => Op::Relax,
        (b"post" | b"trywait" | b"wait" | b"peek" | b"relax", _) => return status::NOT_MINE,
        _ => return usage(),
    };
    let name = &rest[0];
    let arg = rest.get(1).map(Vec::as_slice);
    let out = Call { op, verbose };
    // The helper parses a wait's TIMEOUT before the name: so do we, for the same message.
    let timeout = match (op, arg) {
        (Op::Wait, Some(t)) => match std::str::from_utf8(t) {
            Ok(t) => match sem::parse::timeout(t) {
                Ok(t) => t,
                Err(e) => return out.fail(&e),
            },
            Err(_) => return status::NOT_MINE,
        },
        _ => Timeout::Forever,
    };
    let Ok(Name::Path(path)) = Name::parse(OsStr::from_bytes(name)) else {
        return status::NOT_MINE;
    };
    let count = match (op, arg) {
        (Op::Post, Some(n)) => {
            let Ok(n) = std::str::from_utf8(n) else {
                return status::NOT_MINE;
            };
            let max = sem::kind::sysv::SysV.capabilities().max_value;
            match sem::parse::count_up_to(n, max) {
                Ok(n) => n,
                Err(e) => return out.fail(&e),
            }
        }
        _ => 1,
    };
    let cancel = Cancel::with_probe(probe);
    let r = CACHE.with(|c| {
        c.borrow_mut().with(&path, |s| match op {
            Op::Post => Semaphore::post(s, count).map(|()| None),
            Op::TryWait => s.try_take(1).map(|()| None),
            Op::Wait => Semaphore::take(s, 1, timeout, &cancel).map(|()| None),
            Op::Peek => Semaphore::value(s).map(Some),
            Op::Relax => Semaphore::relax(s).map(|_| None),
        })
    });
    match r {
        Ok(None) => status::SUCCESS,
        Ok(Some(v)) => out.print(v),
        Err(e) if e.kind() == ErrorKind::Interrupted => {
            // Return, never longjmp: bash acts on the signal (runs the trap, throws to
            // the prompt, or dies of it) as soon as we are back.
            let sig = cancel.reason().unwrap_or(libc::SIGINT);
            if verbose {
                say(&format!(
                    "semctl-helper: wait: {}: interrupted by signal {sig}",
                    path.path().display()
                ));
            }
            128 + sig
        }
        Err(e) => out.fail(&e),
    }
}

/// sem.sh called us wrongly: a bug, said always.
fn usage() -> c_int {
    say("sem-builtin: usage: __sem post|trywait|wait|peek|relax [--] NAME [ARG]");
    status::USAGE
}

/// What sem.sh asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Post,
    TryWait,
    Wait,
    Peek,
    Relax,
}

impl Op {
    /// The helper's subcommand, which its error lines name.
    fn verb(self) -> &'static str {
        match self {
            Op::Post => "post",
            Op::TryWait => "trywait",
            Op::Wait => "wait",
            Op::Peek => "peek",
            Op::Relax => "relax",
        }
    }
}

/// How one call reports.
struct Call {
    op: Op,
    verbose: bool,
}

impl Call {
    /// The helper's status for `e`, and its line when verbose.
    fn fail(&self, e: &sem::Error) -> c_int {
        if self.verbose {
            say(&format!("semctl-helper: {}: {e}", self.op.verb()));
        }
        status::of(e.kind())
    }

    /// Print a value, as the helper does, reporting a write error.
    fn print(&self, v: u32) -> c_int {
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{v}").and_then(|()| out.flush()) {
            Ok(()) => status::SUCCESS,
            Err(e) => {
                if self.verbose {
                    say(&format!(
                        "semctl-helper: {}: cannot write to stdout: {e}",
                        self.op.verb()
                    ));
                }
                status::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<Vec<u8>> {
        w.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn statuses_are_the_helpers() {
        assert_eq!(status::of(ErrorKind::WouldBlock), 1);
        assert_eq!(status::of(ErrorKind::Interrupted), 1);
        assert_eq!(status::of(ErrorKind::NotFound), 3);
        assert_eq!(status::of(ErrorKind::Removed), 3);
        assert_eq!(status::of(ErrorKind::PermissionDenied), 4);
        assert_eq!(status::of(ErrorKind::OutOfRange), 5);
        assert_eq!(status::of(ErrorKind::Unsupported), 8);
    }

    #[test]
    fn names_of_other_kinds_are_left_to_the_helper() {
        for n in ["posix:/x", "redis:x", "redis://h/x", ""] {
            assert_eq!(run(&words(&["post", n])), status::NOT_MINE, "{n:?}");
        }
    }

    #[test]
    fn bad_calls_are_usage_errors_or_left_to_sem_sh() {
        assert_eq!(run(&words(&[])), status::USAGE);
        assert_eq!(run(&words(&["hold", "/x"])), status::USAGE);
        assert_eq!(run(&words(&["post"])), status::NOT_MINE);
        assert_eq!(run(&words(&["post", "--"])), status::NOT_MINE);
        assert_eq!(run(&words(&["trywait", "/x", "2"])), status::NOT_MINE);
        assert_eq!(run(&words(&["post", "/x", "1", "2"])), status::NOT_MINE);
    }

    #[test]
    fn version_is_tested_silently() {
        assert_eq!(run(&words(&["version", "1"])), 0);
        assert_eq!(run(&words(&["version", "2"])), 1);
    }

    #[test]
    fn a_bad_argument_is_the_helpers_usage_error() {
        assert_eq!(run(&words(&["post", "/nonexistent/x", "0"])), 2);
        assert_eq!(run(&words(&["wait", "/nonexistent/x", "soon"])), 2);
        assert_eq!(run(&words(&["peek", "/nonexistent/x"])), 3);
        assert_eq!(run(&words(&["peek", "--", "/nonexistent/x"])), 3);
    }

    #[test]
    fn a_panic_is_caught_at_the_entry() {
        let r = std::panic::catch_unwind(|| run(&words(&["_panic"])));
        assert!(r.is_err(), "run panics; sys::entry catches it");
    }
}
