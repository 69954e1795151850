//! The command line: parsed with clap's builder (no derive), which keeps start-up short.

use std::ffi::OsString;

use clap::{Arg, ArgMatches, Command};

use crate::exit_codes;

/// One parsed invocation.
pub enum Invocation {
    /// `init NAME VALUE [MODE]`
    Init {
        name: OsString,
        value: OsString,
        mode: Option<OsString>,
    },
    /// `post NAME`
    Post { name: OsString },
    /// `wait NAME [TIMEOUT]`
    Wait {
        name: OsString,
        timeout: Option<OsString>,
    },
    /// `trywait NAME`
    TryWait { name: OsString },
    /// `peek NAME`
    Peek { name: OsString },
    /// `destroy NAME`
    Destroy { name: OsString },
}

fn positional(id: &'static str, help: &'static str) -> Arg {
    // Hyphen values are allowed so that `wait NAME -1` needs no `--`.
    Arg::new(id)
        .help(help)
        .value_parser(clap::value_parser!(OsString))
        .allow_hyphen_values(true)
}

fn name() -> Arg {
    positional(
        "NAME",
        "The semaphore's file; a relative name is under $HOME",
    )
    .required(true)
}

/// The whole command-line interface.
pub fn command() -> Command {
    Command::new("semctl-helper")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Counting semaphores on System V semaphore sets, named by files (the engine of sem.sh)",
        )
        .after_help(exit_codes::HELP)
        .subcommand_required(true)
        .disable_help_subcommand(true)
        .subcommand(
            Command::new("init")
                .about("Create NAME with VALUE (0..32767); MODE is octal, default 0600")
                .arg(name())
                .arg(positional("VALUE", "The initial value, 0..32767").required(true))
                .arg(positional(
                    "MODE",
                    "Octal permissions of the kernel set, e.g. 0660",
                )),
        )
        .subcommand(
            Command::new("post")
                .about("Add one to NAME, waking a waiter")
                .arg(name()),
        )
        .subcommand(
            Command::new("wait")
                .about("Take one count of NAME, sleeping in the kernel until one is posted")
                .arg(name())
                .arg(positional(
                    "TIMEOUT",
                    "Seconds, fractions allowed; negative: forever; 0: don't wait",
                )),
        )
        .subcommand(
            Command::new("trywait")
                .about("Take one count of NAME if one is there now")
                .arg(name()),
        )
        .subcommand(Command::new("peek").about("Print NAME's value").arg(name()))
        .subcommand(
            Command::new("destroy")
                .about("Remove NAME (its owner only), waking its waiters")
                .arg(name()),
        )
}

fn take(m: &mut ArgMatches, id: &str) -> Option<OsString> {
    m.remove_one::<OsString>(id)
}

/// Turn clap's matches into an [`Invocation`].
pub fn invocation(mut m: ArgMatches) -> Invocation {
    // subcommand_required(true) and required(true) guarantee these are present.
    let (sub, mut a) = m.remove_subcommand().expect("a subcommand is required");
    let name = take(&mut a, "NAME").expect("NAME is required");
    match sub.as_str() {
        "init" => Invocation::Init {
            name,
            value: take(&mut a, "VALUE").expect("VALUE is required"),
            mode: take(&mut a, "MODE"),
        },
        "post" => Invocation::Post { name },
        "wait" => Invocation::Wait {
            name,
            timeout: take(&mut a, "TIMEOUT"),
        },
        "trywait" => Invocation::TryWait { name },
        "peek" => Invocation::Peek { name },
        "destroy" => Invocation::Destroy { name },
        other => unreachable!("clap knows no subcommand {other}"),
    }
}
