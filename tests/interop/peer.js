// A Node peer (koffi + libc's sem_*) for sem's POSIX interop tests
// (src/posix/interop_tests.rs, bats/interop_posix.bats).
// Usage: node peer.js create NAME VALUE | value NAME | post NAME | wait NAME SECS | unlink NAME
// Exit 1: no semaphore NAME (one line on stderr). Exit 3: create found the name taken.
// Exit 4: wait timed out.
'use strict';
const koffi = require('koffi');

const libc = koffi.load('libc.so.6');
const semOpen = libc.func('void *sem_open(const char *name, int oflag, ...)');
const semPost = libc.func('int sem_post(void *sem)');
const semGetvalue = libc.func('int sem_getvalue(void *sem, _Out_ int *sval)');
const Timespec = koffi.struct('timespec', { tv_sec: 'int64_t', tv_nsec: 'long' });
const semTimedwait = libc.func('int sem_timedwait(void *sem, const timespec *abstime)');
const semUnlink = libc.func('int sem_unlink(const char *name)');
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const EEXIST = 17;

const [cmd, bare, arg] = process.argv.slice(2);
const name = '/' + bare;

function open() {
  const sem = semOpen(name, 0);
  if (!sem) {
    console.error(`sem_open ${name}: errno ${koffi.errno()}`);
    process.exit(1);
  }
  return sem;
}

if (cmd === 'create') {
  const sem = semOpen(name, O_CREAT | O_EXCL, 'unsigned int', 0o600, 'unsigned int', Number(arg));
  if (!sem) {
    console.log(koffi.errno() === EEXIST ? 'exists' : `errno ${koffi.errno()}`);
    process.exit(3);
  }
  console.log('created');
} else if (cmd === 'value') {
  const v = [0];
  semGetvalue(open(), v);
  console.log(v[0]);
} else if (cmd === 'post') {
  semPost(open());
} else if (cmd === 'wait') {
  const sem = open();
  console.log('waiting');
  const end = Date.now() + Number(arg) * 1000;
  const abs = { tv_sec: Math.floor(end / 1000), tv_nsec: (end % 1000) * 1e6 };
  if (semTimedwait(sem, abs) !== 0) {
    console.log('timeout');
    process.exit(4);
  }
  console.log('took');
} else if (cmd === 'unlink') {
  semUnlink(name);
}
