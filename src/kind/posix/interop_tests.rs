//! Interop with other programs that use the same glibc semaphores: a Python peer
//! (`posix_ipc`) and a Node peer (`koffi` calling libc's `sem_*`), both in
//! `tests/interop/`. Their tools are installed under `target/` on first use (a venv in
//! `target/interop-venv`, `koffi@2` in `target/interop-node`); if that fails the tests
//! say so on stderr and pass, as they test the peers' side, not ours.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::tests::{kind, Scratch};
use super::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One peer program and how to run it.
struct Peer {
    what: &'static str,
    program: PathBuf,
    script: PathBuf,
    node_path: Option<PathBuf>,
}

/// The Python peer, creating `target/interop-venv` with posix_ipc if needed.
fn python() -> Option<&'static Peer> {
    static PEER: OnceLock<Option<Peer>> = OnceLock::new();
    PEER.get_or_init(|| {
        let venv = root().join("target/interop-venv");
        let py = venv.join("bin/python");
        let ready = || succeeds(Command::new(&py).args(["-c", "import posix_ipc"]));
        if !ready() {
            let _ = succeeds(Command::new("python3").arg("-m").arg("venv").arg(&venv));
            let _ =
                succeeds(Command::new(venv.join("bin/pip")).args(["install", "-q", "posix_ipc"]));
        }
        if !ready() {
            eprintln!("skipping the Python interop test: can't set up posix_ipc in {venv:?}");
            return None;
        }
        Some(Peer {
            what: "python",
            program: py,
            script: root().join("tests/interop/peer.py"),
            node_path: None,
        })
    })
    .as_ref()
}

/// The Node peer, installing koffi@2 into `target/interop-node` if needed.
fn node() -> Option<&'static Peer> {
    static PEER: OnceLock<Option<Peer>> = OnceLock::new();
    PEER.get_or_init(|| {
        let prefix = root().join("target/interop-node");
        let modules = prefix.join("node_modules");
        let ready = || {
            succeeds(
                Command::new("node")
                    .args(["-e", "require('koffi')"])
                    .env("NODE_PATH", &modules),
            )
        };
        if !ready() {
            let _ = std::fs::create_dir_all(&prefix);
            let _ = succeeds(
                Command::new("npm")
                    .args(["install", "--no-save", "--silent", "koffi@2"])
                    .current_dir(&prefix),
            );
        }
        if !ready() {
            eprintln!("skipping the Node interop test: can't set up koffi in {prefix:?}");
            return None;
        }
        Some(Peer {
            what: "node",
            program: "node".into(),
            script: root().join("tests/interop/peer.js"),
            node_path: Some(modules),
        })
    })
    .as_ref()
}

impl Peer {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg(&self.script).args(args).stdin(Stdio::null());
        if let Some(p) = &self.node_path {
            cmd.env("NODE_PATH", p);
        }
        cmd
    }

    /// Run to the end: exit code and trimmed stdout.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().expect("run the peer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{} {args:?}: {stderr}", self.what);
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.code().unwrap_or(-1), stdout)
    }

    /// Start `wait NAME SECS` and return once the peer is about to block.
    fn start_wait(
        &self,
        name: &PosixName,
        secs: &str,
    ) -> (Child, BufReader<std::process::ChildStdout>) {
        let mut child = self
            .command(&["wait", name.as_str(), secs])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the peer");
        let mut out = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read the peer");
        assert_eq!(line.trim(), "waiting", "{}", self.what);
        (child, out)
    }
}

fn interop(peer: &Peer) {
    let started = Instant::now();
    let me = Trust::default();

    // Values seen both ways, and an exclusive create collides both ways.
    let a = Scratch::new(&format!("{}-a", peer.what));
    let name = a.0.as_str();
    assert_eq!(peer.run(&["create", name, "2"]), (0, "created".into()));
    let sem = open(&a.0, &me).unwrap();
    assert_eq!(sem.value().unwrap(), 2);
    sem.post(1).unwrap();
    assert_eq!(peer.run(&["value", name]), (0, "3".into()));
    peer.run(&["post", name]);
    assert_eq!(sem.value().unwrap(), 4);
    assert_eq!(kind(init(&a.0, 0, 0o600)), ErrorKind::AlreadyExists);
    let b = Scratch::new(&format!("{}-b", peer.what));
    init(&b.0, 0, 0o600).unwrap();
    assert_eq!(
        peer.run(&["create", b.0.as_str(), "1"]),
        (3, "exists".into())
    );
    let sem = open(&b.0, &me).unwrap();

    // Our post wakes the peer's blocked waiter.
    let (mut child, mut out) = peer.start_wait(&b.0, "10");
    thread::sleep(Duration::from_millis(200));
    let posted = Instant::now();
    sem.post(1).unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let woke = posted.elapsed();
    assert_eq!(line.trim(), "took", "{}", peer.what);
    assert!(child.wait().unwrap().success());
    assert!(woke < Duration::from_secs(2), "{}: {woke:?}", peer.what);
    assert_eq!(sem.value().unwrap(), 0);

    // The peer's post wakes our blocked waiter, and the peer's unlink ends our wait.
    thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            sem.take(Timeout::After(Duration::from_secs(10)), &|| false)
                .map(|()| Instant::now())
        });
        thread::sleep(Duration::from_millis(200));
        let posted = Instant::now();
        assert_eq!(peer.run(&["post", b.0.as_str()]).0, 0);
        let took = waiter.join().unwrap().unwrap();
        // The peer's own start-up (~50 ms) counts here, before its post.
        assert!(took - posted < Duration::from_secs(3), "{}", peer.what);

        let waiter = scope.spawn(|| sem.take(Timeout::Forever, &|| false));
        thread::sleep(Duration::from_millis(200));
        assert_eq!(peer.run(&["unlink", b.0.as_str()]).0, 0);
        assert_eq!(kind(waiter.join().unwrap()), ErrorKind::Removed);
    });
    assert!(!b.path().exists());
    eprintln!("{} interop: {:?}", peer.what, started.elapsed());
}

#[test]
fn python_posix_ipc() {
    if let Some(peer) = python() {
        interop(peer);
    }
}

#[test]
fn node_koffi() {
    if let Some(peer) = node() {
        interop(peer);
    }
}
