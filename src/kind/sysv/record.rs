//! The on-disk record: one line that says which kernel set a name stands for.
//!
//! ```text
//! sem/1 key=0x5f3a9c21 id=32769 boot=0168607f-e148-4e9b-850c-d89014c5b95b ipcns=4026531839 cap=4
//! ```
//!
//! A set id means nothing outside the boot and the IPC namespace that made it, and ids are
//! reused once a set is removed; so the record carries the boot id and the namespace, and
//! the random key the set was created with. A record is believed only when all of them
//! still match (see `semaphore.rs`). The optional last field, `cap`, is the value the set
//! was created with, its capacity: a weighted take larger than that can't succeed and is
//! refused at once. Records written before it existed have no `cap` (capacity unknown).
//! The parser is strict: one exact line, fields in this order, canonical numbers; anything
//! else is not a record.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};
use crate::sys::sysv_sem::{Key, SemId};

/// The current format version, written after `sem/`.
pub const VERSION: u32 = 1;

/// Records larger than this are rejected without being read.
pub const MAX_LEN: u64 = 256;

/// The length of the shortest possible record: `sem/1 key=0x` + 8 hex digits + ` id=` +
/// a digit + ` boot=` + a 36-character UUID + ` ipcns=` + a digit + a newline, with no
/// `cap` field (a record written before capacities were recorded). A shorter
/// file is refused without being opened, which keeps us from reading files whose size
/// says nothing, like those in /proc (reading /proc/kmsg would consume the kernel log).
pub const MIN_LEN: u64 = 76;

/// Where and when the kernel set lives: the boot and the IPC namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `/proc/sys/kernel/random/boot_id`, a lowercase UUID.
    pub boot: String,
    /// The inode number of `/proc/self/ns/ipc`.
    pub ipcns: u64,
}

impl Origin {
    /// The boot and IPC namespace this process runs in.
    ///
    /// # Errors
    /// [`ErrorKind::Other`] when /proc can't tell (not mounted, or an unexpected format).
    pub fn current() -> Result<Origin> {
        let unreadable = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::Other,
                format!("cannot read {what} (is /proc mounted?): {e}"),
            )
        };
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map_err(|e| unreadable("the boot id", e))?;
        let boot = boot.trim_end_matches('\n');
        let ns = std::fs::read_link("/proc/self/ns/ipc")
            .map_err(|e| unreadable("the IPC namespace", e))?;
        let ipcns = ns
            .to_str()
            .and_then(|s| s.strip_prefix("ipc:["))
            .and_then(|s| s.strip_suffix(']'))
            .and_then(canonical_u64);
        match ipcns {
            Some(ipcns) if is_uuid(boot) => Ok(Origin {
                boot: boot.to_owned(),
                ipcns,
            }),
            _ => Err(Error::new(
                ErrorKind::Other,
                "unexpected format of the boot id or IPC namespace in /proc",
            )),
        }
    }
}

/// A parsed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The random key the set was created with.
    pub key: Key,
    /// The set's id when the record was written.
    pub id: SemId,
    /// The boot and namespace the set was created in.
    pub origin: Origin,
    /// The value the set was created with (0..=32767), if the record says: its capacity.
    pub capacity: Option<u16>,
}

impl fmt::Display for Record {
    /// The exact line written to disk, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sem/{VERSION} key={:#010x} id={} boot={} ipcns={}",
            self.key.0 as u32, self.id.0, self.origin.boot, self.origin.ipcns
        )?;
        if let Some(cap) = self.capacity {
            write!(f, " cap={cap}")?;
        }
        writeln!(f)
    }
}

/// Why bytes are not a record we can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A well-formed `sem/N` record of another format version.
    OtherVersion(String),
    /// Not a record at all.
    Malformed,
}

impl Record {
    /// Parse the exact bytes of a record file.
    ///
    /// # Errors
    /// [`ParseError::OtherVersion`] for a record of another format version;
    /// [`ParseError::Malformed`] for anything else that isn't exactly one record line.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Record, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::Malformed)?;
        let line = text.strip_suffix('\n').ok_or(ParseError::Malformed)?;
        if line.contains(['\n', '\r', '\0']) {
            return Err(ParseError::Malformed);
        }
        let mut fields = line.split(' ');
        let version = fields
            .next()
            .and_then(|v| v.strip_prefix("sem/"))
            .ok_or(ParseError::Malformed)?;
        match canonical_u64(version) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(_) => return Err(ParseError::OtherVersion(version.to_owned())),
            None => return Err(ParseError::Malformed),
        }
        let mut field = |name: &str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(name))
                .and_then(|f| f.strip_prefix('='))
                .ok_or(ParseError::Malformed)
        };
        let key = field("key")?;
        let id = field("id")?;
        let boot = field("boot")?;
        let ipcns = field("ipcns")?;
        // The one optional field, last: absent in records written before it existed.
        let capacity = match fields.next() {
            None => None,
            Some(f) => Some(
                f.strip_prefix("cap=")
                    .and_then(canonical_u64)
                    .filter(|&c| c <= u64::from(crate::parse::MAX_VALUE))
                    .ok_or(ParseError::Malformed)? as u16,
            ),
        };
        if fields.next().is_some() {
            return Err(ParseError::Malformed);
        }
        let key = key
            .strip_prefix("0x")
            .filter(|k| k.len() == 8 && k.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|k| u32::from_str_radix(k, 16).ok())
            .filter(|&k| k != 0)
            .ok_or(ParseError::Malformed)?;
        let id = canonical_u64(id)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or(ParseError::Malformed)?;
        let ipcns = canonical_u64(ipcns).ok_or(ParseError::Malformed)?;
        if !is_uuid(boot) {
            return Err(ParseError::Malformed);
        }
        Ok(Record {
            key: Key(key as i32),
            id: SemId(id),
            origin: Origin {
                boot: boot.to_owned(),
                ipcns,
            },
            capacity,
        })
    }
}

/// A decimal number without sign or leading zeros.
fn canonical_u64(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// A lowercase 8-4-4-4-12 hex UUID.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            key: Key(0x5f3a9c21),
            id: SemId(32769),
            origin: Origin {
                boot: "0168607f-e148-4e9b-850c-d89014c5b95b".into(),
                ipcns: 4026531839,
            },
            capacity: None,
        }
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let line = r.to_string();
        assert_eq!(
            line,
            "sem/1 key=0x5f3a9c21 id=32769 boot=0168607f-e148-4e9b-850c-d89014c5b95b ipcns=4026531839\n"
        );
        assert_eq!(Record::parse(line.as_bytes()).unwrap(), r);
        let high = Record { key: Key(-2), ..r };
        assert_eq!(Record::parse(high.to_string().as_bytes()).unwrap(), high);
    }

    #[test]
    fn round_trip_with_a_capacity() {
        for cap in [0, 4, 32767] {
            let r = Record {
                capacity: Some(cap),
                ..sample()
            };
            let line = r.to_string();
            assert_eq!(
                line,
                format!("sem/1 key=0x5f3a9c21 id=32769 boot=0168607f-e148-4e9b-850c-d89014c5b95b ipcns=4026531839 cap={cap}\n")
            );
            assert_eq!(Record::parse(line.as_bytes()).unwrap(), r);
            assert!(line.len() as u64 <= MAX_LEN);
        }
    }

    #[test]
    fn strictness() {
        let good = sample().to_string();
        let bad = [
            String::new(),
            good.trim_end().to_owned(),
            format!("{good}\n"),
            good.replace(' ', "  "),
            good.replace("id=32769", "id=032769"),
            good.replace("id=32769", "id=-1"),
            good.replace("id=32769", "id=2147483648"),
            good.replace("0x5f3a9c21", "0x5F3A9C21"),
            good.replace("0x5f3a9c21", "0x00000000"),
            good.replace("0x5f3a9c21", "0x5f3a9c2"),
            good.replace("ipcns=", "ns="),
            good.replace("-e148-", "xe148-"),
            good.replace('\n', " extra\n"),
            good.replace('\n', "\r\n"),
            good[..good.len() / 2].to_owned(),
            "sem/x key=1\n".into(),
        ];
        for b in &bad {
            assert_eq!(
                Record::parse(b.as_bytes()),
                Err(ParseError::Malformed),
                "{b:?}"
            );
        }
        assert_eq!(Record::parse(b"\xff\xfe\n"), Err(ParseError::Malformed));
        assert_eq!(
            Record::parse(good.replace("sem/1", "sem/2").as_bytes()),
            Err(ParseError::OtherVersion("2".into()))
        );
    }

    #[test]
    fn strictness_of_the_capacity() {
        let good = Record {
            capacity: Some(4),
            ..sample()
        }
        .to_string();
        assert!(Record::parse(good.as_bytes()).is_ok());
        let bad = [
            good.replace(" cap=4", " cap=04"),
            good.replace(" cap=4", " cap=-4"),
            good.replace(" cap=4", " cap=+4"),
            good.replace(" cap=4", " cap="),
            good.replace(" cap=4", " cap=32768"),
            good.replace(" cap=4", " cap=99999999999999999999"),
            good.replace(" cap=4", " cap=0x4"),
            good.replace(" cap=4", " cap=4 "),
            good.replace(" cap=4", "  cap=4"),
            good.replace(" cap=4", " cap=4 cap=4"),
            good.replace(" cap=4", " capacity=4"),
            good.replace(" cap=4", " CAP=4"),
            good.replace(" cap=4", " cap=4 extra"),
            good.replace(" cap=4", " "),
            // Out of order: the capacity comes last.
            good.replace(" ipcns=4026531839 cap=4", " cap=4 ipcns=4026531839"),
        ];
        for b in &bad {
            assert_eq!(
                Record::parse(b.as_bytes()),
                Err(ParseError::Malformed),
                "{b:?}"
            );
        }
        let max = good.replace(" cap=4", " cap=32767");
        assert_eq!(Record::parse(max.as_bytes()).unwrap().capacity, Some(32767));
        let zero = good.replace(" cap=4", " cap=0");
        assert_eq!(Record::parse(zero.as_bytes()).unwrap().capacity, Some(0));
    }

    #[test]
    fn the_shortest_record_is_min_len_long() {
        let short = Record {
            key: Key(1),
            id: SemId(0),
            origin: Origin {
                ipcns: 0,
                ..sample().origin
            },
            capacity: None,
        };
        let line = short.to_string();
        assert_eq!(line.len() as u64, MIN_LEN, "{line:?}");
        assert!(sample().to_string().len() as u64 >= MIN_LEN);
        let longest = Record {
            key: Key(-1),
            id: SemId(i32::MAX),
            origin: Origin {
                ipcns: u64::MAX,
                ..sample().origin
            },
            capacity: Some(crate::parse::MAX_VALUE),
        };
        assert!(longest.to_string().len() as u64 <= MAX_LEN);
    }

    #[test]
    fn current_origin_is_readable() {
        let o = Origin::current().unwrap();
        assert!(is_uuid(&o.boot));
    }
}
