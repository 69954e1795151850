//! The JSON that `status --json` and `list --json` print, as typed structs for serde_json:
//! the same fields for every kind of semaphore, plus an object for what only one kind
//! knows (`"sysv"` or `"posix"`). For System V the fields of that object are also given
//! at the top level, where they were before there were several kinds.
//!
//! A name is a path, and a path may hold bytes that aren't UTF-8: such a name is given as
//! `"name": null` with its bytes in `"name_bytes"`, never altered.

use std::os::unix::ffi::OsStrExt;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use sem::{Detail, Entry, State};

/// One semaphore, live or not.
pub struct Report {
    name: Option<String>,
    name_bytes: Option<Vec<u8>>,
    kind: &'static str,
    state: &'static str,
    value: Option<u32>,
    capacity: Option<u32>,
    waiters: Option<u32>,
    last_pid: Option<i32>,
    last_op: Option<i64>,
    changed: Option<i64>,
    owner: u32,
    group: Option<u32>,
    mode: Option<String>,
    stale: bool,
    access: bool,
    reason: Option<String>,
    sysv: Option<SysVFields>,
    posix: Option<PosixFields>,
    redis: Option<RedisFields>,
}

/// What only a Redis semaphore has: its server, the last fence, the lease holders.
struct RedisFields {
    server: String,
    fence: u64,
    holders: Vec<sem::Holder>,
    quiet_left_ms: Option<u64>,
}

/// One lease holder, as `status --json` shows it.
struct HolderFields<'a>(&'a sem::Holder);

/// What only a System V semaphore has.
struct SysVFields {
    /// The set's key, in hex as `ipcs` shows it.
    key: String,
    id: i32,
    zero_waiters: Option<u32>,
    ipcns: u64,
}

/// What only a POSIX semaphore has: its file in /dev/shm.
struct PosixFields {
    device: u64,
    inode: u64,
    created: Option<i64>,
}

impl Report {
    /// The report of `e`.
    pub fn of(e: &Entry) -> Report {
        let label = e.name.label().as_os_str();
        let (name, name_bytes) = match label.to_str() {
            Some(s) => (Some(s.to_owned()), None),
            None => (None, Some(label.as_bytes().to_vec())),
        };
        let live = match &e.state {
            State::Live(s) => Some(s),
            _ => None,
        };
        // A live semaphore's detail is the kernel's now; otherwise what was recorded.
        let detail = live.map_or(&e.detail, |s| &s.detail);
        let redis = match detail {
            Detail::Redis {
                server,
                fence,
                holders,
                quiet_left_ms,
            } => Some(RedisFields {
                server: server.clone(),
                fence: *fence,
                holders: holders.clone(),
                quiet_left_ms: *quiet_left_ms,
            }),
            _ => None,
        };
        let (sysv, posix) = match detail {
            Detail::SysV {
                key,
                id,
                zero_waiters,
                ipcns,
            } => (
                Some(SysVFields {
                    key: format!("0x{:08x}", *key as u32),
                    id: *id,
                    zero_waiters: *zero_waiters,
                    ipcns: *ipcns,
                }),
                None,
            ),
            Detail::Posix {
                device,
                inode,
                created,
            } => (
                None,
                Some(PosixFields {
                    device: *device,
                    inode: *inode,
                    created: *created,
                }),
            ),
            Detail::Redis { .. } => (None, None),
        };
        let reason = match &e.state {
            State::Live(_) => None,
            State::Stale(why) | State::NoAccess(why) | State::OtherNamespace(why) => {
                Some(why.clone())
            }
        };
        Report {
            name,
            name_bytes,
            kind: e.name.kind().label(),
            state: e.state.label(),
            value: live.map(|s| s.value),
            capacity: live.and_then(|s| s.capacity),
            waiters: live.and_then(|s| s.waiters),
            last_pid: live.and_then(|s| s.last_pid),
            last_op: live.and_then(|s| s.last_op),
            changed: live.and_then(|s| s.changed),
            owner: live.map_or(e.owner, |s| s.owner),
            group: live.map(|s| s.group),
            mode: live.map(|s| format!("{:04o}", s.mode)),
            stale: matches!(e.state, State::Stale(_)),
            access: !matches!(e.state, State::NoAccess(_) | State::OtherNamespace(_)),
            reason,
            sysv,
            posix,
            redis,
        }
    }
}

impl Serialize for HolderFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_struct("Holder", 5)?;
        o.serialize_field("host", &self.0.host)?;
        o.serialize_field("pid", &self.0.pid)?;
        o.serialize_field("fence", &self.0.fence)?;
        o.serialize_field("count", &self.0.count)?;
        o.serialize_field("lease_left_ms", &self.0.lease_left_ms)?;
        o.end()
    }
}

impl Serialize for RedisFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let holders: Vec<HolderFields<'_>> = self.holders.iter().map(HolderFields).collect();
        let mut o = s.serialize_struct("RedisFields", 4)?;
        o.serialize_field("server", &self.server)?;
        o.serialize_field("fence", &self.fence)?;
        o.serialize_field("holders", &holders)?;
        o.serialize_field("quiet_left_ms", &self.quiet_left_ms)?;
        o.end()
    }
}

impl Serialize for SysVFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_struct("SysVFields", 4)?;
        o.serialize_field("key", &self.key)?;
        o.serialize_field("id", &self.id)?;
        o.serialize_field("zero_waiters", &self.zero_waiters)?;
        o.serialize_field("ipcns", &self.ipcns)?;
        o.end()
    }
}

impl Serialize for PosixFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_struct("PosixFields", 3)?;
        o.serialize_field("device", &self.device)?;
        o.serialize_field("inode", &self.inode)?;
        o.serialize_field("created", &self.created)?;
        o.end()
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_struct("Report", 24)?;
        o.serialize_field("name", &self.name)?;
        if let Some(bytes) = &self.name_bytes {
            o.serialize_field("name_bytes", bytes)?;
        }
        o.serialize_field("kind", self.kind)?;
        o.serialize_field("state", self.state)?;
        o.serialize_field("value", &self.value)?;
        o.serialize_field("capacity", &self.capacity)?;
        o.serialize_field("waiters", &self.waiters)?;
        o.serialize_field("last_pid", &self.last_pid)?;
        o.serialize_field("last_op", &self.last_op)?;
        o.serialize_field("changed", &self.changed)?;
        o.serialize_field("owner", &self.owner)?;
        o.serialize_field("group", &self.group)?;
        o.serialize_field("mode", &self.mode)?;
        o.serialize_field("stale", &self.stale)?;
        o.serialize_field("access", &self.access)?;
        o.serialize_field("reason", &self.reason)?;
        if let Some(v) = &self.sysv {
            // The System V fields at the top level too, where they were before there
            // were several kinds.
            o.serialize_field("key", &v.key)?;
            o.serialize_field("id", &v.id)?;
            o.serialize_field("zero_waiters", &v.zero_waiters)?;
            o.serialize_field("ipcns", &v.ipcns)?;
            o.serialize_field("sysv", v)?;
        }
        if let Some(p) = &self.posix {
            o.serialize_field("posix", p)?;
        }
        if let Some(r) = &self.redis {
            // The holders at the top level too: what a script most often wants.
            let holders: Vec<HolderFields<'_>> = r.holders.iter().map(HolderFields).collect();
            o.serialize_field("holders", &holders)?;
            o.serialize_field("redis", r)?;
        }
        o.end()
    }
}

/// One line of JSON: an object, or an array of them.
pub fn line<T: Serialize + ?Sized>(v: &T) -> String {
    // Serialising these structs can't fail: no maps with non-string keys, no floats.
    serde_json::to_string(v).expect("a report serialises") + "\n"
}
