//! The record writer and parser together, on arbitrary field values: every record sem
//! can write (non-zero key, non-negative id, a lowercase UUID boot id, any namespace inode,
//! a capacity of 0..=32767 or none) parses back to itself, and changing any one byte of its line never yields a different
//! record that writes back to the original line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sem::fuzzing::{Key, Origin, Record, SemId, MAX_LEN};

fuzz_target!(|input: (u32, u32, [u8; 16], u64, Option<u16>, u16, u8)| {
    let (key, id, boot, ipcns, capacity, at, byte) = input;
    let key = if key == 0 { 1 } else { key };
    let hex: String = boot.iter().map(|b| format!("{b:02x}")).collect();
    let boot = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let rec = Record {
        key: Key(key as i32),
        id: SemId((id & 0x7fff_ffff) as i32),
        origin: Origin { boot, ipcns },
        capacity: capacity.map(|c| c & 0x7fff),
    };
    let line = rec.to_string();
    assert!(
        line.len() as u64 <= MAX_LEN,
        "a written record is over MAX_LEN: {line:?}"
    );
    assert_eq!(Record::parse(line.as_bytes()), Ok(rec.clone()), "{line:?}");

    // One byte changed: either refused, or a record whose own line is the changed line.
    let mut changed = line.into_bytes();
    let i = usize::from(at) % changed.len();
    if changed[i] == byte {
        return;
    }
    changed[i] = byte;
    if let Ok(other) = Record::parse(&changed) {
        assert_ne!(other, rec);
        assert_eq!(other.to_string().as_bytes(), &changed[..]);
    }
});
