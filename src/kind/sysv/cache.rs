//! Verified semaphores kept open across operations, for a front end that lives long and
//! does many operations (the bash builtin), revalidated on every use.
//!
//! A fresh [`Semaphore::open`] costs about fifteen system calls: it opens the directory,
//! looks at the name, reads the record, reads the boot id and the IPC namespace, looks the
//! key up and examines the set. The cache keeps the verified semaphore with a *stamp* of
//! the record file as it was seen around that open (device, inode, type and mode, owner,
//! size, modification and change times, to the nanosecond), and on every later use checks
//! two things before handing it out:
//!
//! 1. the name, looked at without following a link, still has exactly that stamp: the
//!    same file, unchanged, still owned by the same uid (a rename, a replacement, a
//!    symbolic link, a chown, a chmod or a rewrite all change the inode or the ctime);
//! 2. the kernel set, examined by id (`IPC_STAT`), still has the recorded key, is still
//!    owned by the record's owner, and still holds one semaphore.
//!
//! Any mismatch or error drops the entry, and the name is opened and verified afresh. The
//! second check is what makes a reused id harmless: a removed set's id comes back only
//! with another sequence number, and even if it came back whole, the new set would have
//! another random key. The first is what makes a replaced record harmless. Together they
//! keep every guarantee of [`Semaphore::open`] (see docs/DESIGN.md, "The builtin").

use std::collections::HashMap;
use std::path::PathBuf;

use nix::sys::stat::FileStat;

use super::path::PathName;
use super::Semaphore;
use crate::error::{ErrorKind, Result};
use crate::sys::sysv_sem as sys;

/// What identifies a record file and its contents, from lstat(2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mode: u32,
    uid: u32,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of what stands at `name` now, without following a link there.
    fn of(name: &PathName) -> Option<Stamp> {
        let st = nix::sys::stat::lstat(name.path()).ok()?;
        Some(Stamp::from(&st))
    }
}

impl From<&FileStat> for Stamp {
    fn from(st: &FileStat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            uid: st.st_uid,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// An open semaphore and the stamp of the record it was verified through.
#[derive(Debug)]
struct Entry {
    sem: Semaphore,
    stamp: Stamp,
}

/// Verified System V semaphores by resolved path; see the module docs.
#[derive(Debug, Default)]
pub struct Cache {
    map: HashMap<PathBuf, Entry>,
}

/// How many names a cache keeps before it starts afresh: a script that walks through
/// thousands of names must not grow the shell without bound.
const MAX_ENTRIES: usize = 256;

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// How many semaphores are kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drop every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Drop the entry of `name`, if any: after an operation on it failed because the set
    /// is gone ([`ErrorKind::Removed`]), say.
    pub fn forget(&mut self, name: &PathName) {
        self.map.remove(name.path());
    }

    /// The semaphore `name`, as [`Semaphore::open`] would give it: the kept one when both
    /// checks of the module docs pass, else a freshly verified one (kept for next time
    /// when the record did not change while it was verified).
    ///
    /// # Errors
    /// As [`Semaphore::open`].
    pub fn open(&mut self, name: &PathName) -> Result<Lent<'_>> {
        let now = Stamp::of(name);
        let valid = match (self.map.get(name.path()), now) {
            (Some(e), Some(now)) => e.stamp == now && still_the_set(&e.sem),
            _ => false,
        };
        if !valid {
            self.map.remove(name.path());
            let sem = Semaphore::open(name)?;
            // Keep it only if the file seen before the open is the one seen after: a
            // record replaced meanwhile is used this once, and verified again next time.
            match now {
                Some(before) if Stamp::of(name) == Some(before) => {
                    if self.map.len() >= MAX_ENTRIES {
                        self.map.clear();
                    }
                    let entry = Entry { sem, stamp: before };
                    self.map.insert(name.path().to_path_buf(), entry);
                }
                _ => return Ok(Lent::Once(sem)),
            }
        }
        // Present: found valid, or inserted just above.
        Ok(Lent::Kept(&self.map[name.path()].sem))
    }

    /// Run `f` on the semaphore `name` (see [`Cache::open`]), forgetting it when `f`
    /// finds it gone ([`ErrorKind::Removed`], [`ErrorKind::Stale`]).
    ///
    /// # Errors
    /// As [`Cache::open`], and whatever `f` returns.
    pub fn with<T>(
        &mut self,
        name: &PathName,
        f: impl FnOnce(&Semaphore) -> Result<T>,
    ) -> Result<T> {
        let r = f(&*self.open(name)?);
        if let Err(e) = &r {
            if matches!(e.kind(), ErrorKind::Removed | ErrorKind::Stale) {
                self.forget(name);
            }
        }
        r
    }
}

/// A semaphore from [`Cache::open`]: the kept one, or one verified for this use only.
#[derive(Debug)]
pub enum Lent<'a> {
    /// The cache's own.
    Kept(&'a Semaphore),
    /// Verified while its record changed: not kept.
    Once(Semaphore),
}

impl std::ops::Deref for Lent<'_> {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        match self {
            Lent::Kept(s) => s,
            Lent::Once(s) => s,
        }
    }
}

/// Whether `sem`'s kernel set is still the one that was verified: same key, same owner,
/// one semaphore. Any error (EIDRM, EINVAL, EACCES after a mode change) says no.
fn still_the_set(sem: &Semaphore) -> bool {
    match sys::stat(sem.id) {
        Ok(ds) => {
            ds.sem_perm.__key == sem.key.0 && ds.sem_perm.uid == sem.owner && ds.sem_nsems == 1
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::sysv::lifecycle;
    use crate::kind::InitOptions;
    use std::ffi::OsString;

    /// A semaphore in a private directory, destroyed (and the directory removed) when
    /// dropped, so that a failing test leaks no kernel set.
    struct Scratch {
        dir: PathBuf,
        name: PathName,
    }

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "sem-cache-{tag}-{}-{}",
                std::process::id(),
                super::super::random_u32().unwrap()
            ));
            std::fs::create_dir(&dir).unwrap();
            let name = PathName::resolve(&OsString::from(dir.join("s"))).unwrap();
            lifecycle::init_with(&name, 1, &InitOptions::default()).unwrap();
            Scratch { dir, name }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = lifecycle::destroy(&self.name);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_kept_semaphore_is_reused_while_nothing_changes() {
        let s = Scratch::new("reuse");
        let mut c = Cache::new();
        let id = c.open(&s.name).unwrap().id();
        assert_eq!(c.len(), 1);
        assert_eq!(c.open(&s.name).unwrap().id(), id);
        c.open(&s.name).unwrap().try_wait().unwrap();
        assert_eq!(c.open(&s.name).unwrap().value().unwrap(), 0);
        c.forget(&s.name);
        assert!(c.is_empty());
    }

    #[test]
    fn a_destroy_and_init_is_noticed() {
        let s = Scratch::new("reinit");
        let mut c = Cache::new();
        let old = c.open(&s.name).unwrap().id();
        lifecycle::destroy(&s.name).unwrap();
        assert_eq!(
            c.open(&s.name).unwrap_err().kind(),
            ErrorKind::NotFound,
            "a destroyed name is not found, whatever was kept"
        );
        assert!(c.is_empty());
        lifecycle::init_with(&s.name, 7, &InitOptions::default()).unwrap();
        let sem = c.open(&s.name).unwrap();
        assert_ne!(sem.id(), old);
        assert_eq!(sem.value().unwrap(), 7);
    }

    #[test]
    fn a_set_removed_behind_the_record_is_noticed() {
        let s = Scratch::new("ipcrm");
        let mut c = Cache::new();
        let id = c.open(&s.name).unwrap().id;
        // ipcrm: the record stays, unchanged, naming a set that is gone.
        sys::remove(id).unwrap();
        assert_eq!(c.open(&s.name).unwrap_err().kind(), ErrorKind::Stale);
        assert!(c.is_empty());
    }

    #[test]
    fn a_touched_record_is_verified_again() {
        let s = Scratch::new("touch");
        let mut c = Cache::new();
        c.open(&s.name).unwrap();
        let before = c.map[s.name.path()].stamp;
        // A chmod changes the ctime (and the mode): the entry must be replaced.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let f = std::fs::File::open(s.name.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o640))
            .unwrap();
        c.open(&s.name).unwrap();
        assert_ne!(c.map[s.name.path()].stamp, before);
    }

    #[test]
    fn a_symlink_at_the_name_is_refused_even_after_a_hit() {
        let s = Scratch::new("link");
        let mut c = Cache::new();
        c.open(&s.name).unwrap();
        let real = s.dir.join("real");
        std::fs::rename(s.name.path(), &real).unwrap();
        std::os::unix::fs::symlink(&real, s.name.path()).unwrap();
        assert_eq!(c.open(&s.name).unwrap_err().kind(), ErrorKind::Stale);
        std::fs::remove_file(s.name.path()).unwrap();
        std::fs::rename(&real, s.name.path()).unwrap();
    }

    #[test]
    fn an_operation_finding_the_set_gone_forgets_it() {
        let s = Scratch::new("gone");
        let mut c = Cache::new();
        let id = c.open(&s.name).unwrap().id;
        sys::remove(id).unwrap();
        // Skip the checks, as a removal racing with them would: the operation fails.
        let e = c.with(&s.name, |_| Semaphore::open(&s.name)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Stale);
        assert!(c.is_empty());
    }
}
