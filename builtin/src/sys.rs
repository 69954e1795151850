//! Bash's side of the builtin: its loadable-builtin ABI and the signal state we read. The
//! only unsafe code of this crate.
//!
//! The ABI is written by hand from bash 5.2's headers (Debian's bash-builtins,
//! /usr/include/bash): builtins.h (`struct builtin`), command.h (`WORD_DESC`,
//! `WORD_LIST`), sig.h and quit.h (`interrupt_state`, `terminating_signal`), trap.c
//! (`pending_traps`, in no shipped header). `builtin/abi-check.sh` compiles a C file
//! against the real headers and compares sizes and offsets with [`tests::abi_layout`].
//!
//! Bash's data is not linked against: it is looked up with `dlsym(RTLD_DEFAULT)` when
//! `enable -f` loads us ([`resolve`]), so that the library still loads into a bash that
//! lacks a symbol, and refuses the load cleanly there (sem.sh then uses the helper).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// `WORD_DESC` (command.h).
#[repr(C)]
pub struct WordDesc {
    pub word: *mut c_char,
    pub flags: c_int,
}

/// `WORD_LIST` (command.h).
#[repr(C)]
pub struct WordList {
    pub next: *mut WordList,
    pub word: *mut WordDesc,
}

/// `sh_builtin_func_t` (general.h): `int (WORD_LIST *)`.
pub type BuiltinFunc = unsafe extern "C" fn(*mut WordList) -> c_int;

/// `struct builtin` (builtins.h). Bash writes `flags` and `handle` of the struct it finds
/// by dlsym, so it must live in writable memory: a `static mut`, not a `static` (which
/// rustc places in .data.rel.ro, where bash's write faults).
#[repr(C)]
pub struct Builtin {
    pub name: *const c_char,
    pub function: Option<BuiltinFunc>,
    pub flags: c_int,
    pub long_doc: *const *const c_char,
    pub short_doc: *const c_char,
    pub handle: *mut c_char,
}

/// builtins.h
pub const BUILTIN_ENABLED: c_int = 0x01;

/// A documentation array: NULL-terminated pointers to static C strings.
#[repr(transparent)]
pub struct Doc<const N: usize>(pub [*const c_char; N]);
// SAFETY: the pointers are to 'static, immutable C string literals (or null).
unsafe impl<const N: usize> Sync for Doc<N> {}

/// `int pending_traps[NSIG]` has 65 entries on Linux (NSIG); we read only standard
/// signals, far below.
const PENDING_TRAPS_LEN: usize = 65;

/// variables.c: `char *get_string_value(const char *)`, a shell variable's value or NULL.
type GetStringValue = unsafe extern "C" fn(*const c_char) -> *mut c_char;
static GET_STRING_VALUE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

static INTERRUPT_STATE: AtomicPtr<c_int> = AtomicPtr::new(ptr::null_mut());
static TERMINATING_SIGNAL: AtomicPtr<c_int> = AtomicPtr::new(ptr::null_mut());
static PENDING_TRAPS: AtomicPtr<c_int> = AtomicPtr::new(ptr::null_mut());

/// The address of bash's global `name`, or null.
fn symbol(name: &CStr) -> *mut c_int {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only searches the loaded
    // objects; it returns null when there is no such symbol.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }.cast()
}

/// Find bash's signal state (sig.c, trap.c) and its variable lookup (variables.c).
/// Returns the name of the first symbol that is missing, in which case the builtin must
/// not load.
pub fn resolve() -> Result<(), &'static str> {
    let get = symbol(c"get_string_value");
    if get.is_null() {
        return Err("get_string_value");
    }
    GET_STRING_VALUE.store(get.cast(), Ordering::Relaxed);
    let found = [
        (&INTERRUPT_STATE, c"interrupt_state", "interrupt_state"),
        (
            &TERMINATING_SIGNAL,
            c"terminating_signal",
            "terminating_signal",
        ),
        (&PENDING_TRAPS, c"pending_traps", "pending_traps"),
    ];
    for (slot, sym, name) in found {
        let p = symbol(sym);
        if p.is_null() {
            return Err(name);
        }
        slot.store(p, Ordering::Relaxed);
    }
    Ok(())
}

/// The value of the shell variable `name` (exported or not), or None when it is unset
/// (or before [`resolve`]).
pub fn shell_var(name: &CStr) -> Option<Vec<u8>> {
    let f = GET_STRING_VALUE.load(Ordering::Relaxed);
    if f.is_null() {
        return None;
    }
    // SAFETY: f is bash's get_string_value, found by dlsym in this process, whose type is
    // `char *(const char *)` (variables.h); it reads the variable table and returns the
    // value's own string (not a copy) or NULL, valid until the variable changes, which
    // can't happen before we copy it: bash runs no other code during our call.
    let value = unsafe {
        let get: GetStringValue = std::mem::transmute::<*mut c_void, GetStringValue>(f);
        get(name.as_ptr())
    };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-null value from get_string_value is a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(value) }.to_bytes().to_vec())
}

/// A volatile read of one of bash's `volatile sig_atomic_t` flags; 0 before [`resolve`].
fn flag(slot: &AtomicPtr<c_int>, index: usize) -> c_int {
    let p = slot.load(Ordering::Relaxed);
    if p.is_null() {
        return 0;
    }
    // SAFETY: p is the address dlsym gave for one of bash's int globals (or its int array,
    // whose callers pass an index below PENDING_TRAPS_LEN); it lives as long as the
    // process, is aligned, and a volatile read of an int can't tear.
    unsafe { ptr::read_volatile(p.add(index)) }
}

/// sig.c's `interrupt_state`: bash's SIGINT handler set it (an interactive shell, or any
/// shell waiting for a foreground child).
pub fn interrupt() -> c_int {
    flag(&INTERRUPT_STATE, 0)
}

/// sig.c's `terminating_signal`: a fatal signal (HUP, TERM in an interactive shell...)
/// that bash will die of at its next check.
pub fn terminating() -> c_int {
    flag(&TERMINATING_SIGNAL, 0)
}

/// trap.c's `pending_traps[sig]`: how many deliveries of trapped signal `sig` wait for
/// their trap to run (trap_handler sets nothing else we could read).
pub fn pending_trap(sig: c_int) -> c_int {
    match usize::try_from(sig) {
        Ok(i) if i < PENDING_TRAPS_LEN => flag(&PENDING_TRAPS, i),
        _ => 0,
    }
}

/// The words of `list`, as byte strings.
///
/// # Safety
/// `list` is null or a WORD_LIST that bash built, with non-null words.
pub unsafe fn words(mut list: *const WordList) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !list.is_null() {
        // SAFETY: the caller's promise: a valid WORD_LIST node with a valid WORD_DESC
        // whose word is a NUL-terminated string.
        let (word, next) = unsafe { (CStr::from_ptr((*(*list).word).word), (*list).next) };
        out.push(word.to_bytes().to_vec());
        list = next;
    }
    out
}

/// `help __sem`: what the builtin is, for people who meet it.
static LONG_DOC: Doc<4> = Doc([
    c"sem.sh's quick operations (post, trywait, wait, peek, relax) on System V".as_ptr(),
    c"semaphores, in this shell's own process. Called by sem.sh's functions; not".as_ptr(),
    c"meant to be called directly. SEM_BUILTIN=0 before sourcing sem.sh turns it off.".as_ptr(),
    ptr::null(),
]);

/// What `enable -f LIB __sem` looks up: `<name>_struct`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut __sem_struct: Builtin = Builtin {
    name: c"__sem".as_ptr(),
    function: Some(entry),
    flags: BUILTIN_ENABLED,
    long_doc: ptr::addr_of!(LONG_DOC).cast(),
    short_doc: c"__sem OP [--] NAME [ARG] (sem.sh's, see help __sem)".as_ptr(),
    handle: ptr::null_mut(),
};

/// Called by `enable -f` once it found `__sem_struct`; 0 refuses the load.
#[no_mangle]
pub extern "C" fn __sem_builtin_load(_name: *const c_char) -> c_int {
    catch_unwind(crate::load).unwrap_or(0)
}

/// Called by `enable -d __sem` before bash unloads us.
#[no_mangle]
pub extern "C" fn __sem_builtin_unload(_name: *const c_char) {
    let _ = catch_unwind(crate::unload);
}

/// The function bash calls for `__sem ARGS`. Nothing unwinds out of it: a panic (its
/// one line printed by the hook that [`crate::load`] set) becomes status 7.
unsafe extern "C" fn entry(list: *mut WordList) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: bash hands us the WORD_LIST of this command's words (null for none).
        let args = unsafe { words(list) };
        crate::run(&args)
    }))
    .unwrap_or(crate::status::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Printed for abi-check.sh, which diffs it with what the C headers say.
    #[test]
    fn abi_layout() {
        println!(
            "abi builtin {} {} {} {} {} {} {}",
            size_of::<Builtin>(),
            offset_of!(Builtin, name),
            offset_of!(Builtin, function),
            offset_of!(Builtin, flags),
            offset_of!(Builtin, long_doc),
            offset_of!(Builtin, short_doc),
            offset_of!(Builtin, handle)
        );
        fn field<T, F>(_: fn(&T) -> &F) -> usize {
            size_of::<F>()
        }
        println!(
            "abi int-fields {} {}",
            field(|b: &Builtin| &b.flags),
            field(|w: &WordDesc| &w.flags)
        );
        println!(
            "abi word_desc {} {} {}",
            size_of::<WordDesc>(),
            offset_of!(WordDesc, word),
            offset_of!(WordDesc, flags)
        );
        println!(
            "abi word_list {} {} {}",
            size_of::<WordList>(),
            offset_of!(WordList, next),
            offset_of!(WordList, word)
        );
        println!("abi sig_atomic_t {}", size_of::<c_int>());
        println!("abi BUILTIN_ENABLED {BUILTIN_ENABLED}");
    }

    #[test]
    fn unresolved_state_reads_as_no_signal() {
        // In a test binary there is no bash: before resolve() every read is 0.
        assert_eq!(interrupt(), 0);
        assert_eq!(terminating(), 0);
        assert_eq!(pending_trap(libc::SIGINT), 0);
        assert_eq!(pending_trap(-1), 0);
        assert_eq!(pending_trap(65), 0);
        assert_eq!(shell_var(c"HOME"), None);
    }

    #[test]
    fn words_of_a_list() {
        let mut a = *b"post\0";
        let mut b = *b"/tmp/x\0";
        let mut wa = WordDesc {
            word: a.as_mut_ptr().cast(),
            flags: 0,
        };
        let mut wb = WordDesc {
            word: b.as_mut_ptr().cast(),
            flags: 0,
        };
        let mut lb = WordList {
            next: ptr::null_mut(),
            word: &mut wb,
        };
        let la = WordList {
            next: &mut lb,
            word: &mut wa,
        };
        // SAFETY: a well-formed two-word list built above.
        let w = unsafe { words(&la) };
        assert_eq!(w, vec![b"post".to_vec(), b"/tmp/x".to_vec()]);
        // SAFETY: null is an empty list.
        assert!(unsafe { words(ptr::null()) }.is_empty());
    }
}
