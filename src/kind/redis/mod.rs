//! Semaphores on a Redis server, shared by every machine that reaches it.
//!
//! Each operation is one call of one Lua script (`sem.lua`), so one atomic step on the
//! server, timed by the server's clock. Waiters queue in arrival order and are served
//! from the head only (no barging); a post serves the head at once and rings its bell, a
//! list the waiter blocks on (`BLPOP`), so wake-ups are pushed, not polled. A waiter
//! shows itself at least every lease/3 (its heartbeat); one that stops is dropped, and a
//! count granted to it and never claimed comes back.
//!
//! There is no kernel undo across machines: `sem_run` and `sem_hold` hold their counts
//! under a lease ([`Lease`]) that they refresh; the server takes the counts back when it
//! runs out. Every grant gets a fence number that only rises. Plain waits and posts keep
//! counter semantics: a count taken by `take` is the caller's until it posts it.
//!
//! docs/DESIGN.md ("Redis") says why each step is safe, and what failover can't promise.

pub mod name;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::{Duration, Instant};

use ::redis::{Client, Connection, IntoConnectionInfo, Script, Value};

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::kind::{
    lease_from_env, Capabilities, InitOptions, Kind, Lease, Semaphore, DEFAULT_LEASE,
};
use crate::name::Name;
use crate::parse::Timeout;
use crate::status::{Detail, Entry, Holder, Pruned, State, Status};

pub use name::{is_redis, RedisName, Server, URL_ENV};

/// The largest value: a signed 32-bit integer's, as for POSIX.
pub const MAX_VALUE: u32 = i32::MAX as u32;
/// How long connecting, and then each answer, may take before the server counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The end of a timed wait is slept in steps this long, asking each time: the server
/// ends a blocking pop only on its own timer tick (10 a second by default), which would
/// make a timeout up to 100 ms late.
const FINAL_STEP: Duration = Duration::from_millis(10);
/// How close to its deadline a wait stops blocking on the server.
const FINAL_WINDOW: Duration = Duration::from_millis(150);
/// How long one blocking pop lasts before the waiter looks around (a cancel, its
/// heartbeat, its deadline).
const SLICE: Duration = Duration::from_millis(100);

/// The script: every operation on a semaphore.
static SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("sem.lua")));

/// What Redis semaphores can do.
const CAPABILITIES: Capabilities = Capabilities {
    atomic_post_n: true,
    take_n: true,
    waiters: true,
    relax: true,
    undo: false,
    lease: true,
    last_op: false,
    max_value: MAX_VALUE,
};

/// This machine's name, as `status` shows holders: the UTS namespace's hostname.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(|c: char| c.is_whitespace(), "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// A new waiter's or holder's id: random, so that no two ever meet.
fn new_id() -> Result<String> {
    let mut b = [0u8; 12];
    crate::sys::random::random_bytes(&mut b)
        .map_err(|e| Error::sys(ErrorKind::Other, "cannot get random bytes", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// A connection to a name's server, made when first needed and again after it broke.
struct Link {
    name: RedisName,
    conn: RefCell<Option<Connection>>,
    /// How long connecting, or waiting for a reply, may take.
    patience: Cell<Duration>,
    /// Whether a call has found the semaphore: after that, finding it missing means it
    /// was destroyed.
    found: Cell<bool>,
}

impl Link {
    fn new(name: RedisName) -> Link {
        Link {
            name,
            conn: RefCell::new(None),
            patience: Cell::new(CONNECT_TIMEOUT),
            found: Cell::new(false),
        }
    }

    /// Give up on the server after `d` (at least 20 ms, at most [`CONNECT_TIMEOUT`]) from
    /// now on.
    fn set_patience(&self, d: Duration) {
        self.patience
            .set(d.clamp(Duration::from_millis(20), CONNECT_TIMEOUT));
    }

    /// A link that gives up on the server sooner: a lease holder's, whose every refresh
    /// must end well within its lease.
    fn impatient(name: RedisName, patience: Duration) -> Link {
        let link = Link::new(name);
        link.set_patience(patience);
        link
    }

    /// The error for what the client library said, on one line, without the password.
    fn failed(&self, e: &::redis::RedisError) -> Error {
        let server = self.name.server().shown();
        let text = e.to_string();
        if e.kind() == ::redis::ErrorKind::AuthenticationFailed {
            return self.name.error(
                ErrorKind::PermissionDenied,
                format!("{server} refused our user or password (authentication failed)"),
            );
        }
        if text.contains("NOPERM") || text.contains("NoPerm") {
            return self.name.error(
                ErrorKind::PermissionDenied,
                format!("permission denied: {server}'s ACL keeps this user from the semaphore's keys (sem:{{NAME}}:*)"),
            );
        }
        if text.contains("DB index is out of range") {
            return self.name.error(
                ErrorKind::InvalidInput,
                format!("{server} has no such database"),
            );
        }
        if e.is_timeout() {
            return self.name.error(
                ErrorKind::Unreachable,
                format!(
                    "no answer from {server} within {:.1} s",
                    self.patience.get().as_secs_f64()
                ),
            );
        }
        // One line, whatever the library or the peer (not a Redis server?) said.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let kind = match e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            true => ErrorKind::Unreachable,
            false => ErrorKind::Other,
        };
        self.name
            .error(kind, format!("cannot reach {server}: {text}"))
    }

    /// Run `f` on the connection, connecting first when there is none. A connection that
    /// failed is dropped, so that the next call connects again.
    fn with<T>(
        &self,
        read_timeout: Duration,
        f: impl FnOnce(&mut Connection) -> ::redis::RedisResult<T>,
    ) -> Result<T> {
        let mut slot = self.conn.borrow_mut();
        if slot.is_none() {
            // No CLIENT SETINFO after connecting: one round trip less per connection
            // (each helper call makes one), and one less to wait for on a silent server.
            let info = self
                .name
                .server()
                .secret()
                .into_connection_info()
                .map_err(|e| self.failed(&e))?;
            let settings = info.redis_settings().clone().set_skip_set_lib_name();
            let client =
                Client::open(info.set_redis_settings(settings)).map_err(|e| self.failed(&e))?;
            let c = client
                .get_connection_with_timeout(self.patience.get())
                .map_err(|e| self.failed(&e))?;
            *slot = Some(c);
        }
        let conn = slot.as_mut().expect("connected above");
        let _ = conn.set_read_timeout(Some(read_timeout));
        let _ = conn.set_write_timeout(Some(self.patience.get()));
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                // Whatever went wrong, the next call starts on a fresh connection: an
                // answer may still be on its way on this one.
                *slot = None;
                Err(self.failed(&e))
            }
        }
    }

    /// One call of the script: `op` with `args`; its reply as strings.
    fn call(&self, op: &str, lease: Duration, args: &[String]) -> Result<Vec<String>> {
        let prefix = self.name.prefix();
        let reply: Vec<Value> = self.with(self.patience.get(), |c| {
            let mut inv = SCRIPT.key(&prefix);
            inv.arg(op).arg(ms(lease));
            for a in args {
                inv.arg(a);
            }
            inv.invoke(c)
        })?;
        Ok(reply
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                Value::SimpleString(s) => s,
                Value::Int(i) => i.to_string(),
                _ => String::new(),
            })
            .collect::<Vec<String>>())
        .inspect(|r: &Vec<String>| {
            if r.first().map(String::as_str) != Some("missing") {
                self.found.set(true);
            }
        })
    }

    /// Sleep on the bell of waiter `id` for at most `d`; whether it rang.
    fn ring(&self, id: &str, d: Duration) -> Result<bool> {
        let key = format!("{}bell:{id}", self.name.prefix());
        let secs = d.as_secs_f64().max(0.01);
        let got: Option<(String, String)> = self.with(d + self.patience.get(), |c| {
            ::redis::cmd("BLPOP").arg(&key).arg(secs).query(c)
        })?;
        Ok(got.is_some())
    }

    /// The error for a semaphore the server doesn't have: none, or (once a call found it)
    /// destroyed since.
    fn missing(&self, doing: &str) -> Error {
        match (doing, self.found.get()) {
            ("wait", _) => self.name.error(
                ErrorKind::Removed,
                "the semaphore was destroyed while waiting",
            ),
            (_, true) => self
                .name
                .error(ErrorKind::Removed, "the semaphore was destroyed"),
            _ => self.name.error(ErrorKind::NotFound, "no such semaphore"),
        }
    }
}

/// The Redis kind.
pub struct RedisKind;

fn redis_of(name: &Name) -> &RedisName {
    match name {
        Name::Redis(r) => r,
        _ => unreachable!("the Redis kind is only given Redis names"),
    }
}

impl Kind for RedisKind {
    fn label(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn open(&self, name: &Name) -> Result<Box<dyn Semaphore>> {
        let sem = RedisSem {
            link: Link::new(redis_of(name).clone()),
            lease: lease_from_env()?,
        };
        // A peek: the name must exist (and the server answer) before anyone waits on it.
        sem.value_or("open")?;
        Ok(Box::new(sem))
    }

    fn init(&self, name: &Name, value: u32, _opts: &InitOptions) -> Result<()> {
        let r = redis_of(name);
        if value > MAX_VALUE {
            return Err(r.error(
                ErrorKind::OutOfRange,
                format!("value {value} is above {MAX_VALUE}"),
            ));
        }
        let link = Link::new(r.clone());
        let by = format!(
            "{}:{}@{}",
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
            host()
        );
        let reply = link.call("init", lease_from_env()?, &[value.to_string(), by])?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("exists") => Err(r.error(ErrorKind::AlreadyExists, "already exists")),
            _ => Err(r.error(ErrorKind::Other, "unexpected reply to init")),
        }
    }

    fn destroy(&self, name: &Name) -> Result<()> {
        let r = redis_of(name);
        let link = Link::new(r.clone());
        match link
            .call("destroy", DEFAULT_LEASE, &[])?
            .first()
            .map(String::as_str)
        {
            Some("ok") => Ok(()),
            _ => Err(link.missing("destroy")),
        }
    }

    fn inspect(&self, name: &Name) -> Result<Entry> {
        let sem = RedisSem {
            link: Link::new(redis_of(name).clone()),
            lease: DEFAULT_LEASE,
        };
        let status = sem.status_or("inspect")?;
        Ok(Entry {
            name: name.clone(),
            owner: status.owner,
            detail: status.detail.clone(),
            state: State::Live(status),
        })
    }

    fn list(&self, place: &Path) -> Result<Vec<Entry>> {
        let arg = place.to_string_lossy();
        let server = match arg.as_ref() {
            "redis:" => {
                let url = std::env::var(URL_ENV).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("redis: lists the server in {URL_ENV}, which is not set"),
                    )
                })?;
                Server::parse(&url, URL_ENV)?
            }
            url => Server::parse(url, "the Redis server")?,
        };
        let probe = RedisName::parse(format!("{}/probe", server.secret()).as_bytes())?;
        let link = Link::new(probe);
        let mut names: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = link.with(CONNECT_TIMEOUT, |c| {
                ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("sem:{*}:meta")
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)
            })?;
            names.extend(
                keys.iter().filter_map(|k| {
                    Some(k.strip_prefix("sem:{")?.strip_suffix("}:meta")?.to_owned())
                }),
            );
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            let full = format!("{}/{n}", server.secret());
            let Ok(name) = RedisName::parse(full.as_bytes()) else {
                continue;
            };
            match self.inspect(&Name::Redis(name)) {
                Ok(e) => out.push(e),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn prune(&self, _place: &Path) -> Result<Vec<Pruned>> {
        // Nothing on a server goes stale: leases and waiters run out by themselves.
        Ok(Vec::new())
    }
}

/// An open Redis semaphore.
pub struct RedisSem {
    link: Link,
    /// The lease (and a waiter's heartbeat period), from `SEM_LEASE`.
    lease: Duration,
}

/// What a wait got: its fence number.
type Fence = u64;

impl RedisSem {
    fn value_or(&self, doing: &str) -> Result<u32> {
        let r = self.link.call("peek", self.lease, &[])?;
        match (r.first().map(String::as_str), r.get(1)) {
            (Some("ok"), Some(v)) => v.parse().map_err(|_| {
                self.link
                    .name
                    .error(ErrorKind::Other, "bad value on the server")
            }),
            _ => Err(self.link.missing(doing)),
        }
    }

    fn status_or(&self, doing: &str) -> Result<Status> {
        let r = self.link.call("status", self.lease, &[])?;
        if r.first().map(String::as_str) != Some("ok") || r.len() < 9 {
            return Err(self.link.missing(doing));
        }
        let num = |i: usize| r[i].parse::<i64>().unwrap_or(0);
        // "UID:GID@HOST" of its creator.
        let creator = r[7].split('@').next().unwrap_or("");
        let mut ids = creator.split(':').map(|x| x.parse::<u32>().unwrap_or(0));
        let (by_uid, by_gid) = (ids.next().unwrap_or(0), ids.next().unwrap_or(0));
        let quiet_left_ms = r[8].parse::<u64>().ok().filter(|&q| q > 0);
        let holders = r[9..]
            .iter()
            .filter_map(|h| {
                let f: Vec<&str> = h.split(' ').collect();
                Some(Holder {
                    count: f.first()?.parse().ok()?,
                    fence: f.get(1)?.parse().ok()?,
                    host: (*f.get(2)?).to_owned(),
                    pid: f.get(3)?.parse().ok()?,
                    lease_left_ms: f.get(4)?.parse().ok()?,
                })
            })
            .collect();
        Ok(Status {
            value: u32::try_from(num(1)).unwrap_or(0),
            capacity: u32::try_from(num(2)).ok(),
            waiters: u32::try_from(num(5)).ok(),
            last_pid: None,
            last_op: None,
            changed: Some(num(4) / 1000),
            owner: by_uid,
            group: by_gid,
            mode: 0o666,
            detail: Detail::Redis {
                server: self.link.name.server().shown().to_owned(),
                fence: r[3].parse().unwrap_or(0),
                holders,
                quiet_left_ms,
            },
        })
    }

    /// Take `n` as `op` (`take` or `try`), held under `lease` (zero: plainly), waiting
    /// as `timeout` says.
    fn acquire(
        &self,
        n: u32,
        timeout: Timeout,
        cancel: &Cancel,
        lease: Duration,
    ) -> Result<(String, Fence)> {
        let id = new_id()?;
        let deadline = match timeout {
            Timeout::After(d) => Some(Instant::now() + d),
            _ => None,
        };
        let op = match timeout {
            Timeout::Never => "try",
            _ => "take",
        };
        let args = [
            id.clone(),
            n.to_string(),
            ms(lease).to_string(),
            ms(self.lease).to_string(),
            host(),
            std::process::id().to_string(),
        ];
        let name = &self.link.name;
        let granted = |r: &[String]| r.get(1).and_then(|f| f.parse::<Fence>().ok());
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            self.link.set_patience(left.max(Duration::from_millis(200)));
        }
        let r = self.link.call(op, self.lease, &args)?;
        match r.first().map(String::as_str) {
            Some("granted") => return Ok((id, granted(&r).unwrap_or(0))),
            Some("busy") => return Err(name.error(ErrorKind::WouldBlock, "would block")),
            Some("capacity") => {
                return Err(name.error(
                    ErrorKind::OutOfRange,
                    format!(
                    "asks for {n} counts, but the semaphore holds at most {} (its initial value)",
                    r.get(1).map_or("?", String::as_str)
                ),
                ))
            }
            Some("queued") => {}
            _ => return Err(self.link.missing("open")),
        }
        // Queued: sleep on the bell; show ourselves every lease/3; claim when it rings.
        let beat = self.lease / 3;
        let mut last_beat = Instant::now();
        let mut rang = false;
        let left = |d: Instant| d.saturating_duration_since(Instant::now());
        loop {
            if cancel.reason().is_some() {
                self.link.set_patience(CONNECT_TIMEOUT);
                let _ = self
                    .link
                    .call("cancel", self.lease, &[id.clone(), "0".into()]);
                return Err(name.error(ErrorKind::Interrupted, "interrupted: took nothing"));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Served meanwhile: then it is ours after all. A server we can't reach
                // now reaps our place, and any grant we didn't claim, by itself.
                self.link.set_patience(Duration::from_millis(500));
                let r = match self
                    .link
                    .call("cancel", self.lease, &[id.clone(), "1".into()])
                {
                    Ok(r) => r,
                    Err(e) if e.kind() == ErrorKind::Unreachable => Vec::new(),
                    Err(e) => return Err(e),
                };
                return match r.first().map(String::as_str) {
                    Some("granted") => Ok((id, granted(&r).unwrap_or(0))),
                    Some("missing") => Err(self.link.missing("wait")),
                    _ => Err(name.error(ErrorKind::TimedOut, "timed out")),
                };
            }
            // No call may outlast the deadline.
            self.link
                .set_patience(deadline.map_or(CONNECT_TIMEOUT, |d| left(d).min(CONNECT_TIMEOUT)));
            if rang || last_beat.elapsed() >= beat {
                match self
                    .link
                    .call("claim", self.lease, std::slice::from_ref(&id))
                {
                    Ok(r) => match r.first().map(String::as_str) {
                        Some("granted") => return Ok((id, granted(&r).unwrap_or(0))),
                        Some("queued") => last_beat = Instant::now(),
                        // Taken for dead (we were stopped, or cut off, for a lease): queue
                        // again, at the back.
                        Some("gone") => {
                            let r = self.link.call("take", self.lease, &args)?;
                            match r.first().map(String::as_str) {
                                Some("granted") => return Ok((id, granted(&r).unwrap_or(0))),
                                Some("queued") => last_beat = Instant::now(),
                                _ => return Err(self.link.missing("wait")),
                            }
                        }
                        _ => return Err(self.link.missing("wait")),
                    },
                    // Cut off: try again while our place in the queue lasts.
                    Err(e) if e.kind() == ErrorKind::Unreachable => {
                        let pause = deadline.map_or(SLICE, |d| left(d).min(SLICE));
                        std::thread::sleep(pause.min(beat));
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut slice = SLICE.min(beat.saturating_sub(last_beat.elapsed()));
            if let Some(d) = deadline {
                // The server ends a blocking pop only on its timer tick: near the end,
                // sleep in small steps here and ask instead.
                if left(d) <= FINAL_WINDOW {
                    std::thread::sleep(left(d).min(FINAL_STEP));
                    rang = true;
                    continue;
                }
                slice = slice.min(left(d) - FINAL_WINDOW / 2);
            }
            rang = match self.link.ring(&id, slice.max(Duration::from_millis(10))) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::Unreachable => {
                    let pause = deadline.map_or(SLICE, |d| left(d).min(SLICE));
                    std::thread::sleep(pause.min(beat));
                    true
                }
                Err(e) => return Err(e),
            };
        }
    }
}

impl Semaphore for RedisSem {
    fn name(&self) -> Name {
        Name::Redis(self.link.name.clone())
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn post(&self, n: u32) -> Result<()> {
        let r = self
            .link
            .call("post", self.lease, &[n.to_string(), MAX_VALUE.to_string()])?;
        match r.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("range") => Err(self.link.name.error(
                ErrorKind::OutOfRange,
                format!(
                    "value {} + {n} would exceed {MAX_VALUE}",
                    r.get(1).map_or("?", String::as_str)
                ),
            )),
            _ => Err(self.link.missing("post")),
        }
    }

    fn try_take(&self, n: u32) -> Result<()> {
        self.acquire(n, Timeout::Never, &Cancel::new(), Duration::ZERO)
            .map(|_| ())
    }

    fn take(&self, n: u32, timeout: Timeout, cancel: &Cancel) -> Result<()> {
        self.acquire(n, timeout, cancel, Duration::ZERO).map(|_| ())
    }

    fn lease(
        &self,
        n: u32,
        timeout: Timeout,
        cancel: &Cancel,
        lease: Duration,
    ) -> Result<Box<dyn Lease>> {
        let (id, fence) = self.acquire(n, timeout, cancel, lease)?;
        Ok(Box::new(RedisLease {
            link: Link::impatient(self.link.name.clone(), lease / 6),
            id,
            fence,
            lease,
        }))
    }

    fn value(&self) -> Result<u32> {
        self.value_or("peek")
    }

    fn relax(&self) -> Result<u32> {
        let r = self.link.call("relax", self.lease, &[])?;
        match (r.first().map(String::as_str), r.get(1)) {
            (Some("ok"), Some(n)) => Ok(n.parse().unwrap_or(0)),
            _ => Err(self.link.missing("relax")),
        }
    }

    fn status(&self) -> Result<Status> {
        self.status_or("status")
    }

    fn owner(&self) -> u32 {
        self.status_or("status").map_or(0, |s| s.owner)
    }
}

/// Counts held under a lease on a Redis server.
struct RedisLease {
    link: Link,
    id: String,
    fence: Fence,
    lease: Duration,
}

impl RedisLease {
    fn lost(&self, why: &str) -> Error {
        self.link.name.error(ErrorKind::LeaseLost, why)
    }
}

impl Lease for RedisLease {
    fn fence(&self) -> u64 {
        self.fence
    }

    fn duration(&self) -> Duration {
        self.lease
    }

    fn refresh(&mut self, patience: Duration) -> Result<()> {
        self.link.set_patience(patience);
        let r = self
            .link
            .call("refresh", self.lease, std::slice::from_ref(&self.id))?;
        match r.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("missing") => Err(self.lost("the semaphore is gone from the server")),
            _ => Err(self
                .lost("the server no longer knows it (it ran out, or the server lost its data)")),
        }
    }

    fn release(&mut self) -> Result<()> {
        let r = self
            .link
            .call("release", self.lease, std::slice::from_ref(&self.id))?;
        match r.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("missing") => Err(self.lost("the semaphore is gone from the server")),
            _ => Err(self.lost("it had run out before the release")),
        }
    }
}
