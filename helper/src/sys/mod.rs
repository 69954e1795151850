//! The only code of the helper with `unsafe`: the process-level system calls its policy
//! needs, one file per facility, one thin, typed function per call. The semaphores' own
//! system calls are the library's (`sem`'s `src/sys/`).
#![allow(unsafe_code)]

mod poll;
mod process;
mod signal;
mod time;

pub use poll::*;
pub use process::*;
pub use signal::*;
pub use time::*;
