"""An interactive bash on a real pseudo-terminal, for the tests of what a person at a
prompt sees: Ctrl-C typed at the terminal (the line discipline sends SIGINT to the
terminal's foreground process group), job control on, and bash's own prompt.

    from pty_shell import Shell
    sh = Shell(rcfile)            # bash --rcfile RCFILE -i; PS1 must be 'PROMPT> '
    sh.run('sem_run /tmp/x f')    # type a line; don't wait for the prompt
    sh.expect('in f')             # wait for output matching a regex (5 s by default)
    sh.ctrl_c()                   # type ^C
    sh.prompt()                   # wait for the next prompt
    sh.close()                    # type exit, wait for bash to end; returns its status
    await_waiter(helper, name)    # poll until one process waits on NAME
"""
import os
import pty
import re
import select
import signal
import subprocess
import time

PROMPT = 'PROMPT> '


class Shell:
    def __init__(self, rcfile, env=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe('bash', ['bash', '--rcfile', rcfile, '-i'], env or os.environ)
        self.seen = ''
        self.prompt()

    def _read(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return False
        self.seen += data.decode('utf-8', 'replace').replace('\r\n', '\n')
        return True

    def expect(self, pattern, timeout=5):
        """Wait until the output since the last match matches PATTERN; return the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.seen)
            if m:
                self.seen = self.seen[m.end():]
                return m
            if not self._read(deadline):
                raise AssertionError(f'no {pattern!r} within {timeout} s; saw {self.seen!r}')

    def prompt(self, timeout=5):
        return self.expect(re.escape(PROMPT), timeout)

    def run(self, line):
        os.write(self.fd, line.encode() + b'\n')

    def ctrl_c(self):
        os.write(self.fd, b'\x03')

    def close(self, timeout=5):
        self.run('exit')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            self._read(time.monotonic() + 0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError('bash did not exit')


def await_waiter(helper, name, timeout=5):
    """Poll (every 10 ms, at most TIMEOUT s) until one process waits on NAME, as the
    helper's `status --json` counts them."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.check_output([helper, 'status', '--json', name]).decode()
        if '"waiters":1' in out:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f'nobody waits on {name} after {timeout} s: {out}')
        time.sleep(0.01)
