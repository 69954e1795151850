//! What people and programs read: status, list, prune and follow.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sem::clock::Nap;
use sem::{clock, signals, Entry, ErrorKind, Name, Pruning, Semaphore, State};
use unicode_width::UnicodeWidthStr;

use crate::exit_codes::ExitCode;

/// How often `follow` samples the semaphore: the kernel has no change notification.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(20);

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

/// The state's name in `list` and in JSON's `"state"`.
fn state_name(s: &State) -> &'static str {
    match s {
        State::Live(_) => "live",
        State::Stale(_) => "stale",
        State::NoAccess(_) => "no-access",
        State::OtherNamespace(_) => "other-namespace",
    }
}

/// One entry as a JSON object.
fn json(e: &Entry) -> String {
    let name = json_str(&e.name.path().to_string_lossy());
    let key = format!("\"0x{:08x}\"", e.key as u32);
    let tail = format!(
        ",\"state\":\"{}\",\"ipcns\":{}",
        state_name(&e.state),
        e.ipcns
    );
    let unknown = |stale: bool, access: bool, why: &str| {
        format!(
            "{{\"name\":{name},\"value\":null,\"capacity\":null,\"waiters\":null,\"zero_waiters\":null,\"last_pid\":null,\"last_op\":null,\"changed\":null,\"owner\":{},\"mode\":null,\"key\":{key},\"id\":{},\"stale\":{stale},\"access\":{access},\"reason\":{}{tail},\"group\":null}}",
            e.owner,
            e.id,
            json_str(why)
        )
    };
    match &e.state {
        State::Live(s) => format!(
            "{{\"name\":{name},\"value\":{},\"capacity\":{},\"waiters\":{},\"zero_waiters\":{},\"last_pid\":{},\"last_op\":{},\"changed\":{},\"owner\":{},\"mode\":\"{:04o}\",\"key\":{key},\"id\":{},\"stale\":false,\"access\":true,\"reason\":null{tail},\"group\":{}}}",
            s.value,
            opt(s.capacity),
            s.waiters,
            s.zero_waiters,
            opt(s.last_pid),
            opt(s.last_op),
            s.changed,
            s.owner,
            s.mode,
            e.id,
            s.group
        ),
        State::Stale(why) => unknown(true, true, why),
        State::NoAccess(why) => unknown(false, false, why),
        // Not usable from here, and not known to be stale.
        State::OtherNamespace(why) => unknown(false, false, why),
    }
}

/// `s` with control characters (a newline in a file name) escaped, for a one-line table.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// `s` followed by spaces up to `width` display columns.
fn pad(s: &str, width: usize) -> String {
    let mut out = s.to_owned();
    out.extend(std::iter::repeat(' ').take(width.saturating_sub(s.width())));
    out
}

/// "root (uid 0)", or "uid 1234" when the password database has no such user.
fn user(uid: u32) -> String {
    match sem::userdb::user_name(uid) {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// "root (gid 0)", or "gid 1234" when the group database has no such group.
fn group(gid: u32) -> String {
    match sem::userdb::group_name(gid) {
        Some(n) => format!("{n} (gid {gid})"),
        None => format!("gid {gid}"),
    }
}

/// A Unix time for people: local time, and how long ago.
fn when(secs: i64) -> String {
    let (now, _) = clock::now();
    let ago = now.saturating_sub(secs).max(0);
    format!("{} ({})", clock::local(secs), ago_text(ago))
}

fn ago_text(secs: i64) -> String {
    match secs {
        0 => "just now".into(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// The capacity line's text: what `wait -n`, `run -n` and `hold -n` are checked against.
fn capacity_text(cap: Option<u16>) -> String {
    match cap {
        Some(0) => "0 (created empty: only posts fill it)".into(),
        Some(c) => format!("{c} (its initial value)"),
        None => "unknown (created before sem recorded it)".into(),
    }
}

/// The summary for people.
fn text(e: &Entry) -> String {
    let path = e.name.path().display();
    let kernel = format!("key 0x{:08x}, id {}", e.key as u32, e.id);
    match &e.state {
        State::Live(s) => {
            let last = match (s.last_op, s.last_pid) {
                (Some(t), Some(pid)) => format!("pid {pid}, {}", when(t)),
                (Some(t), None) => when(t),
                _ => "none yet".into(),
            };
            format!(
                "{path}: live\n  value:    {}\n  capacity: {}\n  waiters:  {} blocked\n  last op:  {last}\n  owner:    {}, group {}, mode {:04o}\n  kernel:   {kernel}\n",
                s.value,
                capacity_text(s.capacity),
                s.waiters,
                user(s.owner),
                group(s.group),
                s.mode
            )
        }
        State::Stale(why) => format!(
            "{path}: stale\n  why:      {why}\n  owner:    {} (of the record)\n  kernel:   {kernel} (as recorded)\n  sem_init reclaims the name; `semctl-helper prune` removes it.\n",
            user(e.owner)
        ),
        State::NoAccess(why) => format!(
            "{path}: no access\n  why:      {why}\n  owner:    {} (of the record)\n  kernel:   {kernel} (as recorded)\n",
            user(e.owner)
        ),
        State::OtherNamespace(why) => format!(
            "{path}: in another IPC namespace\n  why:      {why}\n  owner:    {} (of the record)\n  kernel:   {kernel} (as recorded, in ipc:[{}])\n  Use it from that namespace; its owner can replace it here with sem_init --force.\n",
            user(e.owner),
            e.ipcns
        ),
    }
}

fn print(s: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// `status [--json] NAME`: exit 0 for a live semaphore, 3 for a stale record or one of
/// another IPC namespace (described all the same), 4 when its mode keeps us out.
pub fn status(name: &Name, as_json: bool) -> anyhow::Result<ExitCode> {
    let entry = sem::inspect(name)?;
    if let State::NoAccess(why) = &entry.state {
        return Err(sem::Error::new(ErrorKind::PermissionDenied, why.clone())
            .at(name.path())
            .into());
    }
    if as_json {
        print(&(json(&entry) + "\n"))?;
    } else {
        print(&text(&entry))?;
    }
    Ok(match entry.state {
        State::Live(_) => ExitCode::Success,
        _ => ExitCode::NoSuchSemaphore,
    })
}

/// The directory for `list` and `prune`: DIR, or the home directory.
fn directory(dir: Option<OsString>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(d) if d.is_empty() => {
            Err(sem::Error::new(ErrorKind::InvalidInput, "empty directory name").into())
        }
        Some(d) => Ok(PathBuf::from(d)),
        // A name resolved in the home directory tells us where that is.
        None => Ok(Name::resolve("x".as_ref())?.dir().to_path_buf()),
    }
}

/// `list [--json] [DIR]`.
pub fn list(dir: Option<OsString>, as_json: bool) -> anyhow::Result<ExitCode> {
    let dir = directory(dir)?;
    let entries = sem::list(&dir)?;
    let mut out = String::new();
    if as_json {
        let items: Vec<String> = entries.iter().map(json).collect();
        out = format!("[{}]\n", items.join(","));
    } else {
        let rows: Vec<[String; 4]> = entries
            .iter()
            .map(|e| {
                let (v, w, st) = match &e.state {
                    State::Live(s) => (s.value.to_string(), s.waiters.to_string(), "live"),
                    other => ("-".into(), "-".into(), state_name(other)),
                };
                [printable(&e.name.path().to_string_lossy()), v, w, st.into()]
            })
            .collect();
        // Padded by the columns a terminal gives each name (two for CJK and most
        // emoji), not by bytes or chars, so that the columns after it line up.
        let width = rows.iter().map(|r| r[0].width()).max().unwrap_or(0).max(4);
        if !rows.is_empty() {
            let _ = writeln!(out, "{}  VALUE  WAITERS  STATE", pad("NAME", width));
        }
        for r in rows {
            let _ = writeln!(
                out,
                "{}  {:>5}  {:>7}  {}",
                pad(&r[0], width),
                r[1],
                r[2],
                r[3]
            );
        }
    }
    print(&out)?;
    Ok(ExitCode::Success)
}

/// `prune [DIR]`: one line per record removed, and per record of another IPC namespace
/// kept because we can't tell whether that namespace is gone; failures on stderr, and
/// exit 7.
pub fn prune(dir: Option<OsString>) -> anyhow::Result<ExitCode> {
    let dir = directory(dir)?;
    let mut code = ExitCode::Success;
    for p in sem::prune(&dir)? {
        match p.outcome {
            Ok(Pruning::Removed(why)) => {
                print(&format!("removed {}: {why}\n", p.name.path().display()))?
            }
            Ok(Pruning::Kept(why)) => print(&format!("kept {}: {why}\n", p.name.path().display()))?,
            Err(e) => {
                eprintln!("semctl-helper: prune: {e}");
                code = ExitCode::Failure;
            }
        }
    }
    Ok(code)
}

/// A time stamp for a follow line: local time with milliseconds.
fn stamp() -> String {
    let (secs, ms) = clock::now();
    format!("{}.{ms:03}", clock::local(secs))
}

/// `follow NAME`: a line at start and at every change of value or waiters, sampled every
/// [`FOLLOW_INTERVAL`]; a last line when NAME is destroyed or we are interrupted. Ends
/// quietly, with 0, as soon as nobody reads stdout any more.
pub fn follow(name: &Name) -> anyhow::Result<ExitCode> {
    signals::abort_waits_on_stop_signals()?;
    let sem = Semaphore::open(name)?;
    let mut last = None;
    // A reader that went away (`follow | head`) ends us quietly.
    let say = |line: String| {
        if print(&(line + "\n")).is_err() {
            std::process::exit(0);
        }
    };
    loop {
        if signals::caught().is_some() {
            say(format!(
                "{} stopped following {}",
                stamp(),
                name.path().display()
            ));
            return Ok(ExitCode::Success);
        }
        let now = match (sem.value(), sem.waiters()) {
            (Ok(v), Ok(w)) => (v, w),
            (Err(e), _) | (_, Err(e)) if e.kind() == ErrorKind::Removed => {
                say(format!("{} destroyed {}", stamp(), name.path().display()));
                return Ok(ExitCode::Success);
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        if last != Some(now) {
            let pid = sem.status().ok().and_then(|s| s.last_pid);
            say(format!(
                "{} value={} waiters={} last_pid={}",
                stamp(),
                now.0,
                now.1,
                opt(pid)
            ));
            last = Some(now);
        }
        // Sleep watching stdout: a reader that went away (`follow | head -1`) would
        // otherwise go unnoticed until the next change, which may never come.
        if clock::nap_watching(std::io::stdout().as_fd(), FOLLOW_INTERVAL) == Nap::HungUp {
            return Ok(ExitCode::Success);
        }
    }
}
