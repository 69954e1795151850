//! Random bytes from the kernel.

use nix::errno::Errno;

/// `getrandom(buf, 0)`: fill `buf` from the kernel's random pool.
///
/// # Errors
/// `EINTR`, `ENOSYS` on kernels before 3.17; see getrandom(2).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: `buf` is valid writable memory of the length passed.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    match Errno::result(n)? as usize {
        len if len == buf.len() => Ok(()),
        _ => Err(Errno::EAGAIN),
    }
}
