"""A posix_ipc peer for sem's POSIX interop tests (src/posix/interop_tests.rs,
bats/interop_posix.bats).

Usage: peer.py create NAME VALUE | value NAME | post NAME | wait NAME SECS | unlink NAME
Exit 1: no semaphore NAME (one line on stderr). Exit 3: create found the name taken.
Exit 4: wait timed out.
"""
import sys

import posix_ipc


def main():
    cmd, name = sys.argv[1], "/" + sys.argv[2]
    if cmd == "create":
        try:
            posix_ipc.Semaphore(name, posix_ipc.O_CREX, 0o600, int(sys.argv[3]))
        except posix_ipc.ExistentialError:
            print("exists")
            return 3
        print("created")
    elif cmd == "unlink":
        posix_ipc.unlink_semaphore(name)
    else:
        try:
            sem = posix_ipc.Semaphore(name)
        except posix_ipc.ExistentialError as e:
            sys.exit(f"sem_open {name}: {e}")
        if cmd == "value":
            print(sem.value)
        elif cmd == "post":
            sem.release()
        elif cmd == "wait":
            print("waiting", flush=True)
            try:
                sem.acquire(float(sys.argv[3]))
            except posix_ipc.BusyError:
                print("timeout")
                return 4
            print("took")
    return 0


sys.exit(main())
