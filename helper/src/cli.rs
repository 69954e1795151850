//! The command line: parsed with clap's builder (no derive), which keeps start-up short.

use std::ffi::OsString;

use clap::{Arg, ArgMatches, Command};

use crate::exit_codes;

/// One parsed invocation.
pub enum Invocation {
    /// `init [--force] [--group GROUP] NAME VALUE [MODE]`
    Init {
        name: OsString,
        value: OsString,
        mode: Option<OsString>,
        force: bool,
        group: Option<OsString>,
    },
    /// `post NAME [N]`
    Post {
        name: OsString,
        count: Option<OsString>,
    },
    /// `relax NAME`
    Relax { name: OsString },
    /// `wait NAME [-n N] [-w S | TIMEOUT]`
    Wait {
        name: OsString,
        count: Option<OsString>,
        timeout: Option<OsString>,
    },
    /// `trywait NAME`
    TryWait { name: OsString },
    /// `peek NAME`
    Peek { name: OsString },
    /// `destroy NAME`
    Destroy { name: OsString },
    /// `run NAME [--init V [--mode M]] [-n N] [-w S] [-E C] -- PROGRAM [ARG...]`
    Run {
        name: OsString,
        take: Take,
        wait: Option<OsString>,
        code: Option<OsString>,
        command: Vec<OsString>,
    },
    /// `hold NAME [--init V [--mode M] [--group G]] [-n N] [-w S] [--shell]`
    Hold {
        name: OsString,
        take: Take,
        wait: Option<OsString>,
        shell: bool,
    },
    /// `release NAME`
    Release { name: OsString },
    /// `guard PID N DEV:INO -- NAME` (internal: see guard.rs)
    Guard {
        pid: OsString,
        count: OsString,
        id: OsString,
        name: OsString,
    },
    /// `status [--json] NAME`
    Status { name: OsString, json: bool },
    /// `follow NAME`
    Follow { name: OsString },
    /// `list [--json] [DIR]`
    List { dir: Option<OsString>, json: bool },
    /// `prune [DIR]`
    Prune { dir: Option<OsString> },
}

/// What `run` and `hold` take, unparsed: how many counts, and what to create the
/// semaphore with if it doesn't exist yet.
pub struct Take {
    pub count: Option<OsString>,
    pub init: Option<OsString>,
    pub mode: Option<OsString>,
    pub group: Option<OsString>,
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
        "A path (a System V semaphore; relative: under $HOME) or posix:/NAME (a POSIX named semaphore)",
    )
    .required(true)
}

fn wait_option() -> Arg {
    Arg::new("wait")
        .short('w')
        .long("wait")
        .value_name("SECONDS")
        .help("Wait at most this long for a count (fractions allowed; 0: try once; negative: forever)")
        .value_parser(clap::value_parser!(OsString))
        .allow_negative_numbers(true)
}

fn count_option() -> Arg {
    Arg::new("count")
        .short('n')
        .long("count")
        .value_name("N")
        .help("Take N counts at once (1..32767, default 1): all of them or none")
        .value_parser(clap::value_parser!(OsString))
}

/// `--init VALUE [--mode MODE] [--group GROUP]`: create on first use.
fn init_options() -> [Arg; 3] {
    [
        Arg::new("init")
            .long("init")
            .value_name("VALUE")
            .help("Create NAME with VALUE (0..32767) if it doesn't exist; if it does, use it as it is")
            .value_parser(clap::value_parser!(OsString)),
        Arg::new("mode")
            .long("mode")
            .value_name("MODE")
            .help("With --init: octal permissions of a set it creates (default 0600)")
            .value_parser(clap::value_parser!(OsString))
            .requires("init"),
        Arg::new("group")
            .long("group")
            .value_name("GROUP")
            .help("With --init: the group of a set it creates (a name or a gid; one of yours unless you are root)")
            .value_parser(clap::value_parser!(OsString))
            .requires("init"),
    ]
}

fn json_flag() -> Arg {
    Arg::new("json")
        .long("json")
        .help("Print JSON for programs")
        .action(clap::ArgAction::SetTrue)
}

fn dir_arg() -> Arg {
    positional(
        "DIR",
        "The directory to look in (default $HOME; not recursive), or posix: for the POSIX semaphores",
    )
}

/// The whole command-line interface.
pub fn command() -> Command {
    Command::new("semctl-helper")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Counting semaphores for shell scripts (the engine of sem.sh): System V semaphore sets named by files, and POSIX named semaphores (posix:/NAME). Env: SEM_POSIX_TRUST (uids or user names whose posix: semaphores may be used besides yours and root's)",
        )
        .after_help(exit_codes::HELP)
        .subcommand_required(true)
        .disable_help_subcommand(true)
        .subcommand(
            Command::new("init")
                .about("Create NAME with VALUE (0..32767); MODE is octal, default 0600")
                .arg(name())
                .arg(positional("VALUE", "The initial value: 0..32767 (System V), 0..2147483647 (posix:)").required(true))
                .arg(positional(
                    "MODE",
                    "Octal permissions of the kernel set, e.g. 0660",
                ))
                .arg(
                    Arg::new("group")
                        .short('g')
                        .long("group")
                        .value_name("GROUP")
                        .help("Give the set and its file this group (a name or a gid; one of yours unless you are root)")
                        .value_parser(clap::value_parser!(OsString)),
                )
                .arg(
                    Arg::new("force")
                        .long("force")
                        .help("Replace your own record made in another IPC namespace (its set lives on there)")
                        .action(clap::ArgAction::SetTrue),
                ),
        )
        .subcommand(
            Command::new("post")
                .about("Add N (default 1, at most 32767) to NAME at once, waking as many waiters")
                .arg(name())
                .arg(positional("N", "How much to add (default 1): up to 32767 (System V), 2147483647 (posix:)")),
        )
        .subcommand(
            Command::new("relax")
                .about("Release every process blocked on NAME now, as if posted once for each")
                .arg(name()),
        )
        .subcommand(
            Command::new("wait")
                .about(
                    "Take one count of NAME (or N at once), sleeping in the kernel until enough \
                     are posted",
                )
                .arg(count_option())
                .arg(
                    Arg::new("timeout")
                        .short('w')
                        .long("timeout")
                        .alias("wait")
                        .value_name("SECONDS")
                        .help("As TIMEOUT")
                        .value_parser(clap::value_parser!(OsString))
                        .allow_negative_numbers(true),
                )
                .arg(name())
                .arg(
                    positional(
                        "TIMEOUT",
                        "Seconds, fractions allowed; negative: forever; 0: don't wait",
                    )
                    .conflicts_with("timeout"),
                ),
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
        .subcommand(
            Command::new("run")
                .about(
                    "Take one count of NAME (or N), then run PROGRAM, which holds them until it \
                     ends, however it ends (System V: SEM_UNDO; posix: a guard process posts them). \
                     Exits with PROGRAM's status; with CODE \
                     when no count came in time; 125 when run itself fails; 126 when PROGRAM \
                     can't be run; 127 when it isn't found",
                )
                .args(init_options())
                .arg(count_option())
                .arg(wait_option())
                .arg(
                    Arg::new("code")
                        .short('E')
                        .long("conflict-exit-code")
                        .value_name("CODE")
                        .help("Exit with CODE (0..255, default 1) when no count came in time")
                        .value_parser(clap::value_parser!(OsString)),
                )
                .arg(
                    Arg::new("NAME")
                        .help("A path (System V; relative: under $HOME) or posix:/NAME")
                        .value_parser(clap::value_parser!(OsString))
                        .required(true),
                )
                .arg(
                    Arg::new("COMMAND")
                        .help("The program and its arguments (after --)")
                        .value_name("PROGRAM")
                        .value_parser(clap::value_parser!(OsString))
                        .num_args(1..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true)
                        .required(true),
                ),
        )
        .subcommand(
            Command::new("hold")
                .about(
                    "Take one count of NAME (or N; SEM_UNDO), print \"ok\", and keep it until a byte \
                     or end of file arrives on stdin or its caller ends; without a count, print \"no STATUS\" (used by \
                     sem_run for shell functions)",
                )
                .args(init_options())
                .arg(count_option())
                .arg(wait_option())
                .arg(
                    Arg::new("shell")
                        .long("shell")
                        .help(
                            "Keep the count until the caller (SEMCTL_PARENT, else the parent) \
                             ends, however it ends, or `release` ends the hold; print the \
                             answer and then let go of stdin and stdout (used by sem_hold)",
                        )
                        .action(clap::ArgAction::SetTrue),
                )
                .arg(name()),
        )
        .subcommand(
            Command::new("guard")
                .about("Post N counts of NAME once process PID has ended (internal, for run)")
                .hide(true)
                .arg(positional("PID", "The process to watch").required(true))
                .arg(positional("N", "How many counts to give back").required(true))
                .arg(positional("ID", "DEV:INO of the semaphore").required(true))
                .arg(name()),
        )
        .subcommand(
            Command::new("release")
                .about(
                    "End the `hold --shell` holds of NAME that the caller (SEMCTL_PARENT, else \
                     the parent) took, once their counts are back; exit 1 when there is none \
                     (used by sem_release)",
                )
                .arg(name()),
        )
        .subcommand(
            Command::new("status")
                .about("Describe NAME: value, waiters, last operation, owner, mode, kernel ids")
                .arg(json_flag())
                .arg(name()),
        )
        .subcommand(
            Command::new("follow")
                .about(
                    "Print a time-stamped line whenever NAME's value or waiter count changes, \
                     until interrupted or destroyed",
                )
                .arg(name()),
        )
        .subcommand(
            Command::new("list")
                .about("List the semaphore records in DIR with their value, waiters and state")
                .arg(json_flag())
                .arg(dir_arg()),
        )
        .subcommand(
            Command::new("prune")
                .about("Remove the stale records in DIR that you own, printing each one removed")
                .arg(dir_arg()),
        )
}

fn take(m: &mut ArgMatches, id: &str) -> Option<OsString> {
    m.remove_one::<OsString>(id)
}

fn take_options(m: &mut ArgMatches) -> Take {
    Take {
        count: take(m, "count"),
        init: take(m, "init"),
        mode: take(m, "mode"),
        group: take(m, "group"),
    }
}

/// Turn clap's matches into an [`Invocation`].
pub fn invocation(mut m: ArgMatches) -> Invocation {
    // subcommand_required(true) and required(true) guarantee these are present.
    let (sub, mut a) = m.remove_subcommand().expect("a subcommand is required");
    let json = a.try_get_one::<bool>("json").ok().flatten() == Some(&true);
    match sub.as_str() {
        "guard" => {
            return Invocation::Guard {
                pid: take(&mut a, "PID").expect("PID is required"),
                count: take(&mut a, "N").expect("N is required"),
                id: take(&mut a, "ID").expect("ID is required"),
                name: take(&mut a, "NAME").expect("NAME is required"),
            }
        }
        "list" => {
            return Invocation::List {
                dir: take(&mut a, "DIR"),
                json,
            }
        }
        "prune" => {
            return Invocation::Prune {
                dir: take(&mut a, "DIR"),
            }
        }
        _ => {}
    }
    let name = take(&mut a, "NAME").expect("NAME is required");
    match sub.as_str() {
        "init" => Invocation::Init {
            name,
            value: take(&mut a, "VALUE").expect("VALUE is required"),
            mode: take(&mut a, "MODE"),
            force: a.get_flag("force"),
            group: take(&mut a, "group"),
        },
        "post" => Invocation::Post {
            name,
            count: take(&mut a, "N"),
        },
        "relax" => Invocation::Relax { name },
        "wait" => Invocation::Wait {
            name,
            count: take(&mut a, "count"),
            // clap refuses both at once.
            timeout: take(&mut a, "TIMEOUT").or_else(|| take(&mut a, "timeout")),
        },
        "trywait" => Invocation::TryWait { name },
        "peek" => Invocation::Peek { name },
        "destroy" => Invocation::Destroy { name },
        "run" => Invocation::Run {
            name,
            take: take_options(&mut a),
            wait: take(&mut a, "wait"),
            code: take(&mut a, "code"),
            command: a
                .remove_many::<OsString>("COMMAND")
                .expect("COMMAND is required")
                .collect(),
        },
        "hold" => Invocation::Hold {
            name,
            take: take_options(&mut a),
            wait: take(&mut a, "wait"),
            shell: a.get_flag("shell"),
        },
        "release" => Invocation::Release { name },
        "status" => Invocation::Status { name, json },
        "follow" => Invocation::Follow { name },
        other => unreachable!("clap knows no subcommand {other}"),
    }
}

impl Invocation {
    /// The subcommand's name, for error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Invocation::Init { .. } => "init",
            Invocation::Post { .. } => "post",
            Invocation::Relax { .. } => "relax",
            Invocation::Wait { .. } => "wait",
            Invocation::TryWait { .. } => "trywait",
            Invocation::Peek { .. } => "peek",
            Invocation::Destroy { .. } => "destroy",
            Invocation::Run { .. } => "run",
            Invocation::Hold { .. } => "hold",
            Invocation::Release { .. } => "release",
            Invocation::Guard { .. } => "guard",
            Invocation::Status { .. } => "status",
            Invocation::Follow { .. } => "follow",
            Invocation::List { .. } => "list",
            Invocation::Prune { .. } => "prune",
        }
    }
}
