#!/usr/bin/env python3
"""bench/poster.py LOCKFILE: a resident poster for bench/run.sh's wake-up figures.

A post made by spawning a command includes that spawn. To time the hand-off alone, this
process stays up and, on each command read from stdin, reads the clock (CLOCK_REALTIME,
the clock of bash's $EPOCHREALTIME) just before the one system call that releases a
waiter, then prints that time in microseconds:

    post SEMID   semop(2) +1 on semaphore 0 of the System V set SEMID
    lock         flock(2) LOCK_EX on LOCKFILE (prints 0: nothing is timed)
    unlock       flock(2) LOCK_UN on LOCKFILE

It uses the kernel's interfaces directly, not semctl-helper: it is the measuring
instrument, not a contender.
"""

import ctypes
import fcntl
import os
import sys
import time


class Sembuf(ctypes.Structure):
    """struct sembuf, see semop(2)."""

    _fields_ = [
        ("sem_num", ctypes.c_ushort),
        ("sem_op", ctypes.c_short),
        ("sem_flg", ctypes.c_short),
    ]


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    lock = os.open(sys.argv[1], os.O_WRONLY | os.O_CLOEXEC)
    one = Sembuf(0, 1, 0)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "post":
            semid = int(args[0])
            t = time.time_ns() // 1000
            if libc.semop(semid, ctypes.byref(one), 1) != 0:
                err = ctypes.get_errno()
                print(f"poster: semop {semid}: {os.strerror(err)}", file=sys.stderr)
                return 1
        elif cmd == "lock":
            fcntl.flock(lock, fcntl.LOCK_EX)
            t = 0
        elif cmd == "unlock":
            t = time.time_ns() // 1000
            fcntl.flock(lock, fcntl.LOCK_UN)
        else:
            print(f"poster: unknown command {cmd!r}", file=sys.stderr)
            return 2
        print(t, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
