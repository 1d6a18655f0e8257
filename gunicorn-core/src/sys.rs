//! The few system calls that need `unsafe`: broken-down local time, `fork`, installing signal
//! handlers, and rewriting the argv area (and moving the environment out of the area after it) for
//! process titles. Everything else goes through `nix`'s safe wrappers.
#![allow(unsafe_code)]

use crate::log_record::LocalTime;

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

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
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

/// The number of connections waiting in a listening TCP socket's accept queue, as gunicorn's
/// `TCPSocket.get_backlog`: `tcpi_unacked` of `TCP_INFO`, which Linux fills with the accept
/// queue's length for a socket in the LISTEN state.
#[cfg(target_os = "linux")]
pub fn tcp_listen_backlog(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: `tcp_info` is plain old data (integers only), so all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is borrowed, so open for the call; `info` and `len` are live, aligned
    // locals, and `len` tells the kernel how many bytes it may write into `info`.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.tcpi_unacked)
}

/// Not available off Linux (gunicorn's `get_backlog` returns -1 there).
#[cfg(not(target_os = "linux"))]
pub fn tcp_listen_backlog(_fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    Err(io::ErrorKind::Unsupported.into())
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

extern "C" {
    /// libc's environment table (environ(7)): a NULL-terminated array of pointers to
    /// `NAME=value` strings. getenv, setenv and `std::env` all go through it, so repointing its
    /// entries is enough for the whole process to read the copies. Declared here rather than
    /// taken from the libc crate, which only exports it for glibc.
    static mut environ: *mut *mut libc::c_char;
}

/// Whether the environment strings have been moved out of the area after argv (by
/// [`relocate_environ`]), which then belongs to the title. A forked child inherits both the flag
/// and the repointed `environ`, so it never moves them again; an `execve` starts afresh with both.
static ENV_RELOCATED: AtomicBool = AtomicBool::new(false);

/// Replaces this process's command line, as `/proc/PID/cmdline` and `ps -o args` show it, with
/// `title` (cut at its first NUL and to [`MAX_TITLE`] bytes), the way setproctitle does.
///
/// The title goes over the original argv strings. When it does not fit there and the
/// environment strings directly follow them in the same private writable mapping (as `execve`
/// lays them out), the environment strings are first copied to the heap and `environ` repointed
/// at the copies ([`relocate_environ`], once per process); the title may then span both areas,
/// which Linux's `get_mm_cmdline` reads across. Otherwise the title is cut to the argv area.
/// Fails (and writes nothing) when `/proc` is missing or the argv area cannot be located.
///
/// After this, `std::env::args_os()` reads the title (it follows the original argv pointers
/// lazily): capture the arguments first. `/proc/PID/environ` shows the title's tail and NULs once
/// the environment has been moved (the variables themselves are intact, see above). In a CPython
/// process that loaded this crate as an extension module, Python has long copied its argv
/// (`sys.argv`, `sys.orig_argv`) and its environment (`os.environ`), so the areas are ours to
/// reuse.
///
/// Call it only while the process is single-threaded (the master before it starts workers, a
/// worker just after `fork`): no other thread may read argv, or read or change the environment,
/// during the call.
pub fn overwrite_cmdline(title: &[u8]) -> io::Result<()> {
    let stat = std::fs::read("/proc/self/stat")?;
    let areas = cmdline_areas(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "no argv area in /proc/self/stat",
        )
    })?;
    let maps = std::fs::read("/proc/self/maps")?;
    if !in_writable_mapping(&maps, &areas.args) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the argv area is not in one private writable mapping",
        ));
    }
    let title = title.split(|b| *b == 0).next().unwrap_or_default();
    // The environment area only counts when the argv area and it lie in one writable mapping.
    let env = areas
        .env
        .clone()
        .filter(|env| in_writable_mapping(&maps, &(areas.args.start..env.end)));
    let relocated = ENV_RELOCATED.load(Ordering::Relaxed);
    let end = match (env_use(areas.args.len(), title.len(), relocated), env) {
        (EnvUse::Reuse, Some(env)) => env.end,
        // A failed move left `environ` as it was: the environment area stays untouched.
        (EnvUse::Relocate, Some(env)) => match relocate_environ(&env) {
            Ok(()) => env.end,
            Err(_) => areas.args.end,
        },
        _ => areas.args.end,
    };
    let bytes = title_area(title, end - areas.args.start, areas.args.len());
    // SAFETY: [args.start, end) is this process's argv area, plus, when `end` is env_end, the
    // environment area right after it (env_start == arg_end), as the kernel reports them, and
    // /proc/self/maps shows it inside one private, writable mapping (the initial stack), so all
    // `bytes.len()` (== end - args.start) bytes are mapped, writable and owned by this process
    // alone; `bytes` is a separate heap buffer, so the ranges do not overlap. No Rust reference
    // points into the area (std reads argv through raw pointers only inside `args_os()`), and no
    // `environ` entry points into the environment part once it is used (`relocate_environ`
    // moved them all, in this process or in the parent it was forked from). The caller is
    // single-threaded (see above), so no read of argv or of the environment races this write.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), areas.args.start as *mut u8, bytes.len());
    }
    Ok(())
}

/// Copies every `environ` string that lies in `env` (the environment area after argv) to a heap
/// allocation that is never freed, and repoints its `environ` entry at the copy, so that the area
/// may be overwritten. Strings that setenv or putenv put elsewhere are left alone. Nothing is
/// changed unless every string is found whole inside the area. Single-threaded callers only (see
/// [`overwrite_cmdline`]).
fn relocate_environ(env: &std::ops::Range<usize>) -> io::Result<()> {
    // SAFETY: reads the table's address only. The caller is single-threaded, so no setenv or
    // putenv replaces the table (or its entries) while this function runs.
    let table = unsafe { environ };
    let mut copies: Vec<(usize, CString)> = Vec::new();
    // The number of entries, the NULL that ends them included.
    let mut entries = 0;
    if !table.is_null() {
        for i in 0.. {
            // SAFETY: `environ` is a NULL-terminated array of pointers (environ(7)) and the loop
            // stops at the NULL, so `i` never goes past it; nothing changes the array meanwhile
            // (single thread).
            let entry = unsafe { *table.add(i) };
            if entry.is_null() {
                entries = i + 1;
                break;
            }
            let at = entry as usize;
            if !env.contains(&at) {
                continue;
            }
            // SAFETY: [at, env.end) lies inside the environment area, which the caller checked
            // is in one readable mapping; nothing writes to it while this shared slice lives
            // (single thread, and the title is written only after this function returns).
            let rest = unsafe { std::slice::from_raw_parts(entry as *const u8, env.end - at) };
            let len = rest.iter().position(|b| *b == 0).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an environment string runs past the environment area",
                )
            })?;
            let copy = CString::new(&rest[..len])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            copies.push((i, copy));
        }
    }
    // The table itself lies below the argv strings (as execve built it) or on the heap (after a
    // setenv grew it), never in the area; were it there, the title would clobber it.
    let table_end = table as usize + std::mem::size_of::<*mut libc::c_char>() * entries;
    if (table as usize) < env.end && env.start < table_end {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the environment table lies in the environment area",
        ));
    }
    for (i, copy) in copies {
        // The string must outlive every reader, and getenv hands out pointers to it that callers
        // may keep: leaked on purpose, never freed (glibc's setenv never frees strings it did not
        // allocate, and musl's only those it allocated itself).
        let leaked = copy.into_raw();
        // SAFETY: `i` indexed a non-NULL entry of the same array in the loop above, and nothing
        // has changed the array since (single thread; allocating the copies does not touch
        // `environ`). Storing a pointer-sized value into that slot is what setenv does too.
        unsafe { *table.add(i) = leaked };
    }
    ENV_RELOCATED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Where the kernel finds a process's command line: fields 48 to 51 of `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CmdlineAreas {
    /// `[arg_start, arg_end)`: the original argv strings.
    args: std::ops::Range<usize>,
    /// `[env_start, env_end)`: the original environment strings, only when they start right
    /// where argv ends (`get_mm_cmdline` reads a title across into them only then) and are not
    /// empty.
    env: Option<std::ops::Range<usize>>,
}

/// The argv and environment areas from the text of `/proc/self/stat`: fields 48 and 49
/// (arg_start, arg_end) and 50 and 51 (env_start, env_end) (proc(5)). Fields are counted after
/// the last `)`, because the command name in field 2 may hold spaces and parentheses. `None` for
/// kernels older than 3.5 (no such fields), zeros (shown when the reader may not see them) or an
/// empty argv area.
fn cmdline_areas(stat: &[u8]) -> Option<CmdlineAreas> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // The first field after the command name is field 3 (state).
    let mut fields = rest
        .split_ascii_whitespace()
        .skip(48 - 3)
        .map(|f| f.parse::<usize>().ok());
    let start = fields.next()??;
    let end = fields.next()??;
    if start == 0 || start >= end {
        return None;
    }
    let env = match (fields.next().flatten(), fields.next().flatten()) {
        (Some(env_start), Some(env_end)) if env_start == end && env_start < env_end => {
            Some(env_start..env_end)
        }
        _ => None,
    };
    Some(CmdlineAreas {
        args: start..end,
        env,
    })
}

/// What [`overwrite_cmdline`] does with the environment area after argv.
#[derive(Debug, PartialEq, Eq)]
enum EnvUse {
    /// Nothing: the title fits in the argv area and the environment is still there.
    Leave,
    /// Move the environment strings out, then write the title across both areas.
    Relocate,
    /// The strings were moved before (by this process, or the parent it was forked from): the
    /// area is the title's, and is written whole so no tail of a longer title stays in it.
    Reuse,
}

/// The choice for a title of `title_len` bytes (before the [`MAX_TITLE`] cap) and an argv area of
/// `args_len` bytes: the environment is only moved when the title and its NUL do not fit.
fn env_use(args_len: usize, title_len: usize, relocated: bool) -> EnvUse {
    if relocated {
        EnvUse::Reuse
    } else if title_len.min(MAX_TITLE) + 1 > args_len {
        EnvUse::Relocate
    } else {
        EnvUse::Leave
    }
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

/// The new content of a title area of `len` bytes, whose first `args_len` bytes are the argv
/// area and the rest (if any) the environment area after it, showing `title` (cut at its first
/// NUL, then to fit). Linux's `get_mm_cmdline` (fs/proc/base.c) reads it in one of two ways,
/// chosen by the last byte of the argv area:
///
/// - NUL: the argv area only, NULs included, so `title` and NUL padding would come out with
///   trailing NULs (blanks in some tools, empty arguments in psutil);
/// - not NUL: taken as a setproctitle title, read from the start of the argv area up to and
///   including its first NUL, across into the environment area when that follows argv (at most
///   one page, and never past env_end).
///
/// So a title shorter than the argv area is followed by NULs and the argv area's last byte is
/// [`PROCTITLE_MARK`]: `/proc/PID/cmdline` reads `title\0`. A title one byte shorter than the
/// argv area (or cut to that) is followed by a NUL in that last byte, and the argv-only reading
/// returns `title\0` too. A longer title puts one of its own bytes there, then its NUL and NULs
/// to the end of the environment area.
fn title_area(title: &[u8], len: usize, args_len: usize) -> Vec<u8> {
    let mut area = vec![0u8; len];
    if len == 0 {
        return area;
    }
    let args_len = args_len.min(len);
    let title = title.split(|b| *b == 0).next().unwrap_or_default();
    let n = title.len().min(len - 1).min(MAX_TITLE);
    area[..n].copy_from_slice(&title[..n]);
    if n + 2 <= args_len {
        area[args_len - 1] = PROCTITLE_MARK;
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_areas_count_fields_after_the_command_name() {
        // 52 fields as Linux 6.x prints them; fields 48 to 51 are 140730000001000,
        // 140730000001040, 140730000001040 and 140730000002000.
        let tail = "S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234 5000000 300 \
                    18446744073709551615 94000000000000 94000000100000 140730000000000 0 0 0 0 \
                    0 0 0 0 0 17 3 0 0 0 0 0 94000000200000 94000000201000 94000000300000 \
                    140730000001000 140730000001040 140730000001040 140730000002000 0";
        let good = Some(CmdlineAreas {
            args: 140_730_000_001_000..140_730_000_001_040,
            env: Some(140_730_000_001_040..140_730_000_002_000),
        });
        let cases: &[(&str, Option<CmdlineAreas>)] = &[
            ("4242 (gunicorn) ", good.clone()),
            ("4242 (gunicorn: maste) ", good.clone()),
            ("4242 (a) b (c)) ", good.clone()),
            ("4242 ()) ", good.clone()),
            ("4242 ( ) ( ) ", good.clone()),
        ];
        for (head, want) in cases {
            let line = format!("{head}{tail}\n");
            assert_eq!(cmdline_areas(line.as_bytes()), *want, "{line}");
        }
        // Non-UTF-8 bytes in the command name are fine.
        let mut line = b"7 (\xff\xfe)) ".to_vec();
        line.extend_from_slice(tail.as_bytes());
        assert_eq!(cmdline_areas(&line), good);
        // An old kernel without the fields, zeros hidden from the reader, an empty area, junk.
        let short = "4242 (gunicorn) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234";
        assert_eq!(cmdline_areas(short.as_bytes()), None);
        let zeros = tail.replace("140730000001000 140730000001040", "0 0");
        assert_eq!(cmdline_areas(format!("1 (x) {zeros}").as_bytes()), None);
        let empty = tail.replace("140730000001000 140730000001040", "5 5");
        assert_eq!(cmdline_areas(format!("1 (x) {empty}").as_bytes()), None);
        assert_eq!(cmdline_areas(b"no parenthesis at all"), None);
        assert_eq!(cmdline_areas(b""), None);
    }

    #[test]
    fn the_environment_area_counts_only_right_after_argv() {
        let head = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 \
                    17 0 0 0 0 0 0 1 1 1";
        let areas = |fields: &str| cmdline_areas(format!("{head} {fields}\n").as_bytes());
        let args = 1000..1040;
        // Adjacent and not empty.
        assert_eq!(
            areas("1000 1040 1040 2000 0"),
            Some(CmdlineAreas {
                args: args.clone(),
                env: Some(1040..2000),
            })
        );
        // Moved elsewhere (prctl(PR_SET_MM_ENV_START), say), empty, reversed, zeros, missing
        // (a kernel printing only up to field 49) or junk: the argv area alone.
        for env in [
            "1041 2000 0",
            "1040 1040 0",
            "1040 1000 0",
            "0 0 0",
            "",
            "1040",
            "1040 x 0",
            "y 2000 0",
        ] {
            let want = Some(CmdlineAreas {
                args: args.clone(),
                env: None,
            });
            assert_eq!(areas(&format!("1000 1040 {env}")), want, "{env:?}");
        }
    }

    #[test]
    fn the_environment_moves_only_for_a_title_that_does_not_fit_and_only_once() {
        // The title and its NUL fit in 40 bytes up to a 39-byte title.
        assert_eq!(env_use(40, 10, false), EnvUse::Leave);
        assert_eq!(env_use(40, 39, false), EnvUse::Leave);
        assert_eq!(env_use(40, 40, false), EnvUse::Relocate);
        assert_eq!(env_use(40, 400, false), EnvUse::Relocate);
        // The cap counts: a huge title in a huge argv area is cut to MAX_TITLE there.
        assert_eq!(env_use(MAX_TITLE + 1, 100_000, false), EnvUse::Leave);
        assert_eq!(env_use(MAX_TITLE, 100_000, false), EnvUse::Relocate);
        // Once moved (here or before a fork), the whole area is used for any title.
        assert_eq!(env_use(40, 10, true), EnvUse::Reuse);
        assert_eq!(env_use(40, 400, true), EnvUse::Reuse);
    }

    #[test]
    fn cmdline_areas_of_this_process_are_one_writable_mapping() {
        let Ok(stat) = std::fs::read("/proc/self/stat") else {
            return; // no /proc here
        };
        let areas = cmdline_areas(&stat).expect("argv area");
        let maps = std::fs::read("/proc/self/maps").unwrap();
        assert!(in_writable_mapping(&maps, &areas.args));
        // execve puts the environment strings right after the argv strings, on the stack.
        let env = areas.env.expect("environment area after argv");
        assert!(in_writable_mapping(&maps, &(areas.args.start..env.end)));
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
        assert_eq!(title_area(b"ab", 6, 6), vec![b'a', b'b', 0, 0, 0, mark]);
        assert_eq!(title_area(b"ab", 4, 4), vec![b'a', b'b', 0, mark]);
        // Exactly one byte short of filling: the title's NUL is the last byte.
        assert_eq!(title_area(b"ab", 3, 3), b"ab\0".to_vec());
        // Too long: cut to leave the NUL.
        assert_eq!(title_area(b"abcdef", 4, 4), b"abc\0".to_vec());
        assert_eq!(title_area(b"abcdef", 1, 1), vec![0]);
        assert_eq!(title_area(b"abc", 0, 0), Vec::<u8>::new());
        // A NUL inside the title ends it.
        assert_eq!(title_area(b"a\0b", 4, 4), vec![b'a', 0, 0, mark]);
        // A huge area: the title stays within one page, the NUL right after it.
        let long = vec![b'x'; 5000];
        let area = title_area(&long, 8000, 8000);
        assert_eq!(&area[..MAX_TITLE], &long[..MAX_TITLE]);
        assert!(area[MAX_TITLE..7999].iter().all(|b| *b == 0));
        assert_eq!(area[7999], mark);
    }

    #[test]
    fn title_area_spans_the_environment_area() {
        let mark = PROCTITLE_MARK;
        // A 4-byte argv area and 4 bytes of environment after it.
        // Longer than argv: one of its bytes ends the argv area, its NUL and padding follow.
        assert_eq!(title_area(b"abcde", 8, 4), b"abcde\0\0\0".to_vec());
        assert_eq!(title_area(b"abcd", 8, 4), b"abcd\0\0\0\0".to_vec());
        // Cut to leave the NUL at the end of the environment area.
        assert_eq!(title_area(b"abcdefghij", 8, 4), b"abcdefg\0".to_vec());
        // Short titles in a moved-out area (a worker after a long master title): the mark still
        // goes in the last byte of the argv area, and the environment part is all NULs.
        assert_eq!(
            title_area(b"ab", 8, 4),
            vec![b'a', b'b', 0, mark, 0, 0, 0, 0]
        );
        assert_eq!(title_area(b"abc", 8, 4), b"abc\0\0\0\0\0".to_vec());
        assert_eq!(title_area(b"", 8, 4), vec![0, 0, 0, mark, 0, 0, 0, 0]);
        // The cap holds across the areas too.
        let long = vec![b'x'; 5000];
        let area = title_area(&long, 9000, 100);
        assert_eq!(&area[..MAX_TITLE], &long[..MAX_TITLE]);
        assert!(area[MAX_TITLE..].iter().all(|b| *b == 0));
    }
}
