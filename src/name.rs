//! Names, and the kind of semaphore each one selects.
//!
//! | a name like | is | module |
//! |---|---|---|
//! | `/tmp/slots`, `slots` (under `$HOME`) | a System V semaphore, its record at that path | `kind/sysv` |
//! | `posix:/NAME`, `posix:NAME` | a POSIX named semaphore, glibc's `/dev/shm/sem.NAME` | `kind/posix` |
//! | `redis://[USER:PASSWORD@]HOST[:PORT][/DB]/NAME`, `redis:NAME` | a semaphore on a Redis server (`redis:` uses `SEM_REDIS_URL`) | `kind/redis` |
//!
//! This is the one place that maps names to kinds: adding a kind adds a variant here.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::kind::posix::{self, PosixName};
#[cfg(feature = "redis")]
use crate::kind::redis::{self, RedisName};
use crate::kind::sysv::{path::PathName, SysV};
use crate::kind::Kind;

/// A semaphore's name, parsed: which kind it is, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// A path: System V.
    Path(PathName),
    /// `posix:/NAME`: a POSIX named semaphore.
    Posix(PosixName),
    /// `redis://HOST/NAME` or `redis:NAME`: a semaphore on a Redis server.
    #[cfg(feature = "redis")]
    Redis(RedisName),
}

/// The System V kind.
static SYSV: SysV = SysV;
/// The POSIX kind.
static POSIX: posix::PosixKind = posix::PosixKind;
/// The Redis kind.
#[cfg(feature = "redis")]
static REDIS: redis::RedisKind = redis::RedisKind;

/// The error for a Redis name in a build without the Redis kind.
#[cfg(not(feature = "redis"))]
fn no_redis() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "semaphores on Redis (redis://HOST/NAME, redis:NAME) are not in this build",
    )
}

impl Name {
    /// Parse a name given by a user.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a malformed name (see each kind);
    /// [`ErrorKind::Unsupported`] for the `redis:` names reserved for a later kind;
    /// [`ErrorKind::NotFound`] when a relative path needs a home directory and there is
    /// none.
    pub fn parse(arg: &OsStr) -> Result<Name> {
        let bytes = arg.as_bytes();
        if posix::is_posix(arg) {
            return posix::parse_name(arg).map(Name::Posix);
        }
        if bytes.starts_with(b"redis:") || bytes.starts_with(b"rediss:") {
            #[cfg(feature = "redis")]
            return RedisName::parse(bytes).map(Name::Redis);
            #[cfg(not(feature = "redis"))]
            return Err(no_redis());
        }
        PathName::resolve(arg).map(Name::Path)
    }

    /// The kind of semaphore this name selects.
    pub fn kind(&self) -> &'static dyn Kind {
        match self {
            Name::Path(_) => &SYSV,
            Name::Posix(_) => &POSIX,
            #[cfg(feature = "redis")]
            Name::Redis(_) => &REDIS,
        }
    }

    /// How the name is shown in errors and reports: the resolved path, or `posix:/NAME`.
    /// A path may hold any bytes but NUL, so this is a `Path`, not a `str`.
    pub fn label(&self) -> &Path {
        match self {
            Name::Path(p) => p.path(),
            Name::Posix(p) => p.shown(),
            #[cfg(feature = "redis")]
            Name::Redis(r) => r.shown(),
        }
    }
}

impl fmt::Display for Name {
    /// The label, with bytes that aren't UTF-8 replaced: for people, not for programs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label().display())
    }
}

/// Where to list or prune: a directory of System V records, or `posix:` (the POSIX
/// semaphores in /dev/shm).
pub struct Place {
    kind: &'static dyn Kind,
    path: std::path::PathBuf,
}

impl Place {
    /// `posix:` (or `posix:/`) for the POSIX semaphores; anything else is a directory.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty argument or `posix:NAME`;
    /// [`ErrorKind::Unsupported`] for `redis:` (not supported yet).
    pub fn parse(arg: &OsStr) -> Result<Place> {
        match arg.as_bytes() {
            b"" => Err(Error::new(ErrorKind::InvalidInput, "empty directory name")),
            b"posix:" | b"posix:/" => Ok(Place {
                kind: &POSIX,
                path: posix::SHM_DIR.into(),
            }),
            b if posix::is_posix(arg) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{}: `posix:` lists every POSIX semaphore; it takes no NAME",
                    String::from_utf8_lossy(b)
                ),
            )),
            #[cfg(feature = "redis")]
            b if redis::is_redis(b) => Ok(Place {
                kind: &REDIS,
                path: arg.into(),
            }),
            #[cfg(not(feature = "redis"))]
            b if b.starts_with(b"redis:") || b.starts_with(b"rediss:") => Err(no_redis()),
            _ => Ok(Place {
                kind: &SYSV,
                path: arg.into(),
            }),
        }
    }

    /// The home directory, for System V names.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is no home directory.
    pub fn home() -> Result<Place> {
        let any = PathName::resolve(OsStr::new("x"))?;
        Ok(Place {
            kind: &SYSV,
            path: any.dir().to_path_buf(),
        })
    }

    /// The kind of semaphore found there.
    pub fn kind(&self) -> &'static dyn Kind {
        self.kind
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_their_kind() {
        let sysv = Name::parse(OsStr::new("/tmp/x")).unwrap();
        assert_eq!(sysv.kind().label(), "sysv");
        assert_eq!(sysv.label(), Path::new("/tmp/x"));
        for p in ["posix:/x", "posix:x", "posix://x"] {
            let n = Name::parse(OsStr::new(p)).unwrap();
            assert_eq!(n.kind().label(), "posix");
            assert_eq!(n.to_string(), "posix:/x");
        }
        for bad in ["posix:", "posix:/a/b", "posix:/a b"] {
            assert_eq!(
                Name::parse(OsStr::new(bad)).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
        let r = Name::parse(OsStr::new("redis://h/x")).unwrap();
        assert_eq!(r.kind().label(), "redis");
        assert_eq!(r.label(), Path::new("redis://h:6379/x"));
        assert_eq!(
            Name::parse(OsStr::new("rediss://h/x")).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}
