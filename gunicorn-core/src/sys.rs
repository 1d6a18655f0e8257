//! The few system calls that need `unsafe`: broken-down local time, `fork`, installing signal
//! handlers, and rewriting the argv area for process titles. Everything else goes through `nix`'s
//! safe wrappers.
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

/// The longest title [`overwrite_cmdline`] writes. When the last byte of the argv area is not NUL,
/// the kernel's `get_mm_proctitle` reads one page from the start of the area and cuts at the first
/// NUL; 4095 keeps the title and its NUL inside the smallest page size (4 KiB).
const MAX_TITLE: usize = 4095;

/// The byte put in the last slot of the argv area when the title is shorter than the area. Any
/// non-NUL byte tells the kernel "setproctitle was here"; it is never shown (see
/// [`title_area`]). libbsd's setproctitle does the same with `.`. It leaves the last original
/// argument unterminated inside the area, which only matters to code reading argv in place
/// afterwards, and that code already reads the title instead of the arguments.
const PROCTITLE_MARK: u8 = b' ';

/// Replaces this process's command line, as `/proc/PID/cmdline` and `ps -o args` show it, with
/// `title`, the way setproctitle does, but only inside the original argv strings: the environment
/// that follows them is never touched, so a title longer than the original command line is cut to
/// fit. Fails (and writes nothing) when `/proc` is missing or the area cannot be located.
///
/// After this, `std::env::args_os()` reads the title (it follows the original argv pointers
/// lazily): capture the arguments first. In a CPython process that loaded this crate as an
/// extension module, Python has long copied its argv (`sys.argv`, `sys.orig_argv`), so the area is
/// ours to reuse. Call it from one thread only, with no other thread reading argv.
pub fn overwrite_cmdline(title: &[u8]) -> io::Result<()> {
    let stat = std::fs::read("/proc/self/stat")?;
    let area = arg_area(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "no argv area in /proc/self/stat",
        )
    })?;
    let maps = std::fs::read("/proc/self/maps")?;
    if !in_writable_mapping(&maps, &area) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the argv area is not in one private writable mapping",
        ));
    }
    let bytes = title_area(title, area.end - area.start);
    // SAFETY: [area.start, area.end) is this process's argv area as the kernel reports it, and
    // /proc/self/maps shows it inside one private, writable mapping (the initial stack), so all
    // `bytes.len()` (== area.end - area.start) bytes are mapped, writable and owned by this
    // process alone; `bytes` is a separate heap buffer, so the ranges do not overlap. No Rust
    // reference points into the area (std reads argv through raw pointers only inside
    // `args_os()`), and callers write from one thread, so no read races with this write.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), area.start as *mut u8, bytes.len());
    }
    Ok(())
}

/// The argv area `[arg_start, arg_end)` from the text of `/proc/self/stat`: fields 48 and 49
/// (proc(5)). Fields are counted after the last `)`, because the command name in field 2 may hold
/// spaces and parentheses. `None` for kernels older than 3.5 (no such fields), zeros (shown when
/// the reader may not see them) or an empty area.
fn arg_area(stat: &[u8]) -> Option<std::ops::Range<usize>> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // The first field after the command name is field 3 (state).
    let mut fields = rest.split_ascii_whitespace().skip(48 - 3);
    let start: usize = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    (start != 0 && start < end).then_some(start..end)
}

/// Whether one mapping listed in the text of `/proc/self/maps` is readable, writable, private and
/// covers all of `area`.
fn in_writable_mapping(maps: &[u8], area: &std::ops::Range<usize>) -> bool {
    // Only the path column can be non-UTF-8, and it is not read.
    String::from_utf8_lossy(maps)
        .lines()
        .any(|l| mapping_covers(l, area))
}

/// One `/proc/PID/maps` line, `start-end perms offset dev inode [path]` (hex addresses).
fn mapping_covers(line: &str, area: &std::ops::Range<usize>) -> bool {
    let mut cols = line.split_ascii_whitespace();
    let (Some(range), Some(perms)) = (cols.next(), cols.next()) else {
        return false;
    };
    let Some((lo, hi)) = range.split_once('-') else {
        return false;
    };
    let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) else {
        return false;
    };
    perms.starts_with("rw") && perms.ends_with('p') && lo <= area.start && area.end <= hi
}

/// The new content of an argv area of `len` bytes showing `title` (cut at its first NUL, then to
/// fit). Linux's `get_mm_cmdline` (fs/proc/base.c) reads the area in one of two ways:
///
/// - last byte NUL: the whole area, NULs included, so `title` and NUL padding would come out
///   with trailing NULs (blanks in some tools, empty arguments in psutil);
/// - last byte not NUL: taken as a setproctitle title, returned up to and including its first
///   NUL.
///
/// So a short title is followed by NULs and the last byte is [`PROCTITLE_MARK`]:
/// `/proc/PID/cmdline` reads `title\0`. A title one byte shorter than the area (or cut to that)
/// is followed by the last byte, a NUL, and the whole-area reading returns `title\0` too.
fn title_area(title: &[u8], len: usize) -> Vec<u8> {
    let mut area = vec![0u8; len];
    if len == 0 {
        return area;
    }
    let title = title.split(|b| *b == 0).next().unwrap_or_default();
    let n = title.len().min(len - 1).min(MAX_TITLE);
    area[..n].copy_from_slice(&title[..n]);
    if n + 2 <= len {
        area[len - 1] = PROCTITLE_MARK;
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_area_counts_fields_after_the_command_name() {
        // 52 fields as Linux 6.x prints them; fields 48 and 49 are 140730000001000 and
        // 140730000001040.
        let tail = "S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234 5000000 300 \
                    18446744073709551615 94000000000000 94000000100000 140730000000000 0 0 0 0 \
                    0 0 0 0 0 17 3 0 0 0 0 0 94000000200000 94000000201000 94000000300000 \
                    140730000001000 140730000001040 140730000001040 140730000002000 0";
        let good = Some(140_730_000_001_000..140_730_000_001_040);
        let cases: &[(&str, Option<std::ops::Range<usize>>)] = &[
            ("4242 (gunicorn) ", good.clone()),
            ("4242 (gunicorn: maste) ", good.clone()),
            ("4242 (a) b (c)) ", good.clone()),
            ("4242 ()) ", good.clone()),
            ("4242 ( ) ( ) ", good.clone()),
        ];
        for (head, want) in cases {
            let line = format!("{head}{tail}\n");
            assert_eq!(arg_area(line.as_bytes()), *want, "{line}");
        }
        // Non-UTF-8 bytes in the command name are fine.
        let mut line = b"7 (\xff\xfe)) ".to_vec();
        line.extend_from_slice(tail.as_bytes());
        assert_eq!(arg_area(&line), good);
        // An old kernel without the fields, zeros hidden from the reader, an empty area, junk.
        let short = "4242 (gunicorn) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234";
        assert_eq!(arg_area(short.as_bytes()), None);
        let zeros = tail.replace("140730000001000 140730000001040", "0 0");
        assert_eq!(arg_area(format!("1 (x) {zeros}").as_bytes()), None);
        let empty = tail.replace("140730000001000 140730000001040", "5 5");
        assert_eq!(arg_area(format!("1 (x) {empty}").as_bytes()), None);
        assert_eq!(arg_area(b"no parenthesis at all"), None);
        assert_eq!(arg_area(b""), None);
    }

    #[test]
    fn arg_area_of_this_process_is_a_writable_mapping() {
        let Ok(stat) = std::fs::read("/proc/self/stat") else {
            return; // no /proc here
        };
        let area = arg_area(&stat).expect("argv area");
        let maps = std::fs::read("/proc/self/maps").unwrap();
        assert!(in_writable_mapping(&maps, &area));
    }

    #[test]
    fn mappings_must_be_private_writable_and_cover_the_area() {
        let maps = b"55d0c0a00000-55d0c0a21000 r-xp 00000000 08:01 1 /usr/bin/x\n\
                     7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n\
                     7ffe00000000-7ffe00001000 rw-s 00000000 00:05 9 /dev/shm/\xff\n";
        let covers = |a: usize, b: usize| in_writable_mapping(maps, &(a..b));
        assert!(covers(0x7ffd_0000_1000, 0x7ffd_0000_1040));
        assert!(covers(0x7ffd_0000_0000, 0x7ffd_0002_1000));
        assert!(!covers(0x7ffd_0002_0ff0, 0x7ffd_0002_1010)); // runs past the end
        assert!(!covers(0x55d0_c0a0_0010, 0x55d0_c0a0_0020)); // read-only
        assert!(!covers(0x7ffe_0000_0010, 0x7ffe_0000_0020)); // shared
        assert!(!covers(0x1000, 0x2000)); // unmapped
        assert!(!in_writable_mapping(b"garbage\n-\nzz-yy rw-p\n", &(1..2)));
    }

    #[test]
    fn title_area_shows_exactly_the_title() {
        let mark = PROCTITLE_MARK;
        // Room to spare: title, NUL padding, the mark in the last byte.
        assert_eq!(title_area(b"ab", 6), vec![b'a', b'b', 0, 0, 0, mark]);
        assert_eq!(title_area(b"ab", 4), vec![b'a', b'b', 0, mark]);
        // Exactly one byte short of filling: the title's NUL is the last byte.
        assert_eq!(title_area(b"ab", 3), b"ab\0".to_vec());
        // Too long: cut to leave the NUL.
        assert_eq!(title_area(b"abcdef", 4), b"abc\0".to_vec());
        assert_eq!(title_area(b"abcdef", 1), vec![0]);
        assert_eq!(title_area(b"abc", 0), Vec::<u8>::new());
        // A NUL inside the title ends it.
        assert_eq!(title_area(b"a\0b", 4), vec![b'a', 0, 0, mark]);
        // A huge area: the title stays within one page, the NUL right after it.
        let long = vec![b'x'; 5000];
        let area = title_area(&long, 8000);
        assert_eq!(&area[..MAX_TITLE], &long[..MAX_TITLE]);
        assert!(area[MAX_TITLE..7999].iter().all(|b| *b == 0));
        assert_eq!(area[7999], mark);
    }
}
