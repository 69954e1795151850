//! `semctl-helper`: the command-line front end of the sem library.

mod cli;
mod exit_codes;

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
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<sem::Error>())
                .map_or(ExitCode::Failure, |s| ExitCode::from(s.kind()));
            eprintln!("semctl-helper: {e:#}");
            code.into()
        }
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
            // block); keep ours to one: its first paragraph, joined.
            let text = e.to_string();
            let para: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let msg = para.join(" ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            return Err(usage(format!("{msg} (see --help)")));
        }
    };
    let inv = cli::invocation(matches);
    let verb = match &inv {
        Invocation::Init { .. } => "init",
        Invocation::Post { .. } => "post",
        Invocation::Wait { .. } => "wait",
        Invocation::TryWait { .. } => "trywait",
        Invocation::Peek { .. } => "peek",
        Invocation::Destroy { .. } => "destroy",
    };
    execute(inv).with_context(|| verb)
}

fn execute(inv: Invocation) -> anyhow::Result<ExitCode> {
    if let Invocation::Wait { name, timeout } = inv {
        return wait(name, timeout);
    }
    // Everything but a wait is over in microseconds: defer Ctrl-C and friends until we
    // exit, so that the exit status always tells what really happened.
    signals::defer_stop_signals()?;
    match inv {
        Invocation::Init { name, value, mode } => {
            let value = sem::parse::value(&utf8(value, "value")?)?;
            let mode = match mode {
                Some(m) => sem::parse::mode(&utf8(m, "mode")?)?,
                None => 0o600,
            };
            sem::init(&Name::resolve(&name)?, value, mode)?;
        }
        Invocation::Post { name } => Semaphore::open(&Name::resolve(&name)?)?.post()?,
        Invocation::TryWait { name } => Semaphore::open(&Name::resolve(&name)?)?.try_wait()?,
        Invocation::Peek { name } => {
            let v = Semaphore::open(&Name::resolve(&name)?)?.value()?;
            writeln!(std::io::stdout().lock(), "{v}").context("cannot write to stdout")?;
        }
        Invocation::Destroy { name } => sem::destroy(&Name::resolve(&name)?)?,
        Invocation::Wait { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::Success)
}

fn wait(name: OsString, timeout: Option<OsString>) -> anyhow::Result<ExitCode> {
    let timeout = match timeout {
        Some(t) => sem::parse::timeout(&utf8(t, "timeout")?)?,
        None => Timeout::Forever,
    };
    let name = Name::resolve(&name)?;
    // A waiter whose caller is gone must not linger and later take a count for nobody.
    signals::die_with_parent()?;
    signals::abort_waits_on_stop_signals()?;
    let sem = Semaphore::open(&name)?;
    match sem.wait(timeout) {
        Err(e) if e.kind() == ErrorKind::Interrupted => match signals::caught() {
            Some(sig) => signals::die_of(sig),
            None => Err(e.into()),
        },
        r => r.map(|()| ExitCode::Success).map_err(Into::into),
    }
}
