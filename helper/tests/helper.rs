//! Integration tests: run the built `semctl-helper` in a private directory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const HELPER: &str = env!("CARGO_BIN_EXE_semctl-helper");

/// A private directory, removed with every semaphore in it when dropped, so that a
/// failing test leaks neither files nor kernel sets.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sem-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.flatten() {
                let _ = helper(&[OsStr::new("destroy"), e.path().as_os_str()]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn helper<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(HELPER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the helper runs")
}

fn run(args: &[&dyn AsRef<OsStr>]) -> (i32, String, String) {
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let out = helper(&args);
    let code = out.status.code().expect("the helper exits normally");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn value(p: &Path) -> u16 {
    let (code, out, _) = run(&[&"peek", &p]);
    assert_eq!(code, 0);
    out.trim_end().parse().expect("peek prints a number")
}

fn set_id(p: &Path) -> String {
    let rec = std::fs::read_to_string(p).expect("the record is readable");
    rec.split(' ')
        .find_map(|f| f.strip_prefix("id="))
        .expect("the record has an id")
        .to_owned()
}

/// Opens the semaphore at `p` and polls (up to 10 s) until `n` or more processes block on it.
fn open_with_waiters(p: &Path, n: u32) -> Box<dyn sem::Semaphore> {
    let sem = sem::open(&sem::Name::parse(p.as_os_str()).expect("name")).expect("open");
    let start = Instant::now();
    while sem.status().expect("status").waiters.expect("waiters") < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "fewer than {n} waiters ever blocked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    sem
}

#[test]
fn round_trip_and_exit_codes() {
    let s = Scratch::new();
    let p = s.path("a");
    assert_eq!(run(&[&"init", &p, &"2"]), (0, String::new(), String::new()));
    assert_eq!(value(&p), 2);
    assert_eq!(run(&[&"post", &p]).0, 0);
    assert_eq!(value(&p), 3);
    for _ in 0..3 {
        assert_eq!(run(&[&"trywait", &p]).0, 0);
    }
    assert_eq!(run(&[&"trywait", &p]).0, 1);
    assert_eq!(run(&[&"wait", &p, &"0"]).0, 1);
    assert_eq!(run(&[&"wait", &p, &"0.05"]).0, 1);
    let (code, _, err) = run(&[&"init", &p, &"1"]);
    assert_eq!(code, 6);
    assert_eq!(err.lines().count(), 1);
    assert_eq!(value(&p), 0, "a failed init leaves the semaphore alone");
    assert_eq!(run(&[&"destroy", &p]).0, 0);
    assert!(!p.exists());
    assert_eq!(run(&[&"peek", &p]).0, 3);
    assert_eq!(run(&[&"destroy", &p]).0, 3);
}

#[test]
fn bad_arguments_are_usage_or_range_errors_and_leave_nothing() {
    let s = Scratch::new();
    let p = s.path("b");
    let cases: &[(&[&str], i32)] = &[
        (&[], 2),
        (&["frobnicate"], 2),
        (&["init"], 2),
        (&["init", "x"], 2),
        (&["post"], 2),
        (&["post", "a", "b"], 2),
        (&["init", "", "1"], 2),
        (&["init", "/tmp/", "1"], 2),
    ];
    for (args, want) in cases {
        let (code, out, err) = run(&args
            .iter()
            .map(|a| a as &dyn AsRef<OsStr>)
            .collect::<Vec<_>>());
        assert_eq!(code, *want, "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("semctl-helper: "), "{err}");
    }
    for (v, want) in [
        ("", 2),
        ("-1", 2),
        ("1.5", 2),
        ("0x10", 2),
        ("+1", 2),
        (" 1", 2),
        ("32768", 5),
        ("99999999999999999999", 5),
    ] {
        let (code, _, err) = run(&[&"init", &p, &v]);
        assert_eq!(code, want, "value {v:?}: {err}");
        assert!(!p.exists(), "value {v:?} left a file");
    }
    for m in ["999", "0o600", "-1", "0400", "07777"] {
        assert_eq!(run(&[&"init", &p, &"1", &m]).0, 2, "mode {m:?}");
        assert!(!p.exists());
    }
    assert_eq!(run(&[&"init", &p, &"1"]).0, 0);
    for t in [
        "abc", "nan", "inf", "1e3", "--1", "", ".", "1..", "1.5.", "1,5",
    ] {
        assert_eq!(run(&[&"wait", &p, &t]).0, 2, "timeout {t:?}");
    }
    assert_eq!(run(&[&"wait", &p, &"99999999999999999999"]).0, 5);
    assert_eq!(value(&p), 1, "no bad timeout took a count");
}

#[test]
fn post_stops_at_32767() {
    let s = Scratch::new();
    let p = s.path("max");
    assert_eq!(run(&[&"init", &p, &"32767"]).0, 0);
    let (code, _, err) = run(&[&"post", &p]);
    assert_eq!(code, 5);
    assert!(err.contains("32767"), "{err}");
    assert_eq!(value(&p), 32767);
}

#[test]
fn exactly_one_concurrent_init_wins() {
    let s = Scratch::new();
    let p = s.path("race");
    for round in 0..5 {
        let children: Vec<_> = (0..16)
            .map(|i| {
                Command::new(HELPER)
                    .args([
                        OsStr::new("init"),
                        p.as_os_str(),
                        OsStr::new(&(i + 1).to_string()),
                    ])
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        let codes: Vec<i32> = children
            .into_iter()
            .map(|c| {
                c.wait_with_output()
                    .expect("wait")
                    .status
                    .code()
                    .expect("exit code")
            })
            .collect();
        assert_eq!(
            codes.iter().filter(|&&c| c == 0).count(),
            1,
            "round {round}: {codes:?}"
        );
        assert!(codes.iter().all(|&c| c == 0 || c == 6), "{codes:?}");
        let winner = codes.iter().position(|&c| c == 0).expect("one won") + 1;
        assert_eq!(usize::from(value(&p)), winner);
        assert_eq!(run(&[&"destroy", &p]).0, 0);
    }
}

#[test]
fn stale_names_are_reported_and_reclaimed() {
    let s = Scratch::new();
    let p = s.path("stale");
    assert_eq!(run(&[&"init", &p, &"1"]).0, 0);
    let rm = Command::new("ipcrm")
        .args(["-s", &set_id(&p)])
        .status()
        .expect("ipcrm runs");
    assert!(rm.success());
    for op in ["post", "trywait", "peek"] {
        let (code, out, err) = run(&[&op, &p]);
        assert_eq!(code, 3, "{op}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("stale"), "{err}");
    }
    assert_eq!(run(&[&"init", &p, &"4"]).0, 0, "init reclaims a stale name");
    assert_eq!(value(&p), 4);
    let rm = Command::new("ipcrm")
        .args(["-s", &set_id(&p)])
        .status()
        .expect("ipcrm runs");
    assert!(rm.success());
    assert_eq!(run(&[&"destroy", &p]).0, 0, "destroy removes a stale name");
    assert!(!p.exists());
}

#[test]
fn records_are_trusted_only_when_exact() {
    let s = Scratch::new();
    let p = s.path("rec");
    assert_eq!(run(&[&"init", &p, &"1"]).0, 0);
    let good = std::fs::read(&p).expect("readable");
    let q = s.path("forged");
    let mut variants: Vec<Vec<u8>> = vec![
        Vec::new(),
        good[..good.len() / 2].to_vec(),
        b"\x00\xff garbage \n".to_vec(),
        String::from_utf8_lossy(&good)
            .replace("sem/1", "sem/2")
            .into_bytes(),
        String::from_utf8_lossy(&good)
            .replace(" id=", " id=0")
            .into_bytes(),
        [good.as_slice(), b"\n"].concat(),
    ];
    variants.push(good.repeat(4));
    for v in variants {
        std::fs::write(&q, &v).expect("writable");
        for op in ["post", "trywait", "peek", "wait"] {
            let args: [&dyn AsRef<OsStr>; 3] = [&op, &q, &"0"];
            let (code, out, err) = run(&args[..if op == "wait" { 3 } else { 2 }]);
            assert_eq!(code, 3, "{op} on {:?}: {err}", String::from_utf8_lossy(&v));
            assert!(out.is_empty());
        }
        assert_eq!(
            run(&[&"init", &q, &"1"]).0,
            6,
            "init never overwrites a non-record"
        );
        assert_eq!(
            run(&[&"destroy", &q]).0,
            3,
            "destroy never removes a non-record"
        );
        assert_eq!(std::fs::read(&q).expect("still there"), v);
    }
    assert_eq!(value(&p), 1, "nothing touched the real semaphore");
    std::fs::remove_file(&q).expect("removable");
}

#[test]
fn symlinks_at_the_name_are_never_followed() {
    let s = Scratch::new();
    let p = s.path("target");
    let l = s.path("link");
    assert_eq!(run(&[&"init", &p, &"1"]).0, 0);
    std::os::unix::fs::symlink(&p, &l).expect("symlink");
    for op in ["post", "trywait", "peek", "destroy"] {
        let (code, _, err) = run(&[&op, &l]);
        assert_eq!(code, 3, "{op}: {err}");
        assert!(err.contains("symbolic link"), "{err}");
    }
    assert_eq!(run(&[&"init", &l, &"1"]).0, 6);
    assert!(std::fs::symlink_metadata(&l)
        .expect("kept")
        .file_type()
        .is_symlink());
    assert_eq!(value(&p), 1);
    std::fs::remove_file(&l).expect("removable");
}

#[test]
fn names_may_hold_any_bytes_and_relative_names_live_in_home() {
    let s = Scratch::new();
    let odd = s.0.join(OsStr::from_bytes(b"sp ace\n\xff\xfe-\xc3\xbc"));
    assert_eq!(run(&[&"init", &odd, &"3"]).0, 0);
    assert_eq!(value(&odd), 3);
    let dashed = s.path("-dash");
    assert_eq!(run(&[&"init", &"--", &dashed, &"1"]).0, 0);

    let out = Command::new(HELPER)
        .args(["init", "rel", "5"])
        .env("HOME", &s.0)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(value(&s.path("rel")), 5);
    let (code, _, err) = run(&[&"init", &s.path("missing/dir/x"), &"1"]);
    assert_eq!(code, 3);
    assert!(err.contains("parent directory does not exist"), "{err}");
}

#[test]
fn a_post_wakes_a_blocked_waiter_at_once() {
    let s = Scratch::new();
    let p = s.path("wake");
    assert_eq!(run(&[&"init", &p, &"0"]).0, 0);
    let mut waiter = Command::new(HELPER)
        .arg("wait")
        .arg(&p)
        .spawn()
        .expect("spawn");
    let sem = open_with_waiters(&p, 1);
    let posted = Instant::now();
    sem.post(1).expect("post");
    let status = waiter.wait().expect("wait");
    let took = posted.elapsed();
    assert!(status.success());
    assert!(took < Duration::from_millis(500), "woke after {took:?}");
    assert_eq!(sem.value().expect("value"), 0);
}

#[test]
fn timeouts_are_kept() {
    let s = Scratch::new();
    let p = s.path("t");
    assert_eq!(run(&[&"init", &p, &"0"]).0, 0);
    for (t, lo, hi) in [("0.3", 0.28, 2.0), ("1", 0.98, 3.0)] {
        let start = Instant::now();
        let (code, out, err) = run(&[&"wait", &p, &t]);
        let took = start.elapsed().as_secs_f64();
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(err.contains("timed out"), "{err}");
        assert!(took >= lo && took <= hi, "timeout {t} took {took}");
    }
}

#[test]
fn destroy_wakes_waiters() {
    let s = Scratch::new();
    let p = s.path("d");
    assert_eq!(run(&[&"init", &p, &"0"]).0, 0);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            Command::new(HELPER)
                .arg("wait")
                .arg(&p)
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    open_with_waiters(&p, 3);
    let destroyed = Instant::now();
    assert_eq!(run(&[&"destroy", &p]).0, 0);
    for w in waiters {
        let out = w.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("destroyed"));
    }
    assert!(destroyed.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_waiter_outlives_the_thread_that_started_it_but_not_its_parent_process() {
    let s = Scratch::new();
    let p = s.path("thread");
    assert_eq!(run(&[&"init", &p, &"0"]).0, 0);
    // PR_SET_PDEATHSIG fires when the forking thread exits; the waiter must not give up
    // while this process, its real parent, lives.
    let p2 = p.clone();
    let mut waiter = std::thread::spawn(move || {
        Command::new(HELPER)
            .arg("wait")
            .arg(&p2)
            .arg("10")
            .spawn()
            .expect("spawn")
    })
    .join()
    .expect("the thread ran");
    let sem = open_with_waiters(&p, 1);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        waiter.try_wait().expect("try_wait").is_none(),
        "the waiter gave up"
    );
    sem.post(1).expect("post");
    assert!(waiter.wait().expect("wait").success());
    assert_eq!(sem.value().expect("value"), 0);
}
