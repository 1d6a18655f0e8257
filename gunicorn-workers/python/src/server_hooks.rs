//! gunicorn's server hooks (`on_starting`, `pre_fork`, `post_request`, ...) read from the config
//! file and called at the points gunicorn calls them, with Python objects carrying the attributes
//! real hooks use (`server.log`, `server.cfg`, `worker.pid`, `worker.age`, `req.method`,
//! `resp.status`...). The objects are defined in `server_hooks.py`.
//!
//! Where a raising hook is fatal follows gunicorn: `on_starting`, `when_ready` and the first
//! `nworkers_changed` run before the master serves, so an exception there ends the master with
//! status 1; `post_fork` and `post_worker_init` run before the worker has booted, so the worker
//! exits with 3 ("Worker failed to boot"); `pre_request` is handled like an application error (a
//! 500 and "Error handling request"); `pre_fork`, `on_reload`, `child_exit` and later
//! `nworkers_changed` calls run in gunicorn's main loop, whose unhandled exception ends the
//! master with status 255 after a quick stop of the workers (reported to the arbiter through
//! `Hooks::take_failure`). Every other hook is logged with its traceback and the server goes on.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use gunicorn_core::log::Level;
use gunicorn_core::{Config, Shutdown, StopKind};
use gunicorn_http::Request;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyTuple};

/// Every server hook gunicorn has, with the number of arguments it is called with
/// (`post_request` also accepts 2 or 3, as gunicorn does).
pub const HOOKS: &[(&str, usize)] = &[
    ("on_starting", 1),
    ("on_reload", 1),
    ("when_ready", 1),
    ("pre_fork", 2),
    ("post_fork", 2),
    ("post_worker_init", 1),
    ("worker_int", 1),
    ("worker_abort", 1),
    ("pre_exec", 1),
    ("pre_request", 2),
    ("post_request", 4),
    ("child_exit", 2),
    ("worker_exit", 2),
    ("nworkers_changed", 3),
    ("on_exit", 1),
    // The dirty arbiter's hooks (docs/dirty.md), called by `gunicorn.dirty` in the dirty
    // arbiter and its workers (see `crate::dirty`).
    ("on_dirty_starting", 1),
    ("dirty_post_fork", 2),
    ("dirty_worker_init", 1),
    ("dirty_worker_exit", 2),
];

/// The arity gunicorn checks for the hook `name`, or None if `name` is not a hook.
pub fn arity_of(name: &str) -> Option<usize> {
    HOOKS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// The Python side (`server_hooks.py`).
const RUNTIME_SOURCE: &str = include_str!("server_hooks.py");

/// The hooks set by the config file, by name (replaced as a whole when HUP re-reads it).
static REGISTERED: Mutex<Option<HashMap<&'static str, Py<PyAny>>>> = Mutex::new(None);
/// Fast checks on the request path: is a `pre_request` / `post_request` hook set?
static PRE_REQUEST: AtomicBool = AtomicBool::new(false);
static POST_REQUEST: AtomicBool = AtomicBool::new(false);
/// Any hook at all is set (nothing else in this module takes the GIL otherwise).
static ANY: AtomicBool = AtomicBool::new(false);

/// The configuration the `cfg` objects show, and the cached Python object for it.
static CONFIG: Mutex<Option<Config>> = Mutex::new(None);
static CONFIG_OBJECT: Mutex<Option<Py<PyAny>>> = Mutex::new(None);
/// The `server_hooks.py` module, created once per process tree.
static RUNTIME: OnceLock<Py<PyModule>> = OnceLock::new();
/// This process's `server` object (the master's; a worker inherits it).
static SERVER: Mutex<Option<Py<PyAny>>> = Mutex::new(None);
/// In the master: the worker object between `pre_fork` and the fork. In a worker: itself.
static WORKER: Mutex<Option<Py<PyAny>>> = Mutex::new(None);
/// In a worker: its stop request (to tell a quick stop, which runs `worker_int`).
static WORKER_SHUTDOWN: Mutex<Option<Shutdown>> = Mutex::new(None);
/// `post_worker_init` runs once per worker process.
static WORKER_INIT_DONE: AtomicBool = AtomicBool::new(false);
/// A master-loop hook raised (see [`fail_master_loop`]).
static MASTER_FAILURE: Mutex<Option<String>> = Mutex::new(None);
/// `worker_int`, `worker_abort` and `worker_exit` run at most once per worker process.
static WORKER_INT: Once = Once::new();
static WORKER_ABORT: Once = Once::new();
static WORKER_EXIT: Once = Once::new();

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a line from a hook's `log.info(...)` etc. through the server's error log.
#[pyfunction]
fn emit(levelno: i32, text: &str) {
    let level = match levelno {
        n if n >= 50 => Level::Critical,
        n if n >= 40 => Level::Error,
        n if n >= 30 => Level::Warning,
        n if n >= 20 => Level::Info,
        _ => Level::Debug,
    };
    gunicorn_core::log::log(level, format_args!("{text}"));
}

fn runtime(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Some(m) = RUNTIME.get() {
        return Ok(m.bind(py).clone());
    }
    let code = CString::new(RUNTIME_SOURCE)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let module = PyModule::from_code(py, &code, c"_gunicorn_hooks.py", c"_gunicorn_hooks")?;
    module.setattr("_emit", wrap_pyfunction!(emit, py)?)?;
    let _ = RUNTIME.set(module.clone().unbind());
    Ok(module)
}

/// A hook value that cannot be used: `(name, repr(value), reason)`, reported by the config
/// file loader as gunicorn's "Invalid value for NAME: VALUE" error.
#[derive(Debug)]
pub struct InvalidHook {
    /// The hook's name.
    pub name: String,
    /// `repr()` of the value.
    pub value: String,
    /// Why (gunicorn's TypeError text, e.g. "Value must have an arity of: 1").
    pub reason: String,
}

/// Resolves (`"module.func"` strings are imported) and arity-checks the hooks found in the
/// config file, then makes them the current set, replacing the previous one. On error the
/// previous set stays.
pub fn register(py: Python<'_>, found: Vec<(String, Bound<'_, PyAny>)>) -> Result<(), InvalidHook> {
    let rt = runtime(py).map_err(|e| InvalidHook {
        name: "server hooks".into(),
        value: String::new(),
        reason: e.to_string(),
    })?;
    let mut hooks = HashMap::new();
    for (name, value) in found {
        let Some((static_name, arity)) = HOOKS.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let checked = rt
            .getattr("check")
            .and_then(|check| check.call1((name.as_str(), &value, *arity)))
            .map_err(|e| InvalidHook {
                name: name.clone(),
                value: value
                    .repr()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| "<unprintable>".into()),
                reason: e.value(py).to_string(),
            })?;
        hooks.insert(*static_name, checked.unbind());
    }
    PRE_REQUEST.store(hooks.contains_key("pre_request"), Ordering::Release);
    POST_REQUEST.store(hooks.contains_key("post_request"), Ordering::Release);
    ANY.store(!hooks.is_empty(), Ordering::Release);
    *lock(&REGISTERED) = Some(hooks);
    Ok(())
}

/// The hooks the config file set, as `(name, __qualname__, repr())` in [`HOOKS`]' order: how
/// gunicorn's `--print-config` (`<on_starting()>`) and its "Current configuration:" dump
/// (`<function on_starting at 0x...>`) show them.
pub fn describe(py: Python<'_>) -> Vec<(&'static str, String, String)> {
    let registered = lock(&REGISTERED);
    let Some(hooks) = registered.as_ref() else {
        return Vec::new();
    };
    HOOKS
        .iter()
        .filter_map(|(name, _)| {
            let hook = hooks.get(name)?.bind(py);
            let qualname = hook
                .getattr("__qualname__")
                .map(|q| q.to_string())
                .unwrap_or_else(|_| (*name).to_string());
            let repr = hook
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| format!("<{qualname}>"));
            Some((*name, qualname, repr))
        })
        .collect()
}

/// True when the config file set at least one hook.
pub fn any() -> bool {
    ANY.load(Ordering::Acquire)
}

fn hook(py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
    lock(&REGISTERED)
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|h| h.clone_ref(py))
}

/// Sets the configuration `server.cfg` and `worker.cfg` show (at start and after each HUP).
pub fn set_config(cfg: &Config) {
    *lock(&CONFIG) = Some(cfg.clone());
    *lock(&CONFIG_OBJECT) = None;
}

/// The configuration last given to [`set_config`] (after a HUP: the new one).
pub(crate) fn current_config() -> Option<Config> {
    lock(&CONFIG).clone()
}

/// The `cfg` object hooks see (`server.cfg`); the dirty arbiter's `cfg` too.
pub(crate) fn config_object(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    if let Some(obj) = lock(&CONFIG_OBJECT).as_ref() {
        return Ok(obj.bind(py).clone());
    }
    let rows: Vec<(&str, String)> = {
        let cfg = lock(&CONFIG);
        let cfg = cfg.clone().unwrap_or_default();
        gunicorn_core::config::SETTINGS
            .iter()
            .map(|s| (s.name, s.show(&cfg)))
            .collect()
    };
    let obj = runtime(py)?.getattr("make_config")?.call1((rows,))?;
    *lock(&CONFIG_OBJECT) = Some(obj.clone().unbind());
    Ok(obj)
}

/// The hook `name` the config file set, for the dirty arbiter (`crate::dirty`), which calls
/// its four hooks itself.
pub(crate) fn hook_object(py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
    hook(py, name)
}

/// The `log` object hooks see (`server.log`), writing through the server's error log.
pub(crate) fn log_object(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    runtime(py)?.getattr("LOG")
}

fn server(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let cfg = config_object(py)?;
    let mut slot = lock(&SERVER);
    if let Some(s) = slot.as_ref() {
        let s = s.bind(py).clone();
        s.setattr("cfg", cfg)?;
        return Ok(s);
    }
    let s = runtime(py)?
        .getattr("Server")?
        .call1((std::process::id(), cfg))?;
    *slot = Some(s.clone().unbind());
    Ok(s)
}

/// A server hook (or building its arguments) raised.
#[derive(Debug, thiserror::Error)]
#[error("{traceback}")]
struct HookRaised {
    /// Python's formatted traceback, which gunicorn logs.
    traceback: String,
}

impl HookRaised {
    fn new(py: Python<'_>, err: &PyErr) -> HookRaised {
        HookRaised {
            traceback: crate::pyerr::format_exception(py, err),
        }
    }
}

/// Calls hook `name` if set.
fn call<F>(py: Python<'_>, name: &str, args: F) -> Result<(), HookRaised>
where
    F: for<'a> FnOnce(Python<'a>) -> PyResult<Bound<'a, PyTuple>>,
{
    let Some(h) = hook(py, name) else {
        return Ok(());
    };
    let args = args(py).map_err(|e| HookRaised::new(py, &e))?;
    h.bind(py)
        .call1(args)
        .map(|_| ())
        .map_err(|e| HookRaised::new(py, &e))
}

/// Runs hook `name` with the GIL if it is set.
fn call_with_gil<F>(name: &str, args: F) -> Result<(), HookRaised>
where
    F: for<'a> FnOnce(Python<'a>) -> PyResult<Bound<'a, PyTuple>>,
{
    if !any() {
        return Ok(());
    }
    Python::attach(|py| {
        if hook(py, name).is_none() {
            return Ok(());
        }
        call(py, name, args)
    })
}

/// A hook of the master's loop raised: gunicorn's master dies of it (the exception leaves its
/// main loop). Recorded for the arbiter, which asks through `Hooks::take_failure`.
fn fail_master_loop(result: Result<(), HookRaised>) {
    if let Err(e) = result {
        *lock(&MASTER_FAILURE) = Some(e.traceback);
    }
}

/// The failure recorded by [`fail_master_loop`], once.
pub(crate) fn take_master_failure() -> Option<String> {
    lock(&MASTER_FAILURE).take()
}

/// Runs hook `name` with the GIL if it is set; a raised exception is logged.
fn call_logged<F>(name: &str, args: F) -> Result<(), HookRaised>
where
    F: for<'a> FnOnce(Python<'a>) -> PyResult<Bound<'a, PyTuple>>,
{
    let result = call_with_gil(name, args);
    if let Err(e) = &result {
        gunicorn_core::log::log_exception(format_args!(
            "Exception in {name} hook\n{}",
            e.traceback.trim_end()
        ));
    }
    result
}

/// gunicorn exits 1 when `on_starting`, `when_ready` or the first `nworkers_changed` raise (the
/// exception leaves `Arbiter.run` before the main loop).
fn fatal_in_master(result: Result<(), HookRaised>) {
    if result.is_err() {
        std::process::exit(1);
    }
}

fn server_args<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, [server(py)?])
}

// ---- master ----

pub(crate) fn on_starting() {
    fatal_in_master(call_logged("on_starting", server_args));
}

pub(crate) fn when_ready() {
    fatal_in_master(call_logged("when_ready", server_args));
}

pub(crate) fn on_reload() {
    fail_master_loop(call_with_gil("on_reload", server_args));
}

pub(crate) fn pre_exec() {
    let _ = call_logged("pre_exec", server_args);
}

pub(crate) fn on_exit() {
    let _ = call_logged("on_exit", server_args);
}

pub(crate) fn nworkers_changed(new: u64, old: Option<u64>) {
    if !any() {
        return;
    }
    // server.num_workers follows the count whether or not this hook is set.
    let _ = Python::attach(|py| server(py).and_then(|s| s.setattr("num_workers", new)));
    let result = call_with_gil("nworkers_changed", |py| {
        let s = server(py)?;
        let old = match old {
            Some(o) => o.into_pyobject(py)?.into_any(),
            None => py.None().into_bound(py),
        };
        PyTuple::new(py, [s, new.into_pyobject(py)?.into_any(), old])
    });
    if old.is_none() {
        // Before the main loop (gunicorn: in setup()): exit 1.
        if let Err(e) = &result {
            gunicorn_core::log::log_exception(format_args!(
                "Exception in nworkers_changed hook\n{}",
                e.traceback.trim_end()
            ));
        }
        fatal_in_master(result);
    } else {
        fail_master_loop(result);
    }
}

/// Before fork: builds the worker object of this age and runs `pre_fork(server, worker)`.
pub(crate) fn pre_fork(age: u64) {
    if !any() {
        return;
    }
    let made = Python::attach(|py| -> PyResult<()> {
        server(py)?.setattr("worker_age", age)?;
        let w =
            runtime(py)?
                .getattr("Worker")?
                .call1((age, std::process::id(), config_object(py)?))?;
        *lock(&WORKER) = Some(w.unbind());
        Ok(())
    });
    if let Err(e) = made {
        gunicorn_core::log_error!("cannot build the worker object for the server hooks: {e}");
        return;
    }
    fail_master_loop(call_with_gil("pre_fork", |py| {
        let w = lock(&WORKER)
            .as_ref()
            .map(|w| w.bind(py).clone())
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("no worker object"))?;
        PyTuple::new(py, [server(py)?, w])
    }));
}

/// After fork, in the master: the new worker is known by its pid in `server.WORKERS`.
pub(crate) fn after_fork_parent(pid: i32) {
    if !any() || pid <= 0 {
        return;
    }
    let _ = Python::attach(|py| -> PyResult<()> {
        let Some(w) = lock(&WORKER).take() else {
            return Ok(());
        };
        let w = w.bind(py);
        w.setattr("pid", pid)?;
        server(py)?.getattr("WORKERS")?.set_item(pid, w)?;
        Ok(())
    });
}

/// In the master, after the worker `pid` was reaped: `child_exit(server, worker)`.
pub(crate) fn child_exit(pid: i32) {
    if !any() {
        return;
    }
    fail_master_loop(call_with_gil("child_exit", |py| {
        let s = server(py)?;
        let w = s
            .getattr("WORKERS")?
            .call_method1("pop", (pid, py.None()))?;
        let w = if w.is_none() {
            let w = runtime(py)?.getattr("Worker")?.call1((
                0,
                std::process::id(),
                config_object(py)?,
                pid,
            ))?;
            w
        } else {
            w
        };
        w.setattr("alive", false)?;
        PyTuple::new(py, [s, w])
    }));
}

// ---- worker ----

/// In the new worker: its object gets its pid and the master's, then `post_fork(server,
/// worker)`. A raising hook means the worker failed to boot (exit 3), as in gunicorn.
pub(crate) fn post_fork(age: u64, ppid: i32, cfg: &Config, shutdown: &Shutdown) {
    *lock(&WORKER_SHUTDOWN) = Some(shutdown.clone());
    set_config(cfg);
    if !any() {
        return;
    }
    if let Err(e) = Python::attach(|py| worker_object(py, age, ppid).map(drop)) {
        gunicorn_core::log_error!("cannot build the worker object for the server hooks: {e}");
    }
    let result = call_logged("post_fork", |py| {
        PyTuple::new(py, [server(py)?, current_worker(py)?])
    });
    if result.is_err() {
        exit_worker(3);
    }
    let has_int = Python::attach(|py| hook(py, "worker_int").is_some());
    if has_int {
        spawn_quick_stop_watcher(shutdown.clone());
    }
}

fn worker_object(py: Python<'_>, age: u64, ppid: i32) -> PyResult<Bound<'_, PyAny>> {
    let mut slot = lock(&WORKER);
    let w = match slot.as_ref() {
        Some(w) => w.bind(py).clone(),
        None => runtime(py)?
            .getattr("Worker")?
            .call1((age, ppid, config_object(py)?))?,
    };
    w.setattr("pid", std::process::id())?;
    w.setattr("ppid", ppid)?;
    w.setattr("age", age)?;
    w.setattr("cfg", config_object(py)?)?;
    *slot = Some(w.clone().unbind());
    Ok(w)
}

/// This worker's object (made on first use when no `post_fork` built it).
fn current_worker(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    if let Some(w) = lock(&WORKER).as_ref() {
        return Ok(w.bind(py).clone());
    }
    let ppid = nix::unistd::getppid().as_raw();
    worker_object(py, 0, ppid)
}

/// Logs `Worker exiting`, runs `worker_exit` and ends the worker with `status`.
fn exit_worker(status: i32) -> ! {
    gunicorn_core::log_info!("Worker exiting (pid: {})", std::process::id());
    worker_exit();
    std::process::exit(status)
}

/// `post_worker_init(worker)`, once per worker, after its application was loaded. A raising
/// hook makes the worker fail to boot (exit 3), as in gunicorn.
pub fn post_worker_init(py: Python<'_>) {
    if !any() || WORKER_INIT_DONE.swap(true, Ordering::AcqRel) {
        return;
    }
    if hook(py, "post_worker_init").is_none() {
        let _ = current_worker(py).and_then(|w| w.setattr("booted", true));
        return;
    }
    let result = call(py, "post_worker_init", |py| {
        PyTuple::new(py, [current_worker(py)?])
    });
    match result {
        Ok(()) => {
            let _ = current_worker(py).and_then(|w| w.setattr("booted", true));
        }
        Err(e) => {
            gunicorn_core::log_error!("Exception in worker process\n{}", e.traceback.trim_end());
            exit_worker(3);
        }
    }
}

/// Runs `worker_int(worker)` once (INT/QUIT, or a `--reload` change).
pub fn worker_int() {
    if !any() {
        return;
    }
    WORKER_INT.call_once(|| {
        let _ = call_logged("worker_int", |py| {
            let w = current_worker(py)?;
            w.setattr("alive", false)?;
            PyTuple::new(py, [w])
        });
    });
}

/// Runs `worker_abort(worker)` once (SIGABRT from the master's timeout). Worker classes call it
/// from their abort handler before ending the process.
pub fn worker_abort() {
    if !any() {
        return;
    }
    WORKER_ABORT.call_once(|| {
        let _ = call_logged("worker_abort", |py| {
            let w = current_worker(py)?;
            w.setattr("alive", false)?;
            w.setattr("aborted", true)?;
            PyTuple::new(py, [w])
        });
    });
}

/// Runs `worker_exit(server, worker)` once, as the worker process ends (after `worker_int` if
/// the stop was a quick one). Every way out of a worker calls it.
pub fn worker_exit() {
    if !any() {
        return;
    }
    let quick = lock(&WORKER_SHUTDOWN)
        .as_ref()
        .is_some_and(|s| s.requested() == Some(StopKind::Quick));
    if quick {
        worker_int();
    }
    WORKER_EXIT.call_once(|| {
        let _ = call_logged("worker_exit", |py| {
            let w = current_worker(py)?;
            w.setattr("alive", false)?;
            PyTuple::new(py, [server(py)?, w])
        });
    });
}

/// A worker's SIGABRT handler for worker classes that do nothing more on a timeout: the
/// `worker_abort` hook, then exit 1 (gunicorn's `handle_abort`).
pub fn abort_and_exit() {
    worker_abort();
    exit_worker(1)
}

/// gunicorn runs `worker_int` in the INT/QUIT signal handler, before the worker unwinds. Our
/// signal handlers only record the stop, so this thread runs the hook as soon as it is seen.
fn spawn_quick_stop_watcher(shutdown: Shutdown) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let _ = std::thread::Builder::new()
        .name("gunicorn-worker-int".into())
        .spawn(move || loop {
            match shutdown.requested() {
                Some(StopKind::Quick) => {
                    worker_int();
                    return;
                }
                Some(StopKind::Graceful) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                None => {
                    let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
            }
        });
}

// ---- requests ----

/// Whether `pre_request` / `post_request` hooks are set (checked per request without the GIL).
pub fn request_hooks() -> (bool, bool) {
    (
        PRE_REQUEST.load(Ordering::Acquire),
        POST_REQUEST.load(Ordering::Acquire),
    )
}

/// The `req` object of gunicorn's `http.Request` attributes, for the request hooks and a
/// `--logger-class` class's `access()`.
pub(crate) fn request_object<'py>(py: Python<'py>, req: &Request) -> PyResult<Bound<'py, PyAny>> {
    let headers = PyList::empty(py);
    for (name, value) in req.headers.iter() {
        headers.append((name, value))?;
    }
    runtime(py)?.getattr("Request")?.call1((
        req.method.as_str(),
        req.uri.as_str(),
        req.path.as_str(),
        req.query.as_str(),
        req.fragment.as_str(),
        req.version,
        headers,
        req.scheme,
    ))
}

/// `pre_request(worker, req)`; the caller treats an exception like one from the application.
/// Returns the request object for `post_request`.
pub fn pre_request<'py>(py: Python<'py>, req: &Request) -> PyResult<Bound<'py, PyAny>> {
    let r = request_object(py, req)?;
    if let Some(h) = hook(py, "pre_request") {
        h.bind(py).call1((current_worker(py)?, &r))?;
    }
    Ok(r)
}

/// What `post_request` sees of the response.
pub struct ResponseInfo<'a> {
    /// The status line's text ("200 OK"), if a response went out.
    pub status: Option<String>,
    /// The response headers.
    pub headers: &'a [(String, String)],
    /// Body bytes sent.
    pub sent: u64,
}

/// `post_request(worker, req, environ, resp)`; an exception is logged, as gunicorn does.
pub fn post_request(
    py: Python<'_>,
    req: &Request,
    req_obj: Option<&Bound<'_, PyAny>>,
    environ: Option<&Bound<'_, PyDict>>,
    resp: ResponseInfo<'_>,
) {
    let Some(h) = hook(py, "post_request") else {
        return;
    };
    let args = || -> PyResult<Bound<'_, PyTuple>> {
        let r = match req_obj {
            Some(r) => r.clone(),
            None => request_object(py, req)?,
        };
        let env = match environ {
            Some(e) => e.clone().into_any(),
            None => PyDict::new(py).into_any(),
        };
        let headers = PyList::empty(py);
        for (name, value) in resp.headers {
            headers.append((name, value))?;
        }
        let resp = runtime(py)?
            .getattr("Response")?
            .call1((resp.status, headers, resp.sent))?;
        PyTuple::new(py, [current_worker(py)?, r, env, resp])
    };
    let result = args().and_then(|args| h.bind(py).call1(args));
    if let Err(e) = result {
        gunicorn_core::log::log_exception(format_args!(
            "Exception in post_request hook\n{}",
            crate::pyerr::format_exception(py, &e).trim_end()
        ));
    }
}

/// The status line of an error page the bridge wrote instead of the app's response.
pub fn error_status_text(code: u16) -> String {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        413 => "Request Entity Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "",
    };
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_checked_like_gunicorn() {
        crate::interpreter::ensure_initialized().unwrap();
        Python::attach(|py| {
            // (hook, Python expression, Ok or the start of the reason)
            let cases: &[(&str, &str, Result<(), &str>)] = &[
                ("on_starting", "lambda server: None", Ok(())),
                (
                    "on_starting",
                    "lambda: None",
                    Err("Value must have an arity of: 1"),
                ),
                ("pre_fork", "lambda s, w=None: None", Ok(())),
                (
                    "pre_fork",
                    "lambda s, *, w: None",
                    Err("Value must have an arity of: 2"),
                ),
                ("nworkers_changed", "lambda s, n, o: None", Ok(())),
                ("post_request", "lambda w, r: None", Ok(())),
                ("post_request", "lambda w, r, e: None", Ok(())),
                ("post_request", "lambda w, r, e, x: None", Ok(())),
                (
                    "post_request",
                    "lambda w: None",
                    Err("Value must have an arity of: 4"),
                ),
                (
                    "when_ready",
                    "'os.getcwd'",
                    Err("Value must have an arity of: 1"),
                ),
                ("when_ready", "'os.path.basename'", Ok(())),
                (
                    "when_ready",
                    "'nodots'",
                    Err("Value 'nodots' is not import string"),
                ),
                (
                    "when_ready",
                    "'os.nosuchthing'",
                    Err("Can not load 'nosuchthing' from 'os'"),
                ),
                (
                    "when_ready",
                    "'no_such_mod_xyz.f'",
                    Err("No module named 'no_such_mod_xyz'"),
                ),
                ("when_ready", "None", Err("Value is not callable: None")),
            ];
            for (name, expr, want) in cases {
                let c = CString::new(*expr).unwrap();
                let value = py.eval(&c, None, None).unwrap();
                let got = register(py, vec![(name.to_string(), value)]);
                match (got, want) {
                    (Ok(()), Ok(())) => {}
                    (Err(e), Err(reason)) => {
                        assert_eq!(e.name, *name);
                        assert!(
                            e.reason.starts_with(reason),
                            "{name} = {expr}: {}",
                            e.reason
                        );
                    }
                    (got, want) => panic!("{name} = {expr}: got {got:?}, want {want:?}"),
                }
            }
            // A failed check keeps the previous set.
            let ok = py.eval(c"lambda server: None", None, None).unwrap();
            register(py, vec![("on_exit".into(), ok)]).unwrap();
            let bad = py.eval(c"lambda: None", None, None).unwrap();
            assert!(register(py, vec![("on_exit".into(), bad)]).is_err());
            assert!(hook(py, "on_exit").is_some());
            register(py, Vec::new()).unwrap();
            assert!(!any());
        });
    }

    #[test]
    fn every_gunicorn_hook_is_known() {
        let cases = [
            ("on_starting", Some(1)),
            ("post_request", Some(4)),
            ("nworkers_changed", Some(3)),
            ("worker_exit", Some(2)),
            ("dirty_post_fork", Some(2)),
            ("dirty_worker_init", Some(1)),
            ("workers", None),
            ("ssl_context", None),
        ];
        for (name, want) in cases {
            assert_eq!(arity_of(name), want, "{name}");
        }
        assert_eq!(HOOKS.len(), 19);
    }
}
