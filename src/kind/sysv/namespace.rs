//! Whether an IPC namespace still exists, for records made in another one.
//!
//! Containers that share a directory (a bind-mounted /tmp) see each other's records. A
//! set id means nothing outside its IPC namespace, and an IPC namespace's objects die with
//! it, so a record from another namespace of this boot is live exactly as long as that
//! namespace is. The kernel offers no lookup by namespace inode; the only evidence is the
//! processes in /proc: the namespace lives while a task's `/proc/PID/task/TID/ns/ipc`
//! names it. A namespace kept alive only by a bind mount of its ns file, or by an open
//! descriptor of it, has no such task and counts as gone.

use std::fs;
use std::path::Path;

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO` in the kernel's
/// `include/linux/proc_ns.h`). Only from there does /proc show every process.
const INITIAL_PID_NS: &str = "pid:[4026531836]";

/// What /proc says about an IPC namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    /// A task in it was seen.
    InUse,
    /// Every task could be examined and none is in it.
    Gone,
    /// None was seen, but some tasks could not be examined (their ns links are closed to
    /// a non-root caller), or this process sees only part of the system (it runs in a
    /// child PID namespace, as in most containers).
    Unknown,
}

/// Whether any task on the system is in the IPC namespace with inode `ino`.
pub(crate) fn ipc_presence(ino: u64) -> Presence {
    // A process in a child PID namespace sees only its part of the tree in /proc.
    let whole = matches!(
        fs::read_link("/proc/self/ns/pid"),
        Ok(l) if l.as_os_str() == INITIAL_PID_NS
    );
    presence_in(Path::new("/proc"), ino, whole)
}

/// [`ipc_presence`] over the process tree at `proc`, which shows every task if `whole`.
fn presence_in(proc: &Path, ino: u64, whole: bool) -> Presence {
    let wanted = format!("ipc:[{ino}]");
    let Ok(procs) = fs::read_dir(proc) else {
        return Presence::Unknown;
    };
    let mut blind = !whole;
    for p in procs.flatten() {
        let pid = p.file_name();
        if !pid.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        // Namespaces belong to threads: one thread may have unshared its IPC namespace.
        let Ok(tasks) = fs::read_dir(p.path().join("task")) else {
            continue; // the process has exited
        };
        for t in tasks.flatten() {
            match fs::read_link(t.path().join("ns/ipc")) {
                Ok(l) if l.as_os_str() == wanted.as_str() => return Presence::InUse,
                Ok(_) => {}
                // Another user's task, or one with more privilege than we have (ptrace's
                // rules): closed to us. Any other error: the task has exited.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => blind = true,
                Err(_) => {}
            }
        }
    }
    if blind {
        Presence::Unknown
    } else {
        Presence::Gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_namespace_is_in_use() {
        let ours = fs::read_link("/proc/self/ns/ipc").unwrap();
        let ino: u64 = ours
            .to_str()
            .and_then(|s| s.strip_prefix("ipc:["))
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse().ok())
            .expect("an ipc:[N] link");
        assert_eq!(ipc_presence(ino), Presence::InUse);
    }

    /// A fake /proc: `tasks` are (pid, tid, the ns/ipc link's target).
    fn fake_proc(tasks: &[(u32, u32, &str)]) -> std::path::PathBuf {
        let mut b = [0u8; 4];
        crate::sys::random::random_bytes(&mut b).expect("getrandom works");
        let root = std::env::temp_dir().join(format!("sem-fake-proc-{}", u32::from_ne_bytes(b)));
        fs::create_dir_all(root.join("self")).unwrap();
        for (pid, tid, target) in tasks {
            let ns = root.join(format!("{pid}/task/{tid}/ns"));
            fs::create_dir_all(&ns).unwrap();
            std::os::unix::fs::symlink(target, ns.join("ipc")).unwrap();
        }
        root
    }

    #[test]
    fn presence_is_read_from_every_thread() {
        let root = fake_proc(&[(1, 1, "ipc:[7]"), (20, 20, "ipc:[7]"), (20, 21, "ipc:[9]")]);
        assert_eq!(presence_in(&root, 9, true), Presence::InUse);
        assert_eq!(presence_in(&root, 8, true), Presence::Gone);
        // Seen is seen even from a partial view; not seen proves nothing there.
        assert_eq!(presence_in(&root, 9, false), Presence::InUse);
        assert_eq!(presence_in(&root, 8, false), Presence::Unknown);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_namespace_nobody_is_in_is_not_in_use() {
        // The initial UTS namespace's inode is never an IPC namespace's.
        assert_ne!(ipc_presence(0xEFFF_FFFE), Presence::InUse);
    }
}
