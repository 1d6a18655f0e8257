//! The few system calls that need `unsafe`: broken-down local time, `fork`, and installing
//! signal handlers. Everything else goes through `nix`'s safe wrappers.
#![allow(unsafe_code)]

use crate::log::LocalTime;

/// The current local time with its UTC offset (`localtime_r`, which honours `TZ`).
pub fn local_time_now() -> LocalTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: `tm` is plain old data, so all-zero is a valid value; localtime_r only writes into
    // it and reads `now`, both valid for the duration of the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, properly aligned locals.
    let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
    if !ok {
        return LocalTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            utc_offset: 0,
        };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        utc_offset: tm.tm_gmtoff,
    }
}

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::shutdown::{Shutdown, StopKind};

/// The outcome of [`fork`].
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `fork(2)`. The arbiter calls it from its single thread, with the hooks bracketing it so an
/// embedded interpreter can prepare (`PyOS_BeforeFork` and friends).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the master is single-threaded when it forks (the arbiter never starts threads and
    // documents that embedders must not either), so the child cannot inherit a lock held by
    // another thread; the child only runs the worker's code, which starts from a fresh state.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Takes ownership of an fd inherited from the parent process (`fd://N`, `GUNICORN_FD`,
/// `LISTEN_FDS`), after checking that it is open.
pub fn claim_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only queries flags of the descriptor number; it does not touch memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 || fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("fd {fd} is not an open file descriptor"),
        ));
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process by its
    // parent for us to use; nothing else in the process owns it, and callers claim each number
    // at most once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The write end of the master's signal pipe, or -1. Read by the async-signal-safe handler.
static MASTER_PIPE: AtomicI32 = AtomicI32::new(-1);
/// The write end of a worker's helper pipe (USR1 and friends), or -1.
static WORKER_PIPE: AtomicI32 = AtomicI32::new(-1);
/// The worker's stop request, set once in the child before its handlers are installed.
static WORKER_SHUTDOWN: OnceLock<Shutdown> = OnceLock::new();

/// Writes the signal number as one byte to `pipe`, keeping errno intact. Async-signal-safe.
fn write_signal_byte(pipe: &AtomicI32, sig: libc::c_int) {
    let fd = pipe.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let byte = sig as u8;
    // SAFETY: errno is thread-local and restored before returning; `write` is async-signal-safe
    // and reads one byte from a live local. A full pipe (EAGAIN) just drops the byte: the loop
    // wakes up anyway.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

extern "C" fn master_handler(sig: libc::c_int) {
    write_signal_byte(&MASTER_PIPE, sig);
}

extern "C" fn worker_handler(sig: libc::c_int) {
    match Signal::try_from(sig) {
        Ok(Signal::SIGTERM) => {
            if let Some(s) = WORKER_SHUTDOWN.get() {
                s.request(StopKind::Graceful);
            }
        }
        Ok(Signal::SIGINT) | Ok(Signal::SIGQUIT) => {
            if let Some(s) = WORKER_SHUTDOWN.get() {
                s.request(StopKind::Quick);
            }
        }
        _ => write_signal_byte(&WORKER_PIPE, sig),
    }
}

fn set_action(sig: Signal, handler: SigHandler) -> io::Result<()> {
    // SA_RESTART: blocking calls elsewhere are not cut short; the loops wake up through the pipe.
    let action = SigAction::new(handler, SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handlers installed here only do async-signal-safe work (an atomic load, an
    // atomic store and `write(2)`), and SIG_DFL/SIG_IGN are always sound.
    unsafe { signal::sigaction(sig, &action) }?;
    Ok(())
}

/// Routes `signals` to the master's pipe (`write_fd` is its write end).
pub fn install_master_handlers(write_fd: RawFd, signals: &[Signal]) -> io::Result<()> {
    MASTER_PIPE.store(write_fd, Ordering::Relaxed);
    for sig in signals {
        set_action(*sig, SigHandler::Handler(master_handler))?;
    }
    Ok(())
}

/// Stops routing signals to the master's pipe and resets `signals` to their default action.
pub fn reset_signals(signals: &[Signal]) -> io::Result<()> {
    MASTER_PIPE.store(-1, Ordering::Relaxed);
    for sig in signals {
        set_action(*sig, SigHandler::SigDfl)?;
    }
    Ok(())
}

/// Ignores `sig`.
pub fn ignore_signal(sig: Signal) -> io::Result<()> {
    set_action(sig, SigHandler::SigIgn)
}

/// In a worker child: TERM asks `shutdown` for a graceful stop, INT and QUIT for a quick one, and
/// each of `to_pipe` writes its number to `pipe_write_fd` for the worker's helper thread.
pub fn install_worker_handlers(
    shutdown: &Shutdown,
    pipe_write_fd: RawFd,
    to_pipe: &[Signal],
) -> io::Result<()> {
    // A second worker in the same process cannot happen (one worker per child).
    let _ = WORKER_SHUTDOWN.set(shutdown.clone());
    WORKER_PIPE.store(pipe_write_fd, Ordering::Relaxed);
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        set_action(sig, SigHandler::Handler(worker_handler))?;
    }
    for sig in to_pipe {
        set_action(*sig, SigHandler::Handler(worker_handler))?;
    }
    Ok(())
}

/// `_exit(2)`: leaves at once, without exit handlers or flushing stdio buffers that a forked
/// sibling still owns (the intermediate processes of daemonizing).
pub fn exit_immediately(status: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust-managed memory.
    unsafe { libc::_exit(status) }
}
