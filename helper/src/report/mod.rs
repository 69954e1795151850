//! What people and programs read: status, list, prune and follow. The JSON is built in
//! `json.rs`; the text for people here.

mod json;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::Context;
use sem::{Detail, Entry, ErrorKind, Name, Place, Pruning, State};
use unicode_width::UnicodeWidthStr;

use crate::clock::{self, Nap};
use crate::exit_codes::ExitCode;
use crate::signals;

/// How often `follow` samples the semaphore: there is no change notification.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(20);

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
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
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(s.width())));
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
fn capacity_text(cap: Option<u32>) -> String {
    match cap {
        Some(0) => "0 (created empty: only posts fill it)".into(),
        Some(c) => format!("{c} (its initial value)"),
        None => "unknown (created before sem recorded it)".into(),
    }
}

/// Where the semaphore lives, for people: the kernel set, or the file.
fn place(d: &Detail) -> String {
    match d {
        Detail::SysV { key, id, .. } => format!("kernel:   key 0x{:08x}, id {id}", *key as u32),
        Detail::Posix { inode, .. } => format!("file:     inode {inode} in /dev/shm"),
        Detail::Redis {
            server,
            fence,
            holders,
            quiet_left_ms,
        } => {
            let mut s = format!("server:   {server}, last fence {fence}");
            if let Some(q) = quiet_left_ms {
                let _ = write!(
                    s,
                    "\n  quiet:    the server started less than a lease ago; it grants again in {:.1} s",
                    *q as f64 / 1000.0
                );
            }
            match holders.len() {
                0 => s.push_str("\n  holders:  none under a lease"),
                _ => {
                    s.push_str("\n  holders:");
                    for h in holders {
                        let _ = write!(
                            s,
                            "\n    {} pid {}: {} count{}, fence {}, lease {:.1} s left",
                            h.host,
                            h.pid,
                            h.count,
                            if h.count == 1 { "" } else { "s" },
                            h.fence,
                            h.lease_left_ms as f64 / 1000.0
                        );
                    }
                }
            }
            s
        }
    }
}

/// The summary for people.
fn text(e: &Entry) -> String {
    let name = e.name.label().display();
    let recorded = place(&e.detail);
    match &e.state {
        State::Live(s) => {
            let last = match (s.last_op, s.last_pid) {
                (Some(t), Some(pid)) => format!("pid {pid}, {}", when(t)),
                (Some(t), None) => when(t),
                _ if e.name.kind().capabilities().last_op => "none yet".into(),
                _ => "unknown (not recorded by this kind)".into(),
            };
            let waiters = match s.waiters {
                Some(w) => format!("{w} blocked"),
                None => "unknown (not counted by this kind)".into(),
            };
            let capacity = match e.name.kind().capabilities().take_n {
                true => format!("  capacity: {}\n", capacity_text(s.capacity)),
                false => String::new(),
            };
            format!(
                "{name}: live\n  value:    {}\n{capacity}  waiters:  {waiters}\n  last op:  {last}\n  owner:    {}, group {}, mode {:04o}\n  {}\n",
                s.value,
                user(s.owner),
                group(s.group),
                s.mode,
                place(&s.detail)
            )
        }
        State::Stale(why) => format!(
            "{name}: stale\n  why:      {why}\n  owner:    {} (of the record)\n  {recorded} (as recorded)\n  sem_init reclaims the name; `semctl-helper prune` removes it.\n",
            user(e.owner)
        ),
        State::NoAccess(why) => format!(
            "{name}: no access\n  why:      {why}\n  owner:    {} (of the record)\n  {recorded} (as recorded)\n",
            user(e.owner)
        ),
        State::OtherNamespace(why) => {
            let ns = match e.detail {
                Detail::SysV { ipcns, .. } => ipcns,
                Detail::Posix { .. } | Detail::Redis { .. } => 0,
            };
            format!(
                "{name}: in another IPC namespace\n  why:      {why}\n  owner:    {} (of the record)\n  {recorded} (as recorded, in ipc:[{ns}])\n  Use it from that namespace; its owner can replace it here with sem_init --force.\n",
                user(e.owner),
            )
        }
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
            .at(name.label())
            .into());
    }
    if as_json {
        print(&json::line(&json::Report::of(&entry)))?;
    } else {
        print(&text(&entry))?;
    }
    Ok(match entry.state {
        State::Live(_) => ExitCode::Success,
        _ => ExitCode::NoSuchSemaphore,
    })
}

/// Where `list` and `prune` look: DIR (or `posix:`), else the home directory.
fn directory(dir: Option<OsString>) -> anyhow::Result<Place> {
    Ok(match dir {
        Some(d) => Place::parse(&d)?,
        None => Place::home()?,
    })
}

/// `list [--json] [DIR]`.
pub fn list(dir: Option<OsString>, as_json: bool) -> anyhow::Result<ExitCode> {
    let dir = directory(dir)?;
    let entries = sem::list(&dir)?;
    let mut out = String::new();
    if as_json {
        let items: Vec<json::Report> = entries.iter().map(json::Report::of).collect();
        out = json::line(&items);
    } else {
        let rows: Vec<[String; 4]> = entries
            .iter()
            .map(|e| {
                let (v, w) = match &e.state {
                    State::Live(s) => (s.value.to_string(), opt(s.waiters).replace("null", "?")),
                    _ => ("-".into(), "-".into()),
                };
                let name = printable(&e.name.label().to_string_lossy());
                [name, v, w, e.state.label().into()]
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
            Ok(Pruning::Removed(why)) => print(&format!("removed {}: {why}\n", p.name))?,
            Ok(Pruning::Kept(why)) => print(&format!("kept {}: {why}\n", p.name))?,
            Err(e) => {
                crate::say("prune", &e.to_string());
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
    let sem = sem::open(name)?;
    let mut last = None;
    // A reader that went away (`follow | head`) ends us quietly.
    let say = |line: String| {
        if print(&(line + "\n")).is_err() {
            std::process::exit(0);
        }
    };
    loop {
        if signals::caught().is_some() {
            say(format!("{} stopped following {name}", stamp()));
            return Ok(ExitCode::Success);
        }
        let status = match sem.status() {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::Removed => {
                say(format!("{} destroyed {name}", stamp()));
                return Ok(ExitCode::Success);
            }
            Err(e) => return Err(e.into()),
        };
        let now = (status.value, status.waiters);
        if last != Some(now) {
            say(format!(
                "{} value={} waiters={} last_pid={}",
                stamp(),
                now.0,
                opt(now.1),
                opt(status.last_pid)
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
