//! Semaphore names: a name is a path, and the file at that path is the semaphore's record.
//!
//! A relative name resolves under `$HOME` (or, when HOME is unset or empty, the home
//! directory in `/etc/passwd`). An absolute name is used as is. Only the last
//! component is the name: symbolic links there are never followed, while the directories
//! above it are resolved normally.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// A resolved semaphore name: the directory that holds the record, and the record's file
/// name inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathName {
    path: PathBuf,
    dir: PathBuf,
    file: OsString,
}

impl PathName {
    /// Resolve `name` as described in the module docs.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty name, one that ends in `/`, or one whose
    /// last component is `.` or `..`; [`ErrorKind::NotFound`] when a relative name needs a
    /// home directory and there is none.
    pub fn resolve(name: &OsStr) -> Result<PathName> {
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "empty semaphore name"));
        }
        let path = Path::new(name);
        if bytes.ends_with(b"/") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a semaphore name must not end in '/'",
            )
            .at(path));
        }
        let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
        if last == b"." || last == b".." {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a semaphore name must not end in '.' or '..'",
            )
            .at(path));
        }
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            home_dir()?.join(path)
        };
        // Both unwraps hold: the path is absolute and its last component is a normal one.
        let dir = path
            .parent()
            .expect("an absolute path with a file name has a parent");
        let file = path.file_name().expect("the last component is not . or ..");
        Ok(PathName {
            dir: dir.to_path_buf(),
            file: file.to_os_string(),
            path,
        })
    }

    /// The full path of the record.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds the record.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record's file name within [`PathName::dir`].
    pub fn file(&self) -> &OsStr {
        &self.file
    }
}

/// `$HOME` if set and non-empty, else our uid's home directory in `/etc/passwd`.
fn home_dir() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    // The local file, not NSS: see `userdb` for why a static helper avoids NSS.
    let uid = nix::unistd::geteuid();
    match crate::userdb::home_dir(uid.as_raw()) {
        Some(dir) => Ok(dir),
        None => Err(Error::new(
            ErrorKind::NotFound,
            format!("HOME is not set and uid {uid} has no home directory in /etc/passwd"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> ErrorKind {
        PathName::resolve(OsStr::new(s)).unwrap_err().kind()
    }

    #[test]
    fn absolute_names_are_used_as_is() {
        let n = PathName::resolve(OsStr::new("/tmp/a b/ü")).unwrap();
        assert_eq!(n.path(), Path::new("/tmp/a b/ü"));
        assert_eq!(n.dir(), Path::new("/tmp/a b"));
        assert_eq!(n.file(), OsStr::new("ü"));
    }

    #[test]
    fn bad_names() {
        for bad in ["", "/", "a/", "/tmp/", ".", "..", "/tmp/..", "a/."] {
            assert_eq!(kind(bad), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn non_utf8_names_work() {
        let raw = OsStr::from_bytes(b"/tmp/\xff\xfe");
        let n = PathName::resolve(raw).unwrap();
        assert_eq!(n.file().as_bytes(), b"\xff\xfe");
    }
}
