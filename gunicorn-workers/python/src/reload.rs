//! `--reload`: each worker watches the files of its application and stops itself when one
//! changes, so the arbiter forks a fresh one (gunicorn's `reloader.py`).
//!
//! The watched files are re-read on every check: the `__file__` of every module in
//! `sys.modules` (`.pyc` mapped back to `.py`), every file matched by a `--reload-extra-file`
//! glob pattern (expanded again each time, so files created later are picked up), and the file
//! of a SyntaxError that kept the application from loading. `--reload-engine poll` compares
//! modification times every second; `inotify` (the `auto` choice on Linux) watches the
//! directories of those files and reacts to writes, renames and deletions of a watched file.
//!
//! The baseline is the worker's boot (when the watcher starts, before the application is
//! imported): a file first seen with a modification time after the boot was edited while the
//! worker was importing it, and counts as changed at once (an mtime in the future, from a
//! skewed clock or an archive, is taken as the baseline instead, or every worker would reload).
//!
//! On a change the worker logs `Worker reloading: FILE modified`, runs the `worker_int` hook and
//! stops gracefully (the request in progress finishes). The watcher is a thread of the worker:
//! nothing of it exists in the master.
//!
//! With `--reload`, an application whose import raises a SyntaxError is replaced by a small
//! application answering every request with a 500 page showing the traceback, instead of the
//! worker exiting with status 4 (which would halt the master): fixing the file reloads the
//! worker, which then imports the fixed application.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use gunicorn_core::{Config, Shutdown, StopKind};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::loaded::{App, AppLoadError};

/// How often the file list is refreshed (and, with `poll`, the files compared).
const INTERVAL: Duration = Duration::from_secs(1);
/// inotify: how long the watched directories must stay quiet after a change before the worker
/// stops, and the longest such wait.
const SETTLE_MS: u16 = 100;
const SETTLE_MAX: Duration = Duration::from_secs(1);

/// Set once the worker's application is loaded: the watcher only then starts taking the GIL
/// (to read `sys.modules`).
static APP_LOADED: AtomicBool = AtomicBool::new(false);
/// When this worker started watching, before it imported the application.
static BOOT: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
/// Files of SyntaxErrors that kept the application from loading (not in `sys.modules`).
static FAILED_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How files are watched (`--reload-engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// mtime comparison every second.
    Poll,
    /// inotify watches on the files' directories.
    Inotify,
}

impl Engine {
    /// The engine for the `reload_engine` setting: `auto` is inotify when the kernel offers it.
    pub fn from_setting(name: &str) -> Engine {
        match name {
            "poll" => Engine::Poll,
            _ => Engine::Inotify,
        }
    }
}

/// Marks the application as loaded in this worker (called when its bridge is built).
pub fn mark_app_loaded() {
    APP_LOADED.store(true, Ordering::Release);
}

/// Starts the watcher thread in this worker when `--reload` is on.
pub fn start(cfg: &Config, shutdown: Shutdown) {
    if !cfg.reload {
        return;
    }
    let _ = BOOT.set(SystemTime::now());
    let engine = Engine::from_setting(&cfg.reload_engine);
    let extra = cfg.reload_extra_files.clone();
    let spawned = std::thread::Builder::new()
        .name("gunicorn-reloader".into())
        .spawn(move || watch(engine, &extra, &shutdown));
    if let Err(e) = spawned {
        gunicorn_core::log_error!("cannot start the reloader: {e}");
    }
}

fn stopping(shutdown: &Shutdown) -> bool {
    shutdown.requested().is_some()
}

fn watch(engine: Engine, extra: &[String], shutdown: &Shutdown) {
    let changed = match engine {
        Engine::Inotify => match Inotify::new() {
            Ok(mut inotify) => inotify.run(extra, shutdown),
            Err(e) => {
                gunicorn_core::log_warning!(
                    "inotify is not available ({e}); --reload polls every second"
                );
                poll_run(extra, shutdown)
            }
        },
        Engine::Poll => poll_run(extra, shutdown),
    };
    if let Some(file) = changed {
        gunicorn_core::log_info!("Worker reloading: {} modified", file.display());
        crate::server_hooks::worker_int();
        shutdown.request(StopKind::Graceful);
    }
}

/// The files to watch now (see the module documentation).
fn current_files(extra: &[String]) -> HashSet<PathBuf> {
    let mut files: HashSet<PathBuf> = lock_failed().iter().cloned().collect();
    if !APP_LOADED.load(Ordering::Acquire) {
        return files;
    }
    let found = Python::attach(|py| python_files(py, extra));
    match found {
        Ok(found) => files.extend(found.into_iter().map(PathBuf::from)),
        Err(e) => gunicorn_core::log_debug!("reloader: cannot list the module files: {e}"),
    }
    files
}

fn lock_failed() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    FAILED_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Module files (gunicorn maps compiled `.pyc`/`.pyo` names back to `.py`) and the expansions
/// of the extra patterns (Python's `glob`, recursive `**` allowed).
fn python_files(py: Python<'_>, extra: &[String]) -> PyResult<Vec<String>> {
    let code = c"
def files(extra):
    import glob, sys
    out = []
    for m in tuple(sys.modules.values()):
        f = getattr(m, '__file__', None)
        if isinstance(f, str):
            if f.endswith(('.pyc', '.pyo')):
                f = f[:-1]
            out.append(f)
    for pattern in extra:
        out.extend(glob.glob(pattern, recursive=True))
    return out
";
    static FUNC: std::sync::OnceLock<Py<PyAny>> = std::sync::OnceLock::new();
    let func = match FUNC.get() {
        Some(f) => f.bind(py).clone(),
        None => {
            let module =
                PyModule::from_code(py, code, c"_gunicorn_reload.py", c"_gunicorn_reload")?;
            let f = module.getattr("files")?;
            let _ = FUNC.set(f.clone().unbind());
            f
        }
    };
    let list = PyList::new(py, extra)?;
    func.call1((list,))?.extract()
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A file seen for the first time was modified after the worker booted (and not in the future):
/// an edit made while the worker was importing it.
fn changed_since_boot(file: &Path) -> bool {
    let (Some(boot), Some(modified)) = (BOOT.get(), mtime(file)) else {
        return false;
    };
    modified > *boot && modified <= SystemTime::now()
}

/// `poll`: every second, any watched file whose mtime moved on since it was first seen.
fn poll_run(extra: &[String], shutdown: &Shutdown) -> Option<PathBuf> {
    let mut seen: HashMap<PathBuf, SystemTime> = HashMap::new();
    while !stopping(shutdown) {
        for file in current_files(extra) {
            let Some(now) = mtime(&file) else {
                continue;
            };
            match seen.get(&file) {
                None if changed_since_boot(&file) => return Some(file),
                None => {
                    seen.insert(file, now);
                }
                Some(before) if now > *before => return Some(file),
                Some(_) => {}
            }
        }
        std::thread::sleep(INTERVAL);
    }
    None
}

/// `inotify`: watches on the directories of the watched files, refreshed every second.
struct Inotify {
    fd: nix::sys::inotify::Inotify,
    dirs: HashMap<nix::sys::inotify::WatchDescriptor, PathBuf>,
    watched_dirs: HashSet<PathBuf>,
}

impl Inotify {
    fn new() -> nix::Result<Inotify> {
        use nix::sys::inotify::{InitFlags, Inotify as Fd};
        Ok(Inotify {
            fd: Fd::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?,
            dirs: HashMap::new(),
            watched_dirs: HashSet::new(),
        })
    }

    fn add_dirs(&mut self, files: &HashSet<PathBuf>) {
        use nix::sys::inotify::AddWatchFlags as F;
        let mask = F::IN_CREATE
            | F::IN_DELETE
            | F::IN_MODIFY
            | F::IN_CLOSE_WRITE
            | F::IN_MOVED_FROM
            | F::IN_MOVED_TO
            | F::IN_ATTRIB;
        for file in files {
            let Some(dir) = file.parent() else {
                continue;
            };
            if self.watched_dirs.contains(dir) || !dir.is_dir() {
                continue;
            }
            match self.fd.add_watch(dir, mask) {
                Ok(wd) => {
                    self.dirs.insert(wd, dir.to_path_buf());
                    self.watched_dirs.insert(dir.to_path_buf());
                }
                Err(e) => {
                    gunicorn_core::log_debug!("reloader: cannot watch {}: {e}", dir.display())
                }
            }
        }
    }

    fn run(&mut self, extra: &[String], shutdown: &Shutdown) -> Option<PathBuf> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut files = current_files(extra);
        self.add_dirs(&files);
        if let Some(file) = files.iter().find(|f| changed_since_boot(f)) {
            return Some(file.clone());
        }
        let mut last_refresh = std::time::Instant::now();
        while !stopping(shutdown) {
            let mut fds = [
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
                PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, PollTimeout::from(1000u16));
            let mut touched = Vec::new();
            while let Ok(events) = self.fd.read_events() {
                if events.is_empty() {
                    break;
                }
                for ev in events {
                    if let (Some(dir), Some(name)) = (self.dirs.get(&ev.wd), ev.name) {
                        touched.push(dir.join(name));
                    }
                }
            }
            if !touched.is_empty() || last_refresh.elapsed() >= INTERVAL {
                // Re-read the list so a file matched by a pattern for the first time, or a
                // module imported since, is known before the events are judged.
                let known = std::mem::replace(&mut files, current_files(extra));
                self.add_dirs(&files);
                last_refresh = std::time::Instant::now();
                // A file known only now (the application finished loading, or a module was
                // imported since) may have been edited before its directory was watched.
                if let Some(file) = files
                    .iter()
                    .find(|f| !known.contains(*f) && changed_since_boot(f))
                {
                    return Some(file.clone());
                }
            }
            if let Some(file) = touched.into_iter().find(|f| files.contains(f)) {
                self.settle();
                return Some(file);
            }
        }
        None
    }

    /// An in-place save is a truncation then writes: the first event may come while the file
    /// is still empty. Wait until the directory has been quiet for `SETTLE` (at most
    /// `SETTLE_MAX`) so the new worker imports the finished file.
    fn settle(&self) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = std::time::Instant::now() + SETTLE_MAX;
        while std::time::Instant::now() < deadline {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(SETTLE_MS)) {
                Ok(n) if n > 0 => {
                    while matches!(self.fd.read_events(), Ok(ev) if !ev.is_empty()) {}
                }
                _ => return,
            }
        }
    }
}

/// With `--reload`, a SyntaxError while importing the application becomes an application that
/// answers 500 with the traceback (gunicorn's `make_fail_app`), and the broken file is watched;
/// any other error is returned as it is.
pub fn syntax_error_app(
    py: Python<'_>,
    cfg: &Config,
    err: AppLoadError,
) -> Result<App, AppLoadError> {
    // With --preload the import happens once, in the master: a page served from there could
    // never be replaced by a reloaded worker, so the error stays fatal.
    if !cfg.reload || cfg.preload_app {
        return Err(err);
    }
    let AppLoadError::Exception { message, traceback } = &err else {
        return Err(err);
    };
    if !is_syntax_error(py, message) {
        return Err(err);
    }
    // gunicorn logs the exception, then serves it.
    gunicorn_core::log::log_exception(format_args!("{}", traceback.trim_end()));
    if let Some(file) = syntax_error_file(traceback) {
        lock_failed().push(file);
    }
    match fail_app(py, traceback) {
        Ok(callable) => Ok(App::from_callable(callable)),
        Err(_) => Err(err),
    }
}

/// `SyntaxError`, `IndentationError`, `TabError`...: the class named at the start of the
/// message is SyntaxError or a subclass of it.
fn is_syntax_error(py: Python<'_>, message: &str) -> bool {
    let Some(name) = message.split(':').next().map(str::trim) else {
        return false;
    };
    let Ok(builtins) = py.import("builtins") else {
        return false;
    };
    let (Ok(class), Ok(base)) = (builtins.getattr(name), builtins.getattr("SyntaxError")) else {
        return false;
    };
    py.import("builtins")
        .and_then(|b| b.getattr("issubclass"))
        .and_then(|f| f.call1((class, base)))
        .and_then(|r| r.extract::<bool>())
        .unwrap_or(false)
}

/// The file a SyntaxError points at: the last `File "PATH", line N` of its traceback.
fn syntax_error_file(traceback: &str) -> Option<PathBuf> {
    traceback
        .lines()
        .rev()
        .filter_map(|l| l.trim_start().strip_prefix("File \""))
        .filter_map(|rest| rest.split_once('"').map(|(path, _)| path))
        .find(|p| !p.starts_with('<'))
        .map(PathBuf::from)
}

/// A WSGI app answering `500 Internal Server Error` with `text` as a plain-text body.
fn fail_app(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    let code = c"
def make(text):
    body = text.encode('utf-8', 'replace')
    def app(environ, start_response):
        start_response('500 Internal Server Error', [
            ('Content-Type', 'text/plain'),
            ('Content-Length', str(len(body))),
        ])
        return [body]
    # The text, for a worker class that serves another interface (asgi) to build its own.
    app.gunicorn_fail_text = text
    return app
";
    let module = PyModule::from_code(py, code, c"_gunicorn_fail_app.py", c"_gunicorn_fail_app")?;
    Ok(module.getattr("make")?.call1((text,))?.unbind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_file_is_the_last_real_frame() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Traceback (most recent call last):\n  File \"/a/x.py\", line 1, in <module>\n  \
                 File \"<frozen importlib._bootstrap>\", line 2\n  File \"/srv/app.py\", line 3\n    \
                 def (:\n        ^\nSyntaxError: invalid syntax\n",
                Some("/srv/app.py"),
            ),
            ("SyntaxError: x\n", None),
            ("  File \"<string>\", line 1\n", None),
        ];
        for (tb, want) in cases {
            assert_eq!(syntax_error_file(tb), want.map(PathBuf::from), "{tb}");
        }
    }

    #[test]
    fn engines_from_the_setting() {
        let cases = [
            ("auto", Engine::Inotify),
            ("inotify", Engine::Inotify),
            ("poll", Engine::Poll),
        ];
        for (name, want) in cases {
            assert_eq!(Engine::from_setting(name), want, "{name}");
        }
    }

    #[test]
    fn syntax_errors_are_recognized_by_class() {
        crate::interpreter::ensure_initialized().unwrap();
        Python::attach(|py| {
            let cases = [
                ("SyntaxError: invalid syntax", true),
                ("IndentationError: unexpected indent", true),
                ("TabError: inconsistent use of tabs", true),
                ("NameError: name 'x' is not defined", false),
                ("NoSuchError: x", false),
                ("", false),
            ];
            for (message, want) in cases {
                assert_eq!(is_syntax_error(py, message), want, "{message}");
            }
        });
    }
}
