//! Redis names: `redis://[USER:PASSWORD@]HOST[:PORT][/DB]/NAME`, and `redis:NAME` on the
//! server in `SEM_REDIS_URL`.
//!
//! A password is a secret: it is kept only in the URL the client connects with, never in
//! a label, an error or a `Debug` print.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// The variable that names the server of `redis:NAME`.
pub const URL_ENV: &str = "SEM_REDIS_URL";

/// The longest NAME.
const NAME_MAX: usize = 200;

/// A server: where to connect, and how to show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    /// The URL the client connects with, password included: never shown.
    secret: String,
    /// `redis://HOST:PORT` or `redis://HOST:PORT/DB`: no user, no password.
    shown: String,
    /// The password, to scrub it from any message a server or a library gives back.
    password: Option<String>,
}

impl Server {
    /// Parse `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` (no NAME).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`], saying what is wrong without repeating the URL.
    pub fn parse(url: &str, what: &str) -> Result<Server> {
        let (server, rest) = split_server(url, what)?;
        match rest {
            "" | "/" => Ok(server),
            db if db[1..].bytes().all(|b| b.is_ascii_digit()) && db.len() <= 4 => {
                server.with_db(&db[1..])
            }
            _ => Err(invalid(format!(
                "{what}: a server URL ends after HOST[:PORT] or /DB"
            ))),
        }
    }

    /// This server, database `db`.
    fn with_db(mut self, db: &str) -> Result<Server> {
        let n: u32 = db.parse().map_err(|_| invalid("bad database number"))?;
        if n != 0 {
            self.shown = format!("{}/{n}", self.shown);
        }
        self.secret = format!("{}/{n}", self.secret);
        Ok(self)
    }

    /// Where to connect, password included.
    pub(super) fn secret(&self) -> &str {
        &self.secret
    }

    /// `redis://HOST:PORT[/DB]`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `msg` without the password in it, should a library have quoted it.
    pub(super) fn scrub(&self, msg: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => msg.replace(p.as_str(), "***"),
            _ => msg.to_owned(),
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A semaphore's name on a server.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisName {
    server: Server,
    name: String,
    label: PathBuf,
}

impl fmt::Debug for RedisName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label.display())
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

/// Whether `arg` is a Redis name (or place): `redis:…` or `rediss:…`.
pub fn is_redis(arg: &[u8]) -> bool {
    arg.starts_with(b"redis:") || arg.starts_with(b"rediss:")
}

/// Split `redis://[USER:PASSWORD@]HOST[:PORT]REST` into the server and REST (from its
/// first `/`, or empty).
fn split_server<'a>(url: &'a str, what: &str) -> Result<(Server, &'a str)> {
    // rediss://: TLS, the server's certificate checked against the system's roots (or
    // the file in SSL_CERT_FILE) and its name.
    let (scheme, after) = match (url.strip_prefix("redis://"), url.strip_prefix("rediss://")) {
        (Some(a), _) => ("redis", a),
        (_, Some(a)) => ("rediss", a),
        _ => {
            return Err(invalid(format!(
                "{what}: expected redis://[USER:PASSWORD@]HOST[:PORT][/DB] (or rediss:// for TLS)"
            )))
        }
    };
    let end = after.find('/').unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        // [IPv6]:PORT
        Some(v6) => {
            let close = v6
                .find(']')
                .ok_or_else(|| invalid(format!("{what}: unclosed [ in the host")))?;
            (&hostport[..close + 2], &v6[close + 1..])
        }
        None => match hostport.rfind(':') {
            Some(c) => (&hostport[..c], &hostport[c..]),
            None => (hostport, ""),
        },
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b))
    {
        return Err(invalid(format!("{what}: missing or malformed host")));
    }
    let port: u16 = match port {
        "" => 6379,
        p => p[1..]
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| invalid(format!("{what}: bad port")))?,
    };
    if userinfo.is_some_and(|u| !u.is_empty() && !u.contains(':')) {
        return Err(invalid(format!(
            "{what}: a user needs its password: {scheme}://USER:PASSWORD@HOST (characters such as @ : / in it percent-encoded: %40 %3A %2F)"
        )));
    }
    let password = userinfo.map(|u| match u.find(':') {
        Some(c) => percent_decode(&u[c + 1..]),
        None => String::new(),
    });
    let creds = userinfo.map_or(String::new(), |u| format!("{u}@"));
    let server = Server {
        secret: format!("{scheme}://{creds}{host}:{port}"),
        shown: format!("{scheme}://{host}:{port}"),
        password: password.filter(|p| !p.is_empty()),
    };
    Ok((server, rest))
}

/// `%XX` escapes decoded (what the client will send), to scrub the password as sent.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Check a semaphore's NAME: letters, digits, `.`, `_`, `-`, 1 to 200 bytes.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(invalid(format!(
            "a Redis semaphore's NAME takes 1 to {NAME_MAX} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(invalid(format!(
            "redis:{}: a Redis semaphore's NAME takes letters, digits, '.', '_' and '-', not {c:?}",
            name.escape_default()
        )));
    }
    Ok(())
}

impl RedisName {
    /// Parse `redis://…/NAME` or `redis:NAME`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a malformed name, or `redis:NAME` without
    /// `SEM_REDIS_URL`.
    pub fn parse(arg: &[u8]) -> Result<RedisName> {
        let arg = std::str::from_utf8(arg)
            .map_err(|_| invalid("a Redis name must be UTF-8 (ASCII, in fact)"))?;
        if arg.starts_with("redis://") || arg.starts_with("rediss://") {
            let (server, rest) = split_server(arg, "the Redis name")?;
            let path = rest.strip_prefix('/').unwrap_or("");
            let (server, name) = match path.split_once('/') {
                Some((db, name)) if !db.is_empty() && db.bytes().all(|b| b.is_ascii_digit()) => {
                    (server.with_db(db)?, name)
                }
                Some(_) => {
                    return Err(invalid(
                        "the Redis name: expected redis://HOST[:PORT][/DB]/NAME",
                    ))
                }
                None => (server, path),
            };
            if name.is_empty() {
                return Err(invalid(
                    "the Redis name has no NAME: expected redis://HOST[:PORT][/DB]/NAME",
                ));
            }
            check_name(name)?;
            let label = format!("{}/{name}", server.shown);
            return Ok(RedisName {
                server,
                name: name.to_owned(),
                label: label.into(),
            });
        }
        let name = arg.strip_prefix("redis:").unwrap_or(arg);
        check_name(name)?;
        let url = std::env::var(URL_ENV).map_err(|_| {
            invalid(format!(
                "redis:{name}: set {URL_ENV} to the server (redis://HOST[:PORT][/DB])"
            ))
        })?;
        let server = Server::parse(&url, URL_ENV)?;
        Ok(RedisName {
            server,
            name: name.to_owned(),
            label: format!("redis:{name}").into(),
        })
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// NAME alone.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// As given, without user or password: `redis:NAME` or `redis://HOST:PORT[/DB]/NAME`.
    pub fn shown(&self) -> &Path {
        &self.label
    }

    /// The prefix of the semaphore's keys: `sem:{NAME}:`.
    pub fn prefix(&self) -> String {
        format!("sem:{{{}}}:", self.name)
    }

    /// An error about this name.
    pub fn error(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, self.server.scrub(&msg.into())).at(&self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_parse_and_hide_the_password() {
        let n = RedisName::parse(b"redis://u:s3cret@db.example:7000/2/slots").unwrap();
        assert_eq!(n.shown(), Path::new("redis://db.example:7000/2/slots"));
        assert_eq!(n.name(), "slots");
        assert_eq!(n.server().secret(), "redis://u:s3cret@db.example:7000/2");
        assert!(!format!("{n:?}").contains("s3cret"));
        let e = n.error(ErrorKind::Other, "AUTH s3cret failed");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let n = RedisName::parse(b"redis://127.0.0.1/x").unwrap();
        assert_eq!(n.shown(), Path::new("redis://127.0.0.1:6379/x"));
        let n = RedisName::parse(b"redis://[::1]:6380/x").unwrap();
        assert_eq!(n.server().shown(), "redis://[::1]:6380");
    }

    #[test]
    fn malformed_names_fail_without_echoing_secrets() {
        for bad in [
            &b"redis://u:pw@host:99999/x"[..],
            b"redis://u:pw@/x",
            b"redis://host/",
            b"redis://host/a/b",
            b"redis://host/x y",
            b"redis:",
            b"redis://host/a/b/c",
        ] {
            let e = RedisName::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(!e.to_string().contains("pw"), "{e}");
        }
        let n = RedisName::parse(b"rediss://u:pw@host/x").unwrap();
        assert_eq!(n.shown(), Path::new("rediss://host:6379/x"));
        assert_eq!(n.server().secret(), "rediss://u:pw@host:6379");
    }

    #[test]
    fn server_urls_parse() {
        let s = Server::parse("redis://h:1/3", "X").unwrap();
        assert_eq!(s.shown(), "redis://h:1/3");
        assert!(Server::parse("redis://h:1/x", "X").is_err());
        assert!(Server::parse("http://h", "X").is_err());
        assert_eq!(percent_decode("a%40b"), "a@b");
    }
}
