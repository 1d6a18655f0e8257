//! Loading the WSGI application the way gunicorn does (`gunicorn/util.py import_app`,
//! `gunicorn/app/base.py chdir`, `gunicorn/app/wsgiapp.py`):
//!
//! - `module:variable`, with dotted modules (`pkg.sub.wsgi:application`);
//! - `module` alone means `module:application`;
//! - `module:factory()` and `module:factory('x', debug=True)` call a factory, with arguments that
//!   must be Python literals (read with Python's own `ast` module and `ast.literal_eval`;
//!   anything else is refused);
//! - before importing: `--chdir` (the directory, default the current one, is made the working
//!   directory and put first on `sys.path`) and `--pythonpath` (a comma list, each entry made
//!   absolute and prepended);
//! - failures give gunicorn's one-line messages, and the worker exits with status 4.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gunicorn_core::Config;
use pyo3::exceptions::{PyImportError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::interpreter::ensure_initialized;
use crate::pyerr::format_exception;

pub use crate::loaded::{App, AppLoadError};

/// The application loaded in the master by [`preload`], inherited by the forked workers.
static PRELOADED: OnceLock<Py<PyAny>> = OnceLock::new();

/// A Python callable that returns the application, set by the `gunicorn` import package's
/// Custom Application API (`BaseApplication.run()` hands over its `wsgi` method). When set, it
/// replaces `wsgi_app` and `--paste`: gunicorn's `BaseApplication.wsgi()` calls `load()` in each
/// worker (in the master with `--preload`), and so does [`load`] here.
static LOADER: OnceLock<Py<PyAny>> = OnceLock::new();

/// Where the application comes from, in gunicorn's order of preference.
enum Source<'a> {
    /// A Python callable given by an embedding Python program ([`set_loader`]).
    Loader(&'a Py<PyAny>),
    /// `--paste PATH[#section]`: PasteDeploy's `loadapp`.
    Paste(&'a str),
    /// APP_MODULE or `wsgi_app`: `module:variable` or `module:factory(...)`.
    Uri(&'a str),
}

/// Makes `loader()` (a Python callable returning the WSGI application) the application's source
/// in this process and in the workers it forks. Returns false when one was already set.
pub fn set_loader(loader: Py<PyAny>) -> bool {
    LOADER.set(loader).is_ok()
}

/// Whether an application source other than `wsgi_app` exists (a loader or `--paste`), so the
/// command does not ask for APP_MODULE.
pub fn has_source_besides_uri(cfg: &Config) -> bool {
    LOADER.get().is_some() || cfg.paste.as_deref().is_some_and(|p| !p.is_empty())
}

fn source(cfg: &Config) -> Result<Source<'_>, AppLoadError> {
    if let Some(loader) = LOADER.get() {
        return Ok(Source::Loader(loader));
    }
    if let Some(paste) = cfg.paste.as_deref().filter(|s| !s.is_empty()) {
        return Ok(Source::Paste(paste));
    }
    cfg.wsgi_app
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Source::Uri)
        .ok_or(AppLoadError::NoApp)
}

/// `--preload`: initializes Python and loads the application in the master. Workers forked
/// afterwards reuse the same object from [`load`] instead of importing it again.
pub fn preload(cfg: &Config) -> Result<(), AppLoadError> {
    if PRELOADED.get().is_some() {
        return Ok(());
    }
    let app = load_fresh(cfg)?;
    let _ = PRELOADED.set(app.into_callable());
    Ok(())
}

/// Loads the application (or reuses the preloaded one) from its source: a loader set with
/// [`set_loader`], `--paste`, else `cfg.wsgi_app`. Initializes the interpreter when needed and
/// applies `raw_env` to `os.environ` first.
pub fn load(cfg: &Config) -> Result<App, AppLoadError> {
    if let Some(app) = PRELOADED.get() {
        return Ok(Python::attach(|py| App::from_callable(app.clone_ref(py))));
    }
    load_fresh(cfg)
}

fn load_fresh(cfg: &Config) -> Result<App, AppLoadError> {
    let source = source(cfg)?;
    ensure_initialized()?;
    let chdir = working_dir(cfg.chdir.as_deref())?;
    Python::attach(|py| {
        apply_raw_env(py, &cfg.raw_env).map_err(|e| exception(py, e))?;
        prepare_sys_path(py, &chdir, cfg.pythonpath.as_deref()).map_err(|e| exception(py, e))?;
        crate::logging::install(py, cfg).map_err(|e| exception(py, e))?;
        let loaded = match source {
            Source::Loader(loader) => call_loader(py, loader),
            Source::Paste(uri) => crate::paste::load_app(py, uri, &cfg.raw_paste_global_conf)
                .map_err(|e| exception(py, e))
                .and_then(|app| checked_app(app.into_bound(py), uri)),
            Source::Uri(uri) => import_app(py, uri),
        };
        loaded
            .map(App::from_callable)
            // --reload serves a SyntaxError as a 500 page until the file is fixed.
            .or_else(|e| crate::reload::syntax_error_app(py, cfg, e))
    })
}

/// Calls the embedding program's loader (`BaseApplication.wsgi`) and checks what it returns.
fn call_loader(py: Python<'_>, loader: &Py<PyAny>) -> Result<Py<PyAny>, AppLoadError> {
    let app = loader.call0(py).map_err(|e| exception(py, e))?;
    checked_app(app.into_bound(py), "load()")
}

/// gunicorn's last checks on a loaded application: not None, callable.
fn checked_app(app: Bound<'_, PyAny>, shown: &str) -> Result<Py<PyAny>, AppLoadError> {
    if app.is_none() {
        return Err(AppLoadError::Invalid(format!(
            "Failed to find application object: {}",
            repr(app.py(), shown)
        )));
    }
    if !app.is_callable() {
        return Err(AppLoadError::Invalid(
            "Application object must be callable.".into(),
        ));
    }
    Ok(app.unbind())
}

/// Enters the working directory of `--chdir` (gunicorn changes directory in the master, before
/// binding, so relative unix-socket, pidfile and log paths are taken from there). Safe to call
/// again, in the master and in the workers: see [`working_dir`].
pub fn enter_working_dir(cfg: &Config) -> Result<PathBuf, AppLoadError> {
    working_dir(cfg.chdir.as_deref())
}

/// The directory to work in: `--chdir` made absolute against the directory the server started
/// in, or that directory. Computed once per process tree (the master's answer is inherited by
/// the workers, so a relative `--chdir` is not applied twice), then entered.
fn working_dir(chdir: Option<&str>) -> Result<PathBuf, AppLoadError> {
    static START_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let start = START_DIR
        .get_or_init(|| std::env::current_dir().ok())
        .clone()
        .unwrap_or_else(|| PathBuf::from("/"));
    let dir = match chdir {
        Some(d) if !d.is_empty() => start.join(d),
        _ => start,
    };
    std::env::set_current_dir(&dir)
        .map_err(|_| AppLoadError::Chdir(chdir.unwrap_or_default().to_string()))?;
    Ok(dir)
}

/// gunicorn's `raw_env`: each `KEY=VALUE` goes into `os.environ` (and so the process env).
fn apply_raw_env(py: Python<'_>, raw_env: &[String]) -> PyResult<()> {
    if raw_env.is_empty() {
        return Ok(());
    }
    let environ = py.import("os")?.getattr("environ")?;
    for (key, value) in raw_env.iter().filter_map(|kv| kv.split_once('=')) {
        environ.set_item(key, value)?;
    }
    Ok(())
}

/// The dirty arbiter's Python setup, as a worker's before it loads the app (`crate::dirty`):
/// `raw_env` in `os.environ`, the working directory and `--pythonpath` on `sys.path` (so the
/// dirty apps import as the WSGI app does), and Python logging.
pub(crate) fn prepare_dirty_process(py: Python<'_>, cfg: &Config) -> Result<(), AppLoadError> {
    let chdir = working_dir(cfg.chdir.as_deref())?;
    apply_raw_env(py, &cfg.raw_env).map_err(|e| exception(py, e))?;
    prepare_sys_path(py, &chdir, cfg.pythonpath.as_deref()).map_err(|e| exception(py, e))?;
    crate::logging::install(py, cfg).map_err(|e| exception(py, e))
}

/// Puts the working directory first on `sys.path` (gunicorn's `chdir()`), then each
/// `--pythonpath` entry, made absolute, in front of it.
fn prepare_sys_path(py: Python<'_>, chdir: &Path, pythonpath: Option<&str>) -> PyResult<()> {
    let path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
    let insert_front = |dir: &Path| -> PyResult<()> {
        let s = PyString::new(py, &dir.to_string_lossy());
        if !path.contains(&s)? {
            path.insert(0, s)?;
        }
        Ok(())
    };
    insert_front(chdir)?;
    for entry in pythonpath.unwrap_or_default().split(',') {
        let entry = entry.trim();
        if !entry.is_empty() {
            insert_front(&chdir.join(entry))?;
        }
    }
    Ok(())
}

/// Splits `module:object`; `module` alone means `module:application`.
fn split_uri(uri: &str) -> (&str, &str) {
    uri.split_once(':').unwrap_or((uri, "application"))
}

/// What follows the colon: a name, or a call of a name with literal arguments.
enum Target<'py> {
    Name(String),
    Call {
        name: String,
        args: Bound<'py, PyTuple>,
        kwargs: Bound<'py, PyDict>,
    },
}

fn repr(py: Python<'_>, s: &str) -> String {
    PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("'{s}'"))
}

/// Python's keywords: `ast` parses none of them as a `Name` (`None`, `True`, `False` are
/// constants, the others syntax errors).
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// A plain ASCII identifier that `ast` would parse as a `Name` (the common `module:app`).
fn is_plain_name(obj: &str) -> bool {
    let mut chars = obj.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !PYTHON_KEYWORDS.contains(&obj)
}

/// Parses the object part with Python's `ast`, as gunicorn does. A plain name is recognised
/// without it: importing `ast` costs every worker ~0.4 MiB for nothing.
fn parse_target<'py>(py: Python<'py>, obj: &str) -> Result<Target<'py>, AppLoadError> {
    if is_plain_name(obj) {
        return Ok(Target::Name(obj.to_string()));
    }
    let not_a_name = || {
        AppLoadError::Invalid(format!(
            "Failed to parse {} as an attribute name or function call.",
            repr(py, obj)
        ))
    };
    let ast = py.import("ast").map_err(|e| exception(py, e))?;
    let body = ast
        .call_method1("parse", (obj, "<string>", "eval"))
        .and_then(|tree| tree.getattr("body"))
        .map_err(|_| not_a_name())?;
    let name_type = ast.getattr("Name").map_err(|e| exception(py, e))?;
    let call_type = ast.getattr("Call").map_err(|e| exception(py, e))?;
    let ident = |node: &Bound<'py, PyAny>| -> PyResult<String> { node.getattr("id")?.extract() };
    if body.is_instance(&name_type).unwrap_or(false) {
        return ident(&body).map(Target::Name).map_err(|_| not_a_name());
    }
    if !body.is_instance(&call_type).unwrap_or(false) {
        return Err(not_a_name());
    }
    let func = body.getattr("func").map_err(|_| not_a_name())?;
    if !func.is_instance(&name_type).unwrap_or(false) {
        return Err(AppLoadError::Invalid(format!(
            "Function reference must be a simple name: {}",
            repr(py, obj)
        )));
    }
    let name = ident(&func).map_err(|_| not_a_name())?;
    let not_literal = || {
        AppLoadError::Invalid(format!(
            "Failed to parse arguments as literal values: {}",
            repr(py, obj)
        ))
    };
    let literal_eval = ast.getattr("literal_eval").map_err(|e| exception(py, e))?;
    let mut args = Vec::new();
    for arg in body
        .getattr("args")
        .and_then(|a| a.try_iter())
        .map_err(|_| not_a_name())?
    {
        let arg = arg.map_err(|_| not_a_name())?;
        args.push(literal_eval.call1((arg,)).map_err(|_| not_literal())?);
    }
    let kwargs = PyDict::new(py);
    for kw in body
        .getattr("keywords")
        .and_then(|k| k.try_iter())
        .map_err(|_| not_a_name())?
    {
        let kw = kw.map_err(|_| not_a_name())?;
        let key = kw.getattr("arg").map_err(|_| not_a_name())?;
        if key.is_none() {
            // `f(**mapping)` is not a literal argument list.
            return Err(not_literal());
        }
        let value = kw
            .getattr("value")
            .and_then(|v| literal_eval.call1((v,)))
            .map_err(|_| not_literal())?;
        kwargs.set_item(key, value).map_err(|e| exception(py, e))?;
    }
    let args = PyTuple::new(py, args).map_err(|e| exception(py, e))?;
    Ok(Target::Call { name, args, kwargs })
}

/// gunicorn's `import_app`: import the module, find the object, call the factory, check it is
/// callable.
pub fn import_app(py: Python<'_>, uri: &str) -> Result<Py<PyAny>, AppLoadError> {
    let (module, obj) = split_uri(uri);
    let target = parse_target(py, obj)?;
    let name = match &target {
        Target::Name(n) | Target::Call { name: n, .. } => n.clone(),
    };
    let imported = match py.import(module) {
        Ok(m) => m,
        Err(e) => {
            // `gunicorn hello.py` is a common mistake; point at the right spelling.
            if module.ends_with(".py") && Path::new(module).exists() {
                let stem = module.rsplit_once('.').map_or(module, |(s, _)| s);
                return Err(AppLoadError::Invalid(format!(
                    "Failed to find application, did you mean '{stem}:{obj}'?"
                )));
            }
            return Err(exception(py, e));
        }
    };
    let mut app = imported.getattr(name.as_str()).map_err(|_| {
        AppLoadError::Invalid(format!(
            "Failed to find attribute {} in {}.",
            repr(py, &name),
            repr(py, module)
        ))
    })?;
    if let Target::Call { args, kwargs, .. } = &target {
        app = match app.call(args, Some(kwargs)) {
            Ok(a) => a,
            Err(e) if e.is_instance_of::<PyTypeError>(py) && raised_by_the_call_itself(py, &e) => {
                return Err(AppLoadError::Invalid(format!(
                    "The factory {} in module {} could not be called with the specified arguments",
                    repr(py, &name),
                    repr(py, module)
                )));
            }
            Err(e) => return Err(exception(py, e)),
        };
    }
    checked_app(app, obj)
}

/// A TypeError with no traceback at all: it was raised by the call machinery itself (the
/// arguments do not match the factory's signature), not inside the factory. (Called from Rust
/// there is no caller frame, so a TypeError raised in the factory's body has one entry.)
fn raised_by_the_call_itself(py: Python<'_>, err: &PyErr) -> bool {
    err.traceback(py).is_none()
}

/// A Python exception as an [`AppLoadError`] with its formatted traceback.
fn exception(py: Python<'_>, err: PyErr) -> AppLoadError {
    let traceback = format_exception(py, &err);
    let message = traceback
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    let traceback = if err.is_instance_of::<PyImportError>(py) {
        format!("{}\n{}\n", traceback.trim_end(), interpreter_line(py))
    } else {
        traceback
    };
    AppLoadError::Exception { message, traceback }
}

/// One line naming the interpreter and the `sys.path` an import was tried with, logged after an
/// ImportError's traceback: the usual cause is a package installed in another environment than
/// the one the server runs.
fn interpreter_line(py: Python<'_>) -> String {
    let described = (|| -> PyResult<String> {
        let sys = py.import("sys")?;
        let executable: String = sys.getattr("executable")?.extract()?;
        let version: String = sys.getattr("version")?.extract()?;
        let version = version.split_whitespace().next().unwrap_or("").to_string();
        let path = sys.getattr("path")?.repr()?.to_string();
        Ok(format!(
            "Python {version} ({executable}) looked for the application with sys.path = {path}"
        ))
    })();
    described.unwrap_or_else(|e| format!("(the interpreter could not be described: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_splitting() {
        let cases = [
            ("hello:app", ("hello", "app")),
            ("hello", ("hello", "application")),
            ("pkg.sub.wsgi:application", ("pkg.sub.wsgi", "application")),
            ("m:create_app('a:b')", ("m", "create_app('a:b')")),
        ];
        for (uri, want) in cases {
            assert_eq!(split_uri(uri), want, "{uri}");
        }
    }

    /// Names taken without `ast`; everything else goes to `ast` as in gunicorn.
    #[test]
    fn plain_names() {
        let cases = [
            ("app", true),
            ("_app2", true),
            ("application", true),
            ("match", true),
            ("2app", false),
            ("", false),
            ("None", false),
            ("class", false),
            ("create_app()", false),
            ("app.wsgi", false),
            (" app", false),
            ("app ", false),
            ("\u{e9}t\u{e9}", false),
        ];
        for (obj, want) in cases {
            assert_eq!(is_plain_name(obj), want, "{obj:?}");
        }
    }
}
