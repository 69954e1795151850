//! A System V name's resolution (`PathName::resolve`) against its specification, for any HOME and any name bytes: empty
//! names, names ending in `/` and names whose last component is `.` or `..` are invalid
//! input (with a one-line message); any other name resolves to itself when absolute and
//! to `$HOME/NAME` when relative, its file is the last component, and its directory joined
//! with its file is its path.
//!
//! The input is HOME's bytes, a NUL byte, then the name's bytes (no NUL: a HOME of the
//! default below).
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sem::kind::sysv::path::PathName as Name;
use sem::ErrorKind;

fuzz_target!(|data: &[u8]| {
    let (home, name) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (&b"/home/fuzz"[..], data),
    };
    // An empty HOME means "ask the password database", which is not what is tested here;
    // std refuses a NUL in an environment variable; the name may hold anything.
    if home.is_empty() || home.contains(&0) {
        return;
    }
    // The fuzzer runs one input at a time in one thread.
    std::env::set_var("HOME", OsStr::from_bytes(home));

    let last = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let invalid = name.is_empty() || name.ends_with(b"/") || last == b"." || last == b"..";
    match Name::resolve(OsStr::from_bytes(name)) {
        Ok(n) => {
            assert!(!invalid, "accepted {name:?}");
            assert_eq!(n.file().as_bytes(), last, "{name:?}");
            let want = if name.starts_with(b"/") {
                Path::new(OsStr::from_bytes(name)).to_path_buf()
            } else {
                Path::new(OsStr::from_bytes(home)).join(OsStr::from_bytes(name))
            };
            assert_eq!(n.path(), want, "{name:?}");
            assert_eq!(n.dir().join(n.file()), n.path(), "{name:?}");
        }
        Err(e) => {
            assert!(invalid, "refused {name:?}: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name:?}: {e}");
            let msg = e.to_string();
            assert!(!msg.contains(['\n', '\r']), "a multi-line message: {msg:?}");
        }
    }
});
