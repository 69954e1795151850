//! What a semaphore looks like from outside: the same fields for every kind, plus what
//! only one kind knows.

use crate::name::Name;

/// A snapshot of a live semaphore. It may change while it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The value.
    pub value: u32,
    /// The value it was created with, when the kind records it.
    pub capacity: Option<u32>,
    /// Processes blocked taking a count, when the kind can count them.
    pub waiters: Option<u32>,
    /// The pid of the last operation, when the kind knows it and there was one.
    pub last_pid: Option<i32>,
    /// The Unix time of the last operation, when the kind knows it and there was one.
    pub last_op: Option<i64>,
    /// The Unix time it was created or last changed by its owner, when known.
    pub changed: Option<i64>,
    /// The owner's uid.
    pub owner: u32,
    /// Its group's gid.
    pub group: u32,
    /// Its permission bits.
    pub mode: u32,
    /// What only this kind knows.
    pub detail: Detail,
}

/// What only one kind of semaphore knows about a semaphore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// A System V set: recorded key and id, its IPC namespace, and (when live and
    /// readable) how many wait for zero.
    SysV {
        /// The set's key.
        key: i32,
        /// The set's id.
        id: i32,
        /// Processes waiting for the value to be zero (`GETZCNT`), when read.
        zero_waiters: Option<u32>,
        /// The IPC namespace the record was made in (the inode of /proc/PID/ns/ipc).
        ipcns: u64,
    },
    /// A POSIX named semaphore: its file in /dev/shm.
    Posix {
        /// The file's device.
        device: u64,
        /// The file's inode.
        inode: u64,
        /// When the file was created (birth time), or last changed when that is unknown.
        created: Option<i64>,
    },
    /// A semaphore on a Redis server.
    Redis {
        /// The server, without user or password: `redis://HOST:PORT[/DB]`.
        server: String,
        /// The last fence number granted (they only rise).
        fence: u64,
        /// The holders under a lease (sem_run, sem_hold).
        holders: Vec<Holder>,
        /// While the server is in its quiet start (it started less than a lease ago),
        /// how long until it grants again, in ms.
        quiet_left_ms: Option<u64>,
    },
}

/// A holder of counts under a lease (Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The host it runs on.
    pub host: String,
    /// Its pid there.
    pub pid: u32,
    /// The fence number of its grant.
    pub fence: u64,
    /// How many counts it holds.
    pub count: u32,
    /// How long its lease has left, in ms, by the server's clock.
    pub lease_left_ms: i64,
}

/// What a name stands for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// A live semaphore.
    Live(Status),
    /// A record whose semaphore is gone or can't be trusted; why.
    Stale(String),
    /// A semaphore whose mode keeps the caller out; why.
    NoAccess(String),
    /// A System V record of another live IPC namespace; why.
    OtherNamespace(String),
}

impl State {
    /// The state's name in reports: `live`, `stale`, `no-access`, `other-namespace`.
    pub fn label(&self) -> &'static str {
        match self {
            State::Live(_) => "live",
            State::Stale(_) => "stale",
            State::NoAccess(_) => "no-access",
            State::OtherNamespace(_) => "other-namespace",
        }
    }
}

/// A name and its state, live or not.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name.
    pub name: Name,
    /// The owner of the record or file.
    pub owner: u32,
    /// Live, stale, or out of reach.
    pub state: State,
    /// What the kind recorded, live or not (for a live one, also in its [`Status`]).
    pub detail: Detail,
}

/// The outcome of pruning one name.
#[derive(Debug)]
pub enum Pruning {
    /// It was removed; why it was stale.
    Removed(String),
    /// It was kept although it may be stale; why.
    Kept(String),
}

/// One name pruned or kept, or the error on it.
#[derive(Debug)]
pub struct Pruned {
    /// The name.
    pub name: Name,
    /// What happened.
    pub outcome: crate::Result<Pruning>,
}
