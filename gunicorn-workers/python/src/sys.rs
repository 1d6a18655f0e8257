//! The only unsafe code of the crate: the CPython C-API calls pyo3 does not wrap, namely
//! initialization from a `PyConfig` (so the embedded interpreter finds the user's prefix and
//! virtualenv), the `PyOS_*Fork` calls that bracket a `fork()` done by the Rust arbiter, and
//! writes to descriptors owned elsewhere (`sendfile` from a Python file, the timeout's 500).

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;

/// True once `Py_Initialize*` has run in this process (or in the parent before `fork()`).
pub fn is_initialized() -> bool {
    // SAFETY: Py_IsInitialized may be called at any time, with or without the GIL.
    unsafe { ffi::Py_IsInitialized() != 0 }
}

/// CPython could not be initialized.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A failed `PyStatus` without a message: the exit code it asked for.
    #[cfg(not(Py_LIMITED_API))]
    #[error("Python initialization failed (exit code {0})")]
    ExitCode(std::ffi::c_int),
    /// A failed `PyStatus`: CPython's message.
    #[cfg(not(Py_LIMITED_API))]
    #[error("{0}")]
    Status(String),
    /// The stable-ABI build has no `PyConfig` to initialize from.
    #[cfg(Py_LIMITED_API)]
    #[error("this build runs only as the gunicorn._native extension module, inside Python")]
    StableAbi,
}

#[cfg(not(Py_LIMITED_API))]
fn status_error(status: ffi::PyStatus) -> Option<InitError> {
    // SAFETY: PyStatus_Exception only inspects the plain struct it is given.
    if unsafe { ffi::PyStatus_Exception(status) } == 0 {
        return None;
    }
    if status.err_msg.is_null() {
        return Some(InitError::ExitCode(status.exitcode));
    }
    // SAFETY: err_msg is a static NUL-terminated C string owned by CPython.
    let msg = unsafe { CStr::from_ptr(status.err_msg) };
    Some(InitError::Status(msg.to_string_lossy().into_owned()))
}

/// Initializes CPython with `program_name` and `executable` set to `executable` (when given), so
/// CPython's own path calculation finds the prefix, the standard library and any `pyvenv.cfg`
/// next to it. Python does not install its signal handlers (the arbiter and workers own
/// signals). `sys.argv` is `argv`. On success the GIL is released, as pyo3 expects.
#[cfg(Py_LIMITED_API)]
pub fn initialize(_executable: Option<&CStr>, _argv: &[CString]) -> Result<(), InitError> {
    // The stable-ABI build is the extension module of the Python package: it always runs inside
    // an interpreter that is already initialized, and `PyConfig` is not part of the stable ABI.
    Err(InitError::StableAbi)
}

/// See the stable-ABI variant above for the extension module.
#[cfg(not(Py_LIMITED_API))]
pub fn initialize(executable: Option<&CStr>, argv: &[CString]) -> Result<(), InitError> {
    let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::uninit();
    // SAFETY: PyConfig_InitPythonConfig fully initializes the struct it is given.
    unsafe { ffi::PyConfig_InitPythonConfig(config.as_mut_ptr()) };
    // SAFETY: initialized just above.
    let mut config = unsafe { config.assume_init() };
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    let result = (|| {
        if let Some(exe) = executable {
            // SAFETY: config is initialized; the field pointers belong to it; exe is NUL-terminated.
            let status = unsafe {
                ffi::PyConfig_SetBytesString(&mut config, &mut config.program_name, exe.as_ptr())
            };
            if let Some(e) = status_error(status) {
                return Err(e);
            }
            // SAFETY: as above.
            let status = unsafe {
                ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, exe.as_ptr())
            };
            if let Some(e) = status_error(status) {
                return Err(e);
            }
        }
        let mut ptrs: Vec<*const std::ffi::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: ptrs holds argv.len() valid NUL-terminated strings that outlive the call
        // (CPython copies them).
        let status = unsafe {
            ffi::PyConfig_SetBytesArgv(
                &mut config,
                ptrs.len() as ffi::Py_ssize_t,
                ptrs.as_mut_ptr(),
            )
        };
        if let Some(e) = status_error(status) {
            return Err(e);
        }
        // SAFETY: config is a fully set-up PyConfig; the interpreter is not initialized yet
        // (checked by the caller).
        let status = unsafe { ffi::Py_InitializeFromConfig(&config) };
        if let Some(e) = status_error(status) {
            return Err(e);
        }
        Ok(())
    })();
    // SAFETY: config was initialized by PyConfig_InitPythonConfig; Clear frees its strings.
    unsafe { ffi::PyConfig_Clear(&mut config) };
    result?;
    // SAFETY: this thread holds the GIL right after Py_InitializeFromConfig; releasing it lets
    // pyo3's `Python::attach` take it from any thread. The thread state is kept by CPython and
    // found again by PyGILState_Ensure on this thread.
    unsafe { ffi::PyEval_SaveThread() };
    Ok(())
}

/// Whether `before_fork` took the GIL (PyGILState_LOCKED = it was already ours).
static HELD_BY_FORK: AtomicBool = AtomicBool::new(false);
static FORK_GIL_WAS_UNLOCKED: AtomicBool = AtomicBool::new(false);

/// Takes the GIL and runs `PyOS_BeforeFork` (Python's `os.register_at_fork(before=...)` hooks,
/// import lock). Call right before `fork()`; pair with one of the `after_fork_*` functions.
pub fn before_fork() {
    if !is_initialized() {
        return;
    }
    // SAFETY: the interpreter is initialized; PyGILState_Ensure works from any thread.
    let state = unsafe { ffi::PyGILState_Ensure() };
    FORK_GIL_WAS_UNLOCKED.store(
        matches!(state, ffi::PyGILState_STATE::PyGILState_UNLOCKED),
        Ordering::SeqCst,
    );
    // SAFETY: the GIL is held, as PyOS_BeforeFork requires.
    unsafe { ffi::PyOS_BeforeFork() };
    HELD_BY_FORK.store(true, Ordering::SeqCst);
}

fn release_fork_gil() {
    let state = if FORK_GIL_WAS_UNLOCKED.load(Ordering::SeqCst) {
        ffi::PyGILState_STATE::PyGILState_UNLOCKED
    } else {
        ffi::PyGILState_STATE::PyGILState_LOCKED
    };
    // SAFETY: pairs with the PyGILState_Ensure of before_fork on this thread.
    unsafe { ffi::PyGILState_Release(state) };
}

/// In the master after `fork()`: `PyOS_AfterFork_Parent`, then gives the GIL back.
pub fn after_fork_parent() {
    if !HELD_BY_FORK.swap(false, Ordering::SeqCst) {
        return;
    }
    // SAFETY: before_fork took the GIL and ran PyOS_BeforeFork on this thread.
    unsafe { ffi::PyOS_AfterFork_Parent() };
    release_fork_gil();
}

/// In the child after `fork()`: `PyOS_AfterFork_Child` (re-initializes the runtime's locks and
/// threads, runs `register_at_fork(after_in_child=...)`), then gives the GIL back.
pub fn after_fork_child() {
    if !HELD_BY_FORK.swap(false, Ordering::SeqCst) {
        return;
    }
    // SAFETY: the forking thread held the GIL (before_fork), which is now this child's only thread.
    unsafe { ffi::PyOS_AfterFork_Child() };
    release_fork_gil();
}

/// `sendfile(2)` from a file descriptor owned by a Python file object (`filelike.fileno()`).
/// `offset` is advanced; the file's own position is not changed.
pub fn sendfile_from_python_fd(
    out: std::os::fd::BorrowedFd<'_>,
    in_fd: std::os::fd::RawFd,
    offset: &mut i64,
    count: usize,
) -> nix::Result<usize> {
    // SAFETY: `in_fd` comes from `fileno()` of a Python file object the caller keeps alive (and
    // does not close) for the duration of this call, so the descriptor stays open and valid.
    let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(in_fd) };
    let mut off: libc::off_t = *offset as libc::off_t;
    let r = nix::sys::sendfile::sendfile(out, file, Some(&mut off), count);
    *offset = off as i64;
    r
}

/// Writes all of `data` to the open descriptor `fd`, which another part of the process owns
/// (the sync worker's timeout handler answering beside a read blocked on the same socket).
pub fn write_to_borrowed_fd(fd: std::os::fd::RawFd, data: &[u8]) -> nix::Result<()> {
    // SAFETY: the caller guarantees `fd` stays open for the duration of this call (see
    // `Exchange::abort_with_error_page`: the transport owning it cannot be taken meanwhile).
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut rest = data;
    while !rest.is_empty() {
        match nix::unistd::write(borrowed, rest) {
            Ok(0) => return Err(nix::errno::Errno::EPIPE),
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Caps glibc's malloc at `n` arenas (`mallopt(M_ARENA_MAX)`). True if the limit was set.
/// Elsewhere than glibc there is nothing to set.
pub fn limit_malloc_arenas(n: i32) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes a malloc parameter; M_ARENA_MAX only bounds how many
        // arenas later allocations may create, so it is safe with threads already running.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = n;
        false
    }
}
