//! System V semaphore sets: one typed function per `semget`, `semctl` command and `semop`.
//!
//! `semctl(2)` is variadic and unchecked by the compiler, so each command gets its own
//! function with the argument type that command takes.

use std::mem::MaybeUninit;

use nix::errno::Errno;

use super::WaitSlot;

/// A System V IPC key (`key_t`), as passed to `semget(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(pub libc::key_t);

/// A System V semaphore set identifier, as returned by `semget(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemId(pub libc::c_int);

/// `semget(key, 1, IPC_CREAT | IPC_EXCL | mode)`: create a new set of one semaphore.
///
/// # Errors
/// `EEXIST` when `key` is taken, `ENOSPC` at the SEMMNI/SEMMNS limits; see semget(2).
pub fn create_set(key: Key, mode: u32) -> Result<SemId, Errno> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int;
    // SAFETY: semget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::semget(key.0, 1, flags) };
    Errno::result(id).map(SemId)
}

/// `semget(key, 0, 0)`: the id of the set that currently holds `key`.
///
/// # Errors
/// `ENOENT` when no set holds the key; see semget(2).
pub fn lookup_set(key: Key) -> Result<SemId, Errno> {
    // SAFETY: semget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::semget(key.0, 0, 0) };
    Errno::result(id).map(SemId)
}

/// `semctl(id, 0, GETVAL)`: the semaphore's value.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_val(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETVAL takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETVAL) };
    Errno::result(v)
}

/// `semctl(id, 0, SETVAL, value)`: set the semaphore's value.
///
/// # Errors
/// `ERANGE` above SEMVMX (32767), `EACCES`, `EINVAL`/`EIDRM`; see semctl(2).
pub fn set_val(id: SemId, value: i32) -> Result<(), Errno> {
    // SAFETY: SETVAL's fourth argument is `union semun`, whose `val` member is an int;
    // on Linux an int passed through the variadic slot is read back as that member.
    let r = unsafe { libc::semctl(id.0, 0, libc::SETVAL, value as libc::c_int) };
    Errno::result(r).map(drop)
}

/// `semctl(id, 0, GETNCNT)`: how many processes are blocked decrementing.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_ncnt(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETNCNT takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETNCNT) };
    Errno::result(v)
}

/// `semctl(id, 0, GETPID)`: the pid of the process that last operated on the semaphore.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_pid(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETPID takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETPID) };
    Errno::result(v)
}

/// `semctl(id, 0, GETZCNT)`: how many processes wait for the value to become zero.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn get_zcnt(id: SemId) -> Result<i32, Errno> {
    // SAFETY: GETZCNT takes no fourth argument and writes no memory of ours.
    let v = unsafe { libc::semctl(id.0, 0, libc::GETZCNT) };
    Errno::result(v)
}

/// `semctl(id, 0, IPC_STAT, &ds)`: the set's owner, mode, key and size.
///
/// # Errors
/// `EACCES` without read permission, `EINVAL`/`EIDRM` when the set is gone; see semctl(2).
pub fn stat(id: SemId) -> Result<libc::semid_ds, Errno> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: IPC_STAT's fourth argument is `union semun`, whose `buf` member is a
    // `struct semid_ds *`; `ds` is a valid, writable semid_ds for the whole call.
    let r = unsafe { libc::semctl(id.0, 0, libc::IPC_STAT, ds.as_mut_ptr()) };
    Errno::result(r)?;
    // SAFETY: the kernel filled `ds` on success, and it was zeroed before.
    Ok(unsafe { ds.assume_init() })
}

/// `semctl(id, 0, IPC_SET, ds)`: set the owner uid, group and mode of the set from
/// `ds.sem_perm` (the kernel reads only those three fields).
///
/// # Errors
/// `EPERM` unless the caller is the set's owner or creator, `EINVAL`/`EIDRM`; see semctl(2).
pub fn set_perm(id: SemId, ds: &libc::semid_ds) -> Result<(), Errno> {
    // SAFETY: IPC_SET's fourth argument is `union semun`, whose `buf` member is a
    // `struct semid_ds *`; the kernel only reads `*ds`, which is valid for the whole call.
    let r = unsafe { libc::semctl(id.0, 0, libc::IPC_SET, ds as *const libc::semid_ds) };
    Errno::result(r).map(drop)
}

/// `semctl(id, 0, IPC_RMID)`: remove the set, waking every blocked waiter with `EIDRM`.
///
/// # Errors
/// `EPERM` unless the caller is the set's owner or creator, `EINVAL`/`EIDRM`; see semctl(2).
pub fn remove(id: SemId) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no fourth argument and writes no memory of ours.
    let r = unsafe { libc::semctl(id.0, 0, libc::IPC_RMID) };
    Errno::result(r).map(drop)
}

/// `semop(id, {0, delta, flags}, 1)`: add `delta` (which may be negative) without waiting
/// longer than the flags allow. Never pass `SEM_UNDO` for a count meant to outlive us.
///
/// # Errors
/// `EAGAIN` with `IPC_NOWAIT` when it would block, `ERANGE` above SEMVMX, `EIDRM`,
/// `EACCES`, `EINTR`; see semop(2).
pub fn semop(id: SemId, delta: i16, flags: libc::c_short) -> Result<(), Errno> {
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        sem_flg: flags,
    };
    // SAFETY: `op` is one valid sembuf and nsops is 1.
    let r = unsafe { libc::semop(id.0, &mut op, 1) };
    Errno::result(r).map(drop)
}

/// `semtimedop(id, {0, -n, flags}, 1, slot)`: take `n` counts (1..=32767) at once,
/// sleeping in the kernel for at most the time in `slot`, which the caller has just set
/// (see [`WaitSlot`]): a cancel zeroes it, so the call then takes only what it can at once. The kernel takes all `n` in one step or none: a waiter for `n`
/// sleeps until the value is at least `n`. With `undo`, the counts are taken with
/// `SEM_UNDO`: the kernel gives them back when this process ends, however it ends (the
/// adjustment survives execve(2), not fork(2)).
///
/// # Errors
/// `EAGAIN` when the timeout expired (or was zeroed by a cancel), `EINTR`, `EIDRM`,
/// `EACCES`, `EINVAL`; `ERANGE` for an `n` of 0 or above 32767 (nothing is attempted);
/// see semtimedop(2).
pub fn take_within(id: SemId, n: u16, slot: &WaitSlot, undo: bool) -> Result<(), Errno> {
    // A sem_op of 0 would wait for zero, and the kernel caps a semaphore at SEMVMX.
    let delta = match i16::try_from(n) {
        Ok(d) if d > 0 => -d,
        _ => return Err(Errno::ERANGE),
    };
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        sem_flg: if undo {
            libc::SEM_UNDO as libc::c_short
        } else {
            0
        },
    };
    // SAFETY: `op` is one valid sembuf, nsops is 1, and the timeout pointer is the slot,
    // which outlives the call; libc has no semtimedop wrapper, hence the raw syscall.
    let r = unsafe {
        libc::syscall(
            libc::SYS_semtimedop,
            id.0,
            &mut op as *mut libc::sembuf,
            1usize,
            slot.as_ptr(),
        )
    };
    Errno::result(r).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::random::random_bytes;
    use crate::sys::WaitSlot;
    use std::time::Duration;

    /// A private set, removed when dropped so that a failing test leaks nothing.
    struct PrivateSet(SemId);

    impl PrivateSet {
        fn new() -> PrivateSet {
            let mut b = [0u8; 4];
            random_bytes(&mut b).expect("getrandom works");
            let key = Key(i32::from_ne_bytes(b) | 1);
            PrivateSet(create_set(key, 0o600).expect("a set can be created"))
        }
    }

    impl Drop for PrivateSet {
        fn drop(&mut self) {
            let _ = remove(self.0);
        }
    }

    #[test]
    fn values_ops_and_limits() {
        let s = PrivateSet::new();
        assert_eq!(get_val(s.0), Ok(0));
        set_val(s.0, 2).unwrap();
        semop(s.0, -1, 0).unwrap();
        assert_eq!(get_val(s.0), Ok(1));
        assert_eq!(
            semop(s.0, -2, libc::IPC_NOWAIT as libc::c_short),
            Err(Errno::EAGAIN)
        );
        assert_eq!(set_val(s.0, 32768), Err(Errno::ERANGE));
        set_val(s.0, 32767).unwrap();
        assert_eq!(semop(s.0, 1, 0), Err(Errno::ERANGE));
        assert_eq!(get_val(s.0), Ok(32767));
        assert_eq!(get_ncnt(s.0), Ok(0));
        let ds = stat(s.0).unwrap();
        assert_eq!(ds.sem_perm.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(ds.sem_nsems, 1);
        assert_eq!(ds.sem_perm.mode & 0o777, 0o600);
    }

    #[test]
    fn timed_take_expires_and_takes() {
        let s = PrivateSet::new();
        let t = std::time::Instant::now();
        assert_eq!(
            take_within(s.0, 1, &WaitSlot::after(Duration::from_millis(50)), false),
            Err(Errno::EAGAIN)
        );
        assert!(t.elapsed() >= Duration::from_millis(45));
        set_val(s.0, 1).unwrap();
        take_within(s.0, 1, &WaitSlot::after(Duration::from_millis(50)), false).unwrap();
        assert_eq!(get_val(s.0), Ok(0));
    }

    #[test]
    fn weighted_takes_are_all_or_nothing() {
        let s = PrivateSet::new();
        set_val(s.0, 2).unwrap();
        assert_eq!(
            take_within(s.0, 3, &WaitSlot::after(Duration::from_millis(20)), false),
            Err(Errno::EAGAIN)
        );
        assert_eq!(get_val(s.0), Ok(2), "a failed take of 3 took nothing");
        set_val(s.0, 5).unwrap();
        take_within(s.0, 3, &WaitSlot::after(Duration::from_millis(20)), false).unwrap();
        assert_eq!(get_val(s.0), Ok(2));
        assert_eq!(
            take_within(s.0, 0, &WaitSlot::after(Duration::ZERO), false),
            Err(Errno::ERANGE)
        );
        assert_eq!(
            take_within(s.0, 32768, &WaitSlot::after(Duration::ZERO), false),
            Err(Errno::ERANGE)
        );
        assert_eq!(get_val(s.0), Ok(2));
    }

    #[test]
    fn removed_sets_are_reported() {
        let s = PrivateSet::new();
        let key_holder = stat(s.0).unwrap().sem_perm.__key;
        assert_eq!(lookup_set(Key(key_holder)), Ok(s.0));
        remove(s.0).unwrap();
        assert!(matches!(get_val(s.0), Err(Errno::EINVAL | Errno::EIDRM)));
        assert_eq!(lookup_set(Key(key_holder)), Err(Errno::ENOENT));
    }
}
