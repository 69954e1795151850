//! `semctl-helper`: the command-line front end of the sem library.

#![deny(unsafe_code)]

mod cli;
mod clock;
mod exit_codes;
mod guard;
mod lease;
mod process;
mod report;
mod signals;
mod slot;
mod sys;
mod title;

use std::ffi::OsString;
use std::io::Write;

use anyhow::{anyhow, Context};
use sem::{ErrorKind, InitOptions, Name, Timeout};

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

/// The error line [`say`] prints, without printing it.
pub fn said(verb: &str, message: &str) -> String {
    match caller() {
        Some(who) => format!("{who}: {message}"),
        None => format!("semctl-helper: {verb}: {message}"),
    }
}

/// Print one error line about subcommand `verb`: `CALLER: MESSAGE`, or
/// `semctl-helper: VERB: MESSAGE`.
pub fn say(verb: &str, message: &str) {
    eprintln!("{}", said(verb, message));
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
fn count(n: Option<OsString>) -> anyhow::Result<u32> {
    let Some(n) = n else { return Ok(1) };
    let n = utf8(n, "count")?;
    match sem::parse::value(&n) {
        Ok(0) => Err(usage(format!(
            "invalid count \"0\": a take is of 1 to {} counts",
            sem::MAX_VALUE
        ))),
        Ok(v) => Ok(u32::from(v)),
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

/// A VALUE for `name`: decimal digits, up to its kind's largest value.
fn value_for(name: &Name, v: OsString) -> anyhow::Result<u32> {
    let max = name.kind().capabilities().max_value;
    Ok(sem::parse::value_up_to(&utf8(v, "value")?, max)?)
}

/// What `run` and `hold` take: how many counts, and whether to create the semaphore.
pub struct Slot {
    /// How many counts, 1..32767.
    pub count: u32,
    /// `--init VALUE [--mode MODE] [--group GROUP]`: create NAME with these if it
    /// doesn't exist (the value is checked against the name's kind when it is opened).
    init: Option<(OsString, InitOptions)>,
}

impl Slot {
    fn parse(t: cli::Take) -> anyhow::Result<Slot> {
        let init = match t.init {
            None => None,
            Some(v) => {
                let opts = InitOptions {
                    mode: match t.mode {
                        Some(m) => sem::parse::mode(&utf8(m, "mode")?)?,
                        None => 0o600,
                    },
                    group: t.group.map(|g| group(&utf8(g, "group")?)).transpose()?,
                    force: false,
                };
                Some((v, opts))
            }
        };
        Ok(Slot {
            count: count(t.count)?,
            init,
        })
    }

    /// Open NAME; with `--init`, create it first if nothing is there.
    pub fn open(&self, name: &Name) -> anyhow::Result<Box<dyn sem::Semaphore>> {
        match &self.init {
            Some((value, opts)) => {
                let value = value_for(name, value.clone())?;
                Ok(sem::init_or_open(name, value, opts).map(|(s, _)| s)?)
            }
            None => Ok(sem::open(name)?),
        }
    }
}

/// A NAME argument, parsed: its kind and where it is.
fn name(arg: &OsString) -> sem::Result<Name> {
    Name::parse(arg)
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    title::hide_passwords(&args);
    let matches = match cli::command().try_get_matches_from(args) {
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
        Invocation::Follow { name: n } => return report::follow(&name(&n)?),
        Invocation::Guard {
            pid,
            count,
            id,
            name: n,
        } => return guard::run(pid, count, id, n),
        _ => {}
    }
    // Everything else is over in microseconds: defer Ctrl-C and friends until we exit, so
    // that the exit status always tells what really happened.
    signals::defer_stop_signals()?;
    match inv {
        Invocation::Init {
            name: n,
            value,
            mode,
            force,
            group: g,
        } => {
            let n = name(&n)?;
            let value = value_for(&n, value)?;
            let opts = InitOptions {
                mode: match mode {
                    Some(m) => sem::parse::mode(&utf8(m, "mode")?)?,
                    None => 0o600,
                },
                group: g.map(|g| group(&utf8(g, "group")?)).transpose()?,
                force,
            };
            sem::init(&n, value, &opts)?;
        }
        Invocation::Post { name: n, count } => {
            let n = name(&n)?;
            let add = match count {
                Some(c) => {
                    let max = n.kind().capabilities().max_value;
                    sem::parse::count_up_to(&utf8(c, "count")?, max)?
                }
                None => 1,
            };
            sem::open(&n)?.post(add)?
        }
        Invocation::Relax { name: n } => {
            sem::open(&name(&n)?)?.relax()?;
        }
        Invocation::TryWait { name: n } => sem::open(&name(&n)?)?.try_take(1)?,
        Invocation::Peek { name: n } => {
            let v = sem::open(&name(&n)?)?.value()?;
            writeln!(std::io::stdout().lock(), "{v}").context("cannot write to stdout")?;
        }
        Invocation::Destroy { name: n } => sem::destroy(&name(&n)?)?,
        Invocation::Status { name: n, json } => return report::status(&name(&n)?, json),
        Invocation::List { dir, json } => return report::list(dir, json),
        Invocation::Prune { dir } => return report::prune(dir),
        Invocation::Release { name } => return slot::release(name),
        Invocation::Wait { .. }
        | Invocation::Run { .. }
        | Invocation::Hold { .. }
        | Invocation::Follow { .. }
        | Invocation::Guard { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::Success)
}

fn wait(arg: OsString, n: u32, timeout: Timeout) -> anyhow::Result<ExitCode> {
    let name = name(&arg)?;
    // A waiter whose caller is gone must not linger and later take a count for nobody.
    signals::die_with_parent(signals::expected_parent())?;
    signals::abort_waits_on_stop_signals()?;
    let sem = sem::open(&name)?;
    match sem.take(n, timeout, &signals::CANCEL) {
        Err(e) if e.kind() == ErrorKind::Interrupted => match signals::caught() {
            Some(sig) => signals::die_of(sig),
            None => Err(e.into()),
        },
        r => r.map(|()| ExitCode::Success).map_err(Into::into),
    }
}
