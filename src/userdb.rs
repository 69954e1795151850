//! User and group names, read from `/etc/passwd` and `/etc/group` themselves.
//!
//! The helper is linked statically (`.cargo/config.toml`), and glibc's NSS modules that a
//! static binary loads at run time can crash it: with `group: files systemd` in
//! nsswitch.conf, a name that `files` doesn't know reaches libnss_systemd, which dies of
//! SIGSEGV in a static binary. Names only decorate messages and `status`, and a group
//! given by name must be one of the local files' (a gid always works), so the files are
//! read directly and a miss is simply a miss.

use std::fs;

/// The name and numeric id of each entry of an `/etc/passwd`-style file.
fn entries(path: &str) -> Vec<(String, u32)> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.starts_with(['#', '+', '-']))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next().filter(|n| !n.is_empty())?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_owned(), id))
        })
        .collect()
}

/// The name of user `uid` in `/etc/passwd`.
pub fn user_name(uid: u32) -> Option<String> {
    entries("/etc/passwd")
        .into_iter()
        .find_map(|(n, id)| (id == uid).then_some(n))
}

/// The home directory of user `uid` in `/etc/passwd` (its sixth field), if not empty.
pub fn home_dir(uid: u32) -> Option<std::path::PathBuf> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .filter(|l| !l.starts_with(['#', '+', '-']))
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let id = f.get(2)?.parse::<u32>().ok()?;
            let dir = f.get(5).filter(|d| !d.is_empty())?;
            (id == uid).then(|| std::path::PathBuf::from(dir))
        })
}

/// "uid 65534 (nobody)", or "uid 4242" for a uid missing from `/etc/passwd`.
pub fn describe_user(uid: u32) -> String {
    match user_name(uid) {
        Some(n) => format!("uid {uid} ({n})"),
        None => format!("uid {uid}"),
    }
}

/// The uid of the user called `name` in `/etc/passwd`.
pub fn user_id(name: &str) -> Option<u32> {
    entries("/etc/passwd")
        .into_iter()
        .find_map(|(n, id)| (n == name).then_some(id))
}

/// The name of group `gid` in `/etc/group`.
pub fn group_name(gid: u32) -> Option<String> {
    entries("/etc/group")
        .into_iter()
        .find_map(|(n, id)| (id == gid).then_some(n))
}

/// The gid of the group called `name` in `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    entries("/etc/group")
        .into_iter()
        .find_map(|(n, id)| (n == name).then_some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_and_strangers_are_not() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(home_dir(0).as_deref(), Some(std::path::Path::new("/root")));
        assert_eq!(group_id("no-such-group-here"), None);
        assert_eq!(group_name(4_294_967_294 - 7), None);
    }
}
