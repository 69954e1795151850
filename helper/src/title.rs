//! Keeping passwords out of process titles: a Redis URL given on the command line
//! (`redis://USER:PASSWORD@HOST/NAME`) would show its password to every user of the
//! machine in ps(1). Once the arguments are read, the password's bytes in our command
//! line are overwritten with `*`. (The README recommends `redis:NAME` with the URL in
//! `SEM_REDIS_URL`, which no other user can read, since the arguments are visible for the
//! moment between exec and this.)

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// Where the password of a `redis://` or `rediss://` URL lies in `arg`, if it has one.
fn password_in(arg: &[u8]) -> Option<std::ops::Range<usize>> {
    let scheme = ["redis://", "rediss://"]
        .iter()
        .find(|s| arg.starts_with(s.as_bytes()))?;
    let start = scheme.len();
    let end = arg[start..]
        .iter()
        .position(|&b| b == b'/')
        .map_or(arg.len(), |p| start + p);
    let authority = &arg[start..end];
    let at = authority.iter().rposition(|&b| b == b'@')?;
    let colon = authority[..at].iter().position(|&b| b == b':')?;
    let range = start + colon + 1..start + at;
    (!range.is_empty()).then_some(range)
}

/// Blank the passwords of every Redis URL in our command line (`args` as read).
pub fn hide_passwords(args: &[OsString]) {
    if !args.iter().any(|a| password_in(a.as_bytes()).is_some()) {
        return;
    }
    let Ok(line) = std::fs::read("/proc/self/cmdline") else {
        return;
    };
    // The command line as the kernel holds it must be the arguments we read, NUL-separated.
    let mut offset = 0;
    for (arg, held) in args.iter().zip(line.split(|&b| b == 0)) {
        if arg.as_bytes() != held {
            return;
        }
        if let Some(r) = password_in(held) {
            crate::sys::blank_command_line(offset + r.start, r.len());
        }
        offset += held.len() + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::password_in;

    #[test]
    fn finds_passwords_only_in_redis_urls() {
        assert_eq!(password_in(b"redis://u:pw@h/x"), Some(10..12));
        assert_eq!(password_in(b"redis://:pw@h:1/0/x"), Some(9..11));
        assert_eq!(password_in(b"redis://u@h/x"), None);
        assert_eq!(password_in(b"redis://h/x"), None);
        assert_eq!(password_in(b"/tmp/u:pw@h"), None);
    }
}
