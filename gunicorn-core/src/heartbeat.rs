//! The worker heartbeat (gunicorn's `WorkerTmp`): an unlinked temporary file whose timestamps the
//! worker touches; the master reads them with `fstat` and kills a worker silent for longer than
//! `timeout`. Like gunicorn (22.0+), the time written is a monotonic clock reading, so wall-clock
//! jumps never make a worker look dead.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::sys::stat::{fstat, futimens};
use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, ClockId};

/// The heartbeat file shared by the master (reader) and one worker (writer).
#[derive(Debug)]
pub struct Heartbeat {
    file: File,
}

fn monotonic() -> TimeSpec {
    clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap_or_else(|_| TimeSpec::new(0, 0))
}

impl Heartbeat {
    /// Creates the file in `dir` (or the system temp dir), unlinks it at once, and stamps it.
    pub fn create(dir: Option<&Path>) -> io::Result<Self> {
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let template = dir.join("wgunicorn-XXXXXX");
        let (fd, path) = nix::unistd::mkstemp(&template)?;
        let _ = std::fs::remove_file(&path);
        let file = File::from(fd);
        nix::fcntl::fcntl(
            &file,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
        let hb = Heartbeat { file };
        hb.notify();
        Ok(hb)
    }

    /// Proves the worker alive. Cheap: one `futimens`.
    pub fn notify(&self) {
        let now = monotonic();
        let _ = futimens(self.file.as_fd(), &now, &now);
    }

    /// Gives the file to the worker's user, so `notify` still works after the worker drops
    /// privileges (setting explicit timestamps needs ownership).
    pub fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::fchown(&self.file, Some(uid), Some(gid))
    }

    /// How long ago the worker last called `notify` (master side).
    pub fn silent_for(&self) -> Duration {
        let Ok(st) = fstat(self.file.as_fd()) else {
            return Duration::ZERO;
        };
        let now = monotonic();
        let last = Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec.max(0) as u32);
        let now = Duration::new(now.tv_sec().max(0) as u64, now.tv_nsec().max(0) as u32);
        now.saturating_sub(last)
    }
}
