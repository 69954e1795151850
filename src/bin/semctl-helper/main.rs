//! `semctl-helper`: the command-line front end of the sem library.

mod cli;
mod exit_codes;
mod report;
mod slot;

use std::ffi::OsString;
use std::io::Write;

use anyhow::{anyhow, Context};
use sem::{signals, ErrorKind, Name, Semaphore, Timeout};

use cli::Invocation;
use exit_codes::ExitCode;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => code.into(),
        Err(e) => {
            let code = ExitCode::of(&e);
            say_line(&format!("{e:#}"));
            match std::env::args_os().nth(1) {
                // `run` is a command wrapper: its own failures are 125, as for env(1) and
                // timeout(1), so that they can't be mistaken for the program's status.
                Some(a) if a == "run" => return std::process::ExitCode::from(slot::RUN_FAILED),
                // `hold` always answers on stdout, even when its arguments were wrong.
                Some(a) if a == "hold" => slot::answer_no(code as u8),
                _ => {}
            }
            code.into()
        }
    }
}

/// The environment variable in which sem.sh names the function a user called (`sem_run`,
/// `sem_hold`), so that errors speak of what the user typed, not of our subcommands.
pub const CALLER_ENV: &str = "SEMCTL_CALLER";

/// The name in [`CALLER_ENV`], if it is a plain function name.
fn caller() -> Option<String> {
    std::env::var(CALLER_ENV).ok().filter(|c| {
        (1..=32).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

/// Print one error line: `CALLER: MESSAGE`, or `semctl-helper: MESSAGE`.
fn say_line(message: &str) {
    let who = caller().unwrap_or_else(|| "semctl-helper".into());
    eprintln!("{who}: {message}");
}

/// Print one error line about subcommand `verb`: `CALLER: MESSAGE`, or
/// `semctl-helper: VERB: MESSAGE`.
pub fn say(verb: &str, message: &str) {
    match caller() {
        Some(_) => say_line(message),
        None => say_line(&format!("{verb}: {message}")),
    }
}

/// A usage error: exit code 2.
fn usage(msg: String) -> anyhow::Error {
    anyhow!(sem::Error::new(ErrorKind::InvalidInput, msg))
}

fn utf8(s: OsString, what: &str) -> anyhow::Result<String> {
    s.into_string()
        .map_err(|s| usage(format!("invalid {what} {s:?}")))
}

/// A TIMEOUT or `-w SECONDS` argument; absent means forever.
fn timeout(t: Option<OsString>) -> anyhow::Result<Timeout> {
    match t {
        Some(t) => Ok(sem::parse::timeout(&utf8(t, "timeout")?)?),
        None => Ok(Timeout::Forever),
    }
}

/// A GROUP argument: a numeric gid, or a name from /etc/group (see `sem::userdb`).
fn group(g: &str) -> anyhow::Result<u32> {
    if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) {
        // (gid_t)-1 means "no change" to chown(2) and IPC_SET; it is nobody's group.
        return match g.parse::<u32>() {
            Ok(gid) if gid != u32::MAX => Ok(gid),
            _ => Err(usage(format!(
                "invalid group {g:?}: gids go up to 4294967294"
            ))),
        };
    }
    sem::userdb::group_id(g).ok_or_else(|| {
        usage(format!(
            "no such group {g:?} in /etc/group (a gid works too)"
        ))
    })
}

/// A `-n N` argument: how many counts to take at once, 1..32767; absent means 1.
fn count(n: Option<OsString>) -> anyhow::Result<u16> {
    let Some(n) = n else { return Ok(1) };
    let n = utf8(n, "count")?;
    match sem::parse::value(&n) {
        Ok(0) => Err(usage(format!(
            "invalid count \"0\": a take is of 1 to {} counts",
            sem::MAX_VALUE
        ))),
        Ok(v) => Ok(v),
        Err(e) if e.kind() == ErrorKind::InvalidInput => Err(usage(format!(
            "invalid count {n:?}: expected decimal digits, 1 to {}",
            sem::MAX_VALUE
        ))),
        Err(_) => Err(anyhow!(sem::Error::new(
            ErrorKind::OutOfRange,
            format!(
                "count {n} is out of range: a take is of at most {}",
                sem::MAX_VALUE
            )
        ))),
    }
}

/// What `run` and `hold` take: how many counts, and whether to create the semaphore.
pub struct Slot {
    /// How many counts, 1..32767.
    pub count: u16,
    /// `--init VALUE [--mode MODE] [--group GROUP]`: create NAME with these if it
    /// doesn't exist.
    init: Option<(u16, u32, sem::InitOptions)>,
}

impl Slot {
    fn parse(t: cli::Take) -> anyhow::Result<Slot> {
        let init = match t.init {
            None => None,
            Some(v) => {
                let value = sem::parse::value(&utf8(v, "value")?)?;
                let mode = match t.mode {
                    Some(m) => sem::parse::mode(&utf8(m, "mode")?)?,
                    None => 0o600,
                };
                let opts = sem::InitOptions {
                    group: t.group.map(|g| group(&utf8(g, "group")?)).transpose()?,
                    ..sem::InitOptions::default()
                };
                Some((value, mode, opts))
            }
        };
        Ok(Slot {
            count: count(t.count)?,
            init,
        })
    }

    /// Open NAME; with `--init`, create it first if nothing is there.
    pub fn open(&self, name: &Name) -> sem::Result<Semaphore> {
        match self.init {
            Some((value, mode, ref opts)) => {
                sem::init_or_open(name, value, mode, opts).map(|(s, _)| s)
            }
            None => Semaphore::open(name),
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let matches = match cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
                e.print().context("cannot print")?;
                return Ok(ExitCode::Success);
            }
            // clap's message spans several lines (a list of missing arguments, a usage
            // block); keep ours to one: its first paragraph, joined, and its tips ("a
            // similar subcommand exists: 'wait'"), which come in paragraphs of their own.
            let text = e.to_string();
            let para: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let mut msg = para.join(" ");
            for tip in text.lines().filter_map(|l| l.trim().strip_prefix("tip: ")) {
                msg = format!("{msg}; {tip}");
            }
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            return Err(usage(format!("{msg} (see --help)")));
        }
    };
    let inv = cli::invocation(matches);
    let verb = inv.verb();
    // A caller that named itself speaks for the subcommand (see `say`).
    match caller() {
        Some(_) => execute(inv),
        None => execute(inv).with_context(|| verb),
    }
}

fn execute(inv: Invocation) -> anyhow::Result<ExitCode> {
    match inv {
        Invocation::Wait {
            name,
            count: n,
            timeout: t,
        } => return wait(name, count(n)?, timeout(t)?),
        Invocation::Run {
            name,
            take,
            wait,
            code,
            command,
        } => return slot::run(name, &Slot::parse(take)?, timeout(wait)?, code, command),
        Invocation::Hold {
            name,
            take,
            wait,
            shell,
        } => {
            let keep = match shell {
                true => slot::Keep::WhileCallerLives,
                false => slot::Keep::UntilReleased,
            };
            return slot::hold(name, &Slot::parse(take)?, timeout(wait)?, keep);
        }
        Invocation::Follow { name } => return report::follow(&Name::resolve(&name)?),
        _ => {}
    }
    // Everything else is over in microseconds: defer Ctrl-C and friends until we exit, so
    // that the exit status always tells what really happened.
    signals::defer_stop_signals()?;
    match inv {
        Invocation::Init {
            name,
            value,
            mode,
            force,
            group: g,
        } => {
            let value = sem::parse::value(&utf8(value, "value")?)?;
            let mode = match mode {
                Some(m) => sem::parse::mode(&utf8(m, "mode")?)?,
                None => 0o600,
            };
            let group = g.map(|g| group(&utf8(g, "group")?)).transpose()?;
            let opts = sem::InitOptions { force, group };
            sem::init_with(&Name::resolve(&name)?, value, mode, &opts)?;
        }
        Invocation::Post { name, count } => {
            let n = match count {
                Some(n) => sem::parse::count(&utf8(n, "count")?)?,
                None => 1,
            };
            Semaphore::open(&Name::resolve(&name)?)?.post_n(n)?
        }
        Invocation::Relax { name } => {
            Semaphore::open(&Name::resolve(&name)?)?.relax()?;
        }
        Invocation::TryWait { name } => Semaphore::open(&Name::resolve(&name)?)?.try_wait()?,
        Invocation::Peek { name } => {
            let v = Semaphore::open(&Name::resolve(&name)?)?.value()?;
            writeln!(std::io::stdout().lock(), "{v}").context("cannot write to stdout")?;
        }
        Invocation::Destroy { name } => sem::destroy(&Name::resolve(&name)?)?,
        Invocation::Status { name, json } => return report::status(&Name::resolve(&name)?, json),
        Invocation::List { dir, json } => return report::list(dir, json),
        Invocation::Prune { dir } => return report::prune(dir),
        Invocation::Release { name } => return slot::release(name),
        Invocation::Wait { .. }
        | Invocation::Run { .. }
        | Invocation::Hold { .. }
        | Invocation::Follow { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::Success)
}

fn wait(name: OsString, n: u16, timeout: Timeout) -> anyhow::Result<ExitCode> {
    let name = Name::resolve(&name)?;
    // A waiter whose caller is gone must not linger and later take a count for nobody.
    signals::die_with_parent(signals::expected_parent())?;
    signals::abort_waits_on_stop_signals()?;
    let sem = Semaphore::open(&name)?;
    match sem.wait_n(n, timeout) {
        Err(e) if e.kind() == ErrorKind::Interrupted => match signals::caught() {
            Some(sig) => signals::die_of(sig),
            None => Err(e.into()),
        },
        r => r.map(|()| ExitCode::Success).map_err(Into::into),
    }
}
