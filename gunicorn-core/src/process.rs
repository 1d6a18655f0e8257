//! Process-level settings: the worker user and group, process titles, the pidfile and systemd's
//! readiness notification.

use std::ffi::{CString, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::unistd::{Gid, Group, Uid, User};

use crate::config::Config;

/// The worker user or group cannot be resolved, or the switch to them failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// `user` is neither a number nor a known user name (gunicorn's `validate_user`).
    #[error("No such user: '{0}'")]
    NoSuchUser(String),
    /// `group` is neither a number nor a known group name (gunicorn's `validate_group`).
    #[error("No such group: '{0}'")]
    NoSuchGroup(String),
    /// The user's name, from the user database, holds a NUL byte.
    #[error("{0}")]
    UserName(#[from] std::ffi::NulError),
    /// `initgroups`, `setgroups`, `setgid` or `setuid` failed.
    #[error("{call} failed: {source}")]
    Switch {
        /// The call that failed.
        call: &'static str,
        /// Its error.
        source: nix::Error,
    },
}

/// Resolves `user` / `group` (names or numbers) to the uid and gid workers switch to, as
/// gunicorn's `validate_user` / `validate_group`. `None` when neither is set. An unset user keeps
/// the master's effective uid. An unset group is the user's primary group when a user is given
/// (stricter than gunicorn, whose workers keep the master's group, root's for a root master),
/// else the master's effective gid.
pub fn worker_ids(cfg: &Config) -> Result<Option<(u32, u32)>, PrivilegeError> {
    if cfg.user.is_none() && cfg.group.is_none() {
        return Ok(None);
    }
    let uid = match &cfg.user {
        None => Uid::effective().as_raw(),
        Some(u) => resolve_user(u)?,
    };
    let gid = match (&cfg.group, &cfg.user) {
        (Some(g), _) => resolve_group(g)?,
        (None, Some(_)) => User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.gid.as_raw())
            .unwrap_or_else(|| Gid::effective().as_raw()),
        (None, None) => Gid::effective().as_raw(),
    };
    Ok(Some((uid, gid)))
}

fn resolve_user(u: &str) -> Result<u32, PrivilegeError> {
    if let Ok(n) = u.trim().parse::<u32>() {
        return Ok(n);
    }
    match User::from_name(u) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        _ => Err(PrivilegeError::NoSuchUser(u.to_string())),
    }
}

fn resolve_group(g: &str) -> Result<u32, PrivilegeError> {
    if let Ok(n) = g.trim().parse::<u32>() {
        return Ok(n);
    }
    match Group::from_name(g) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => Err(PrivilegeError::NoSuchGroup(g.to_string())),
    }
}

/// Switches the current process (a worker child) to the configured group and user: the
/// supplementary groups become the user's (`--initgroups`) or just the group, then setgid, then
/// setuid, so a worker never keeps root's groups.
pub fn drop_privileges(cfg: &Config) -> Result<(), PrivilegeError> {
    let Some((uid, gid)) = worker_ids(cfg)? else {
        return Ok(());
    };
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    let err = |call, source| PrivilegeError::Switch { call, source };
    if Uid::effective().is_root() {
        let username = User::from_uid(uid).ok().flatten().map(|u| u.name);
        match (cfg.initgroups, username) {
            (true, Some(name)) => {
                let name = CString::new(name)?;
                nix::unistd::initgroups(&name, gid).map_err(|e| err("initgroups", e))?;
            }
            _ => nix::unistd::setgroups(&[gid]).map_err(|e| err("setgroups", e))?,
        }
    }
    if gid != Gid::current() {
        nix::unistd::setgid(gid).map_err(|e| err("setgid", e))?;
    }
    if uid != Uid::current() {
        nix::unistd::setuid(uid).map_err(|e| err("setuid", e))?;
    }
    Ok(())
}

/// The name shown in process titles: `proc_name`, else the application (gunicorn's default
/// `proc_name` is the app URI), else `gunicorn`.
pub fn proc_name(cfg: &Config) -> String {
    cfg.proc_name
        .clone()
        .or_else(|| cfg.wsgi_app.clone())
        .unwrap_or_else(|| "gunicorn".into())
}

/// The command line this process was started with, captured the first time it is asked for or
/// at the latest just before [`set_title`] first overwrites the argv area, after which
/// `std::env::args_os()` would return the title instead. Use it instead of `args_os()` in code
/// that may run after a title is set (a worker initializing Python, for example).
pub fn original_args() -> Vec<OsString> {
    ORIGINAL_ARGS
        .get_or_init(|| std::env::args_os().collect())
        .clone()
}

static ORIGINAL_ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Sets the process title `gunicorn: <what> [<name>]`, as gunicorn does with setproctitle:
///
/// - `ps -o args`, `ps aux`, `ps -ef` and `/proc/PID/cmdline` show the whole title (up to 4095
///   bytes): it is written over the original argv strings (see `sys::overwrite_cmdline`) and,
///   when it is longer than they are, on across the environment strings that follow them, which
///   are first copied to the heap with `environ` repointed at the copies (once per process,
///   inherited by forked workers), as setproctitle does. `std::env::var`, getenv and spawned
///   children keep seeing the same variables; `/proc/PID/environ` no longer shows them. Where the
///   environment area cannot be used (not right after argv, not writable) the title is cut to
///   the argv area's length;
/// - `ps -o comm`, `top` and `pgrep gunicorn` show the thread name (`prctl(PR_SET_NAME)`), 15
///   bytes of it: `gunicorn: maste` / `gunicorn: worke`.
///
/// Without `/proc` only the thread name changes, silently.
///
/// Capture the arguments before the first call: after it, `std::env::args_os()` reads the
/// title, because std follows the original argv pointers lazily. The arbiter keeps its copy for
/// the USR2 re-exec from `Arbiter::new`, and [`original_args`] keeps one for everyone else.
///
/// Call it only while the process is single-threaded: the master before it forks workers or
/// starts any thread (`Arbiter::start`, reload, promotion: the arbiter never has threads), a
/// worker right after `fork`, before it starts threads. No other thread may read argv or read or
/// change the environment (getenv, setenv, `std::env`) during the call, since it may repoint
/// `environ`'s entries and overwrite the strings they pointed at.
pub fn set_title(what: &str, name: &str) {
    let title = format!("gunicorn: {what} [{name}]");
    let mut bytes: Vec<u8> = title.into_bytes();
    bytes.retain(|b| *b != 0);
    ORIGINAL_ARGS.get_or_init(|| std::env::args_os().collect());
    // A failure leaves the area untouched and the thread name still tells the processes apart.
    let _ = crate::sys::overwrite_cmdline(&bytes);
    bytes.truncate(15);
    if let Ok(c) = CString::new(bytes) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// Why a pidfile could not be created.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    /// Another live process is named in the file.
    #[error("Already running on PID {pid} (or pid file '{path}' is stale)")]
    AlreadyRunning {
        /// The pid in the file.
        pid: i32,
        /// The file.
        path: String,
    },
    /// Writing failed.
    #[error("cannot write pid file '{path}': {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
}

/// The master's pidfile (gunicorn's `pidfile.py`).
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    pid: i32,
}

impl Pidfile {
    /// Writes `pid` to `path` atomically (a temporary file in the same directory, renamed), mode
    /// 0644, unless the file names another process that is alive.
    pub fn create(path: &Path, pid: i32) -> Result<Pidfile, PidfileError> {
        if let Some(old) = Self::live_pid(path) {
            if old != pid {
                return Err(PidfileError::AlreadyRunning {
                    pid: old,
                    path: path.display().to_string(),
                });
            }
        }
        let io_err = |source| PidfileError::Io {
            path: path.display().to_string(),
            source,
        };
        write_atomically(path, format!("{pid}\n").as_bytes()).map_err(io_err)?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// The pid in `path` if that process exists (`kill(pid, 0)` succeeds or says EPERM).
    pub fn live_pid(path: &Path) -> Option<i32> {
        let text = std::fs::read_to_string(path).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        if pid <= 0 {
            return None;
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) | Err(nix::Error::EPERM) => Some(pid),
            Err(_) => None,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the pidfile to `new` (a promoted re-exec'd master takes the original name).
    pub fn rename(&mut self, new: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, new)?;
        self.path = new.to_path_buf();
        Ok(())
    }

    /// Removes the file if it still holds our pid.
    pub fn unlink(&self) {
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            if text.trim().parse::<i32>().ok() == Some(self.pid) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    let res = f.write_all(data).and_then(|_| f.sync_all());
    drop(f);
    // The mode passed to open is masked by the umask; gunicorn's file is always 0644.
    let res = res
        .and_then(|_| {
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Sends `state` to systemd's `$NOTIFY_SOCKET` (a unix datagram socket; a leading `@` is the
/// abstract namespace). A no-op when the variable is unset.
pub fn sd_notify(state: &str) -> io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    use nix::sys::socket::{sendto, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(abs) => UnixAddr::new_abstract(abs)?,
        None => UnixAddr::new(bytes)?,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    sendto(fd.as_raw_fd(), state.as_bytes(), &addr, MsgFlags::empty())?;
    Ok(())
}

/// systemd socket activation: the number of fds passed from fd 3 when `LISTEN_PID` is this
/// process. Both variables are removed, as gunicorn does, so children do not see them.
pub fn take_listen_fds() -> Option<i32> {
    let pid: i32 = std::env::var("LISTEN_PID").ok()?.trim().parse().ok()?;
    if pid != std::process::id() as i32 {
        return None;
    }
    let n: i32 = std::env::var("LISTEN_FDS").ok()?.trim().parse().ok()?;
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_is_written_refused_when_live_and_unlinked() {
        let dir = std::env::temp_dir().join(format!("gunicorn-pid-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.pid");
        let me = std::process::id() as i32;
        let pf = Pidfile::create(&path, me).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Another "master" finds a live pid (ours) and refuses.
        let err = Pidfile::create(&path, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Already running on PID {me} (or pid file '{}' is stale)",
                path.display()
            )
        );
        pf.unlink();
        assert!(!path.exists());
        // A stale file (no such process) is overwritten.
        std::fs::write(&path, "999999999\n").unwrap();
        let pf = Pidfile::create(&path, me).unwrap();
        // unlink leaves a file that holds someone else's pid.
        std::fs::write(&path, "12345\n").unwrap();
        pf.unlink();
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn user_and_group_resolve_names_and_numbers() {
        let mut cfg = Config::default();
        assert_eq!(worker_ids(&cfg).unwrap(), None);
        cfg.user = Some("0".into());
        cfg.group = Some("root".into());
        assert_eq!(worker_ids(&cfg).unwrap(), Some((0, 0)));
        cfg.group = None;
        cfg.user = Some("nobody".into());
        if let Ok(Some(nobody)) = User::from_name("nobody") {
            // Without --group, the user's own primary group.
            assert_eq!(
                worker_ids(&cfg).unwrap(),
                Some((nobody.uid.as_raw(), nobody.gid.as_raw()))
            );
        }
        cfg.user = Some("no-such-user-here".into());
        assert_eq!(
            worker_ids(&cfg).unwrap_err().to_string(),
            "No such user: 'no-such-user-here'"
        );
        cfg.user = None;
        cfg.group = Some("no-such-group-here".into());
        assert_eq!(
            worker_ids(&cfg).unwrap_err().to_string(),
            "No such group: 'no-such-group-here'"
        );
    }
}
