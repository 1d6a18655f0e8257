//! The only unsafe code of the crate: borrowing the file descriptor a Python socket object owns.

use std::os::fd::{BorrowedFd, RawFd};

/// Borrows `fd`, the descriptor of the Python socket object `_owner` (`fd >= 0`, checked by the
/// caller when the socket was wrapped).
pub fn borrow_socket_fd<'a>(fd: RawFd, _owner: &'a pyo3::Py<pyo3::PyAny>) -> BorrowedFd<'a> {
    // SAFETY: `fd` was read from the `fileno()` of the socket object `_owner`, which stays alive
    // (and open: the worker closes it only after the last transport holding it was taken back
    // from the request) for the lifetime 'a of the borrow; the caller checked fd >= 0.
    unsafe { BorrowedFd::borrow_raw(fd) }
}
