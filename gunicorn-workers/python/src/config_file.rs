//! The config file, `gunicorn.conf.py`: a Python file whose module-level names are settings.
//!
//! It is executed with the embedded interpreter the way gunicorn executes it
//! (`Application.load_config_from_module_name_or_filename`):
//! - `python:MODULE` imports `MODULE` (the current directory is on `sys.path`, as gunicorn's
//!   `chdir()` puts it there before loading the file);
//! - `file:PATH` or a bare `PATH` runs the file as the module `__config__` (registered in
//!   `sys.modules`), so `__file__` and relative imports from its directory work as in gunicorn.
//!   A missing file is the error `'PATH' doesn't exist`.
//!
//! Every module-level name that is a setting is converted to a [`Value`] and returned in
//! definition order; the caller applies them to the `Config`, where the settings table validates
//! them. Other names are ignored, as gunicorn ignores them, with one exception made on purpose: an
//! unknown lowercase name bound to plain data (a str, number, bool, list, tuple or dict) is most
//! likely a misspelt or unsupported setting (`worker = 4`), so it gets one warning line. Modules,
//! functions and classes (imports, helpers) stay silent. A gunicorn 27 setting or server hook
//! this server does not honour ([`gunicorn_core::gunicorn27`]) is refused with one line unless
//! its value is gunicorn's default or `None`: nothing of gunicorn's is ignored silently. Server hooks (`on_starting`,
//! `post_request`...) are not settings here: they are checked and kept by
//! [`crate::server_hooks`].

use gunicorn_core::config::Config;
use gunicorn_core::Value;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::interpreter::{ensure_initialized, PythonError};

/// The name gunicorn gives the module a config file runs as.
const MODULE_NAME: &str = "__config__";

/// Why the config file could not be loaded. Each message is what the user sees before exit 1.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The interpreter could not be started.
    #[error(transparent)]
    Python(#[from] PythonError),
    /// The file does not exist (gunicorn's `%r doesn't exist`).
    #[error("'{0}' doesn't exist")]
    NotFound(String),
    /// Executing or importing the file raised; `traceback` is Python's formatted traceback.
    #[error("Failed to read config file: {location}\n{traceback}")]
    Exception {
        /// The file path or `python:MODULE`.
        location: String,
        /// The formatted traceback, ending in a newline.
        traceback: String,
    },
    /// A server hook is bound to something unusable (not callable, wrong arity).
    #[error("Invalid value for {name}: {value}: {reason}")]
    Invalid {
        /// The hook's name.
        name: String,
        /// `repr()` of the value.
        value: String,
        /// Why it cannot be used (gunicorn's TypeError text).
        reason: String,
    },
    /// A gunicorn setting this server refuses rather than ignore: the `ssl_context` hook, whose
    /// Python `SSLContext` the server's TLS cannot use, and every gunicorn 27 setting or hook it
    /// does not have (set to anything but gunicorn's default).
    #[error("{name} = {value} in config file: {reason}")]
    Refused {
        /// The setting's name.
        name: String,
        /// `repr()` of the value.
        value: String,
        /// Why it cannot be honoured.
        reason: &'static str,
    },
    /// A setting is bound to something that is not plain data (e.g. a function for `workers`).
    #[error("Invalid value for {name}: {value}: {reason}")]
    NotPlainData {
        /// The setting's name.
        name: String,
        /// `repr()` of the value.
        value: String,
        /// What could not be converted.
        reason: NotPlainData,
    },
}

/// Why a Python object is not plain data a setting can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPlainData {
    /// An int beyond 64 bits.
    #[error("integer out of range")]
    IntOutOfRange,
    /// A str with lone surrogates.
    #[error("string is not valid UTF-8")]
    NotUtf8,
    /// A dict key that is not a str; holds its `repr()`.
    #[error("dict key {0} is not a string")]
    DictKey(String),
    /// Anything else (a function, a module...); holds the type's name.
    #[error("unsupported type {0}")]
    Type(String),
}

/// Executes the config file `spec` (`PATH`, `file:PATH` or `python:MODULE`) and returns its
/// settings as `(name, value)` pairs in definition order. Unknown plain-data names are logged as
/// warnings (see the module documentation).
pub fn load(spec: &str) -> Result<Vec<(String, Value)>, ConfigFileError> {
    ensure_initialized()?;
    let (settings, unknown) = Python::attach(|py| load_with(py, spec))?;
    for (name, shown) in unknown {
        gunicorn_core::log_warning!(
            "Ignoring unknown setting {name} = {shown} in config file {spec} (not a setting of this server)"
        );
    }
    Ok(settings)
}

/// The settings and server hooks of a namespace that Python code built (the `gunicorn` import
/// package's `Config.set`, used by the Custom Application API), converted and checked exactly as
/// a config file's module namespace is.
pub fn from_namespace(
    namespace: &Bound<'_, PyDict>,
) -> Result<Vec<(String, Value)>, ConfigFileError> {
    let (settings, _unknown) = collect(namespace)?;
    register_hooks(namespace.py(), namespace)?;
    Ok(settings)
}

type Loaded = (Vec<(String, Value)>, Vec<(String, String)>);

fn load_with(py: Python<'_>, spec: &str) -> Result<Loaded, ConfigFileError> {
    let exception = |err: PyErr| ConfigFileError::Exception {
        location: spec.to_string(),
        traceback: format_traceback(py, &err),
    };
    add_cwd_to_sys_path(py).map_err(exception)?;
    let namespace = if let Some(module) = spec.strip_prefix("python:") {
        py.import("importlib")
            .and_then(|m| m.call_method1("import_module", (module,)))
            .and_then(|m| m.getattr("__dict__"))
            .map_err(exception)?
    } else {
        let path = spec.strip_prefix("file:").unwrap_or(spec);
        if !std::path::Path::new(path).exists() {
            return Err(ConfigFileError::NotFound(path.to_string()));
        }
        let exception = |err: PyErr| ConfigFileError::Exception {
            location: path.to_string(),
            traceback: format_traceback(py, &err),
        };
        exec_file(py, path).map_err(exception)?
    };
    let namespace = namespace
        .cast_into::<PyDict>()
        .map_err(|e| exception(e.into()))?;
    let loaded = collect(&namespace)?;
    register_hooks(py, &namespace)?;
    Ok(loaded)
}

/// The server hooks defined in the file (`def on_starting(server): ...` or
/// `post_fork = "mymodule.post_fork"`), resolved and arity-checked as gunicorn does; they
/// replace the previous set (HUP re-reads the file).
fn register_hooks(py: Python<'_>, namespace: &Bound<'_, PyDict>) -> Result<(), ConfigFileError> {
    let found: Vec<(String, Bound<'_, PyAny>)> = namespace
        .iter()
        .filter_map(|(k, v)| {
            let name = k.extract::<String>().ok()?;
            crate::server_hooks::arity_of(&name).map(|_| (name, v))
        })
        .collect();
    crate::server_hooks::register(py, found).map_err(|e| ConfigFileError::Invalid {
        name: e.name,
        value: e.value,
        reason: e.reason,
    })
}

/// gunicorn calls `chdir()` before loading the config file, which puts the working directory
/// first on `sys.path`: that is what lets `-c python:module` find `module.py` in it.
fn add_cwd_to_sys_path(py: Python<'_>) -> PyResult<()> {
    let cwd = py.import("os")?.call_method0("getcwd")?;
    let path = py.import("sys")?.getattr("path")?;
    if !path.contains(&cwd)? {
        path.call_method1("insert", (0, cwd))?;
    }
    Ok(())
}

/// Runs the file as the module `__config__` and returns its `__dict__`. A file without a `.py`
/// extension is still read as Python source, with gunicorn's warning.
fn exec_file<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
    let util = py.import("importlib.util")?;
    let is_python = matches!(
        std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str()),
        Some("py" | "pyc")
    );
    let spec = if is_python {
        util.call_method1("spec_from_file_location", (MODULE_NAME, path))?
    } else {
        gunicorn_core::log_warning!("configuration file should have a valid Python extension.");
        let loader = py
            .import("importlib.machinery")?
            .getattr("SourceFileLoader")?
            .call1((MODULE_NAME, path))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("loader", loader)?;
        util.call_method(
            "spec_from_file_location",
            (MODULE_NAME, path),
            Some(&kwargs),
        )?
    };
    let module = util.call_method1("module_from_spec", (&spec,))?;
    py.import("sys")?
        .getattr("modules")?
        .set_item(MODULE_NAME, &module)?;
    spec.getattr("loader")?
        .call_method1("exec_module", (&module,))?;
    module.getattr("__dict__")
}

/// Python's own rendering of an exception with its traceback.
fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        // Type, value and traceback passed apart: on 3.11 the PyErr holds the traceback
        // separately from the exception value.
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract::<String>()
    });
    formatted.unwrap_or_else(|_| format!("{err}\n"))
}

/// gunicorn's `ssl_context(config, default_ssl_context_factory)` hook returns a Python
/// `ssl.SSLContext`, which this server's TLS (rustls, off the GIL) cannot use: a config file
/// defining it is an error, never ignored, so its settings are never silently dropped.
fn is_ssl_context_hook(name: &str, value: &Bound<'_, PyAny>) -> bool {
    name == "ssl_context" && !value.is_none()
}

fn collect(namespace: &Bound<'_, PyDict>) -> Result<Loaded, ConfigFileError> {
    let mut settings = Vec::new();
    let mut unknown = Vec::new();
    for (key, value) in namespace.iter() {
        let Ok(name) = key.extract::<String>() else {
            continue;
        };
        if is_ssl_context_hook(&name, &value) {
            return Err(ConfigFileError::Refused {
                name,
                value: repr(&value),
                reason: "a Python SSLContext cannot be used by this server's TLS (rustls); \
                         set certfile, keyfile, ca_certs, cert_reqs, ssl_version and ciphers instead",
            });
        }
        if let Some(refused) = unsupported_gunicorn_setting(&name, &value) {
            return Err(refused);
        }
        if let Some(path) = logger_class_path(&name, &value) {
            settings.push((name, Value::Str(path)));
        } else if Config::setting(&name).is_some() {
            let converted = to_value(&value).map_err(|reason| ConfigFileError::NotPlainData {
                name: name.clone(),
                value: repr(&value),
                reason,
            })?;
            settings.push((name, converted));
        } else if gunicorn_core::gunicorn27::lookup(&name).is_none()
            && looks_like_a_setting(&name, &value)
        {
            // Not gunicorn's either (a gunicorn name that got here is set to its default and
            // changes nothing): probably a misspelt setting.
            unknown.push((name, repr(&value)));
        }
    }
    Ok((settings, unknown))
}

/// gunicorn's `logger_class` also takes the class itself (`logger_class = MyLogger`, often
/// defined in the config file): kept as its import path `module.QualName`, which the master
/// resolves (the config file's module is in `sys.modules`).
fn logger_class_path(name: &str, value: &Bound<'_, PyAny>) -> Option<String> {
    if name != "logger_class" || !value.is_instance_of::<pyo3::types::PyType>() {
        return None;
    }
    let module: String = value.getattr("__module__").ok()?.extract().ok()?;
    let qualname: String = value.getattr("__qualname__").ok()?.extract().ok()?;
    Some(format!("{module}.{qualname}"))
}

/// A gunicorn 27 setting or server hook this server does not honour (see
/// [`gunicorn_core::gunicorn27`]) bound to a value that asks for something: refused, never
/// ignored. gunicorn's default (or `None`) asks for nothing and is accepted.
fn unsupported_gunicorn_setting(name: &str, value: &Bound<'_, PyAny>) -> Option<ConfigFileError> {
    let here = gunicorn_core::gunicorn27::lookup(name)?.here;
    if here.is_supported() {
        return None;
    }
    // A function (an unsupported hook) is not plain data: it asks for something.
    if to_value(value).is_ok_and(|v| here.asks_nothing(&v)) {
        return None;
    }
    let reason = match here {
        gunicorn_core::gunicorn27::Here::NotYet { .. } => {
            "not supported by this server yet (see docs/settings.md)"
        }
        _ => "not supported by this server (see docs/settings.md)",
    };
    Some(ConfigFileError::Refused {
        name: name.to_string(),
        value: repr(value),
        reason,
    })
}

/// A lowercase public name bound to plain data: probably meant as a setting.
fn looks_like_a_setting(name: &str, value: &Bound<'_, PyAny>) -> bool {
    !name.starts_with('_')
        && name.chars().any(|c| c.is_ascii_lowercase())
        && !name.chars().any(|c| c.is_ascii_uppercase())
        && (value.is_instance_of::<PyString>()
            || value.is_instance_of::<PyInt>()
            || value.is_instance_of::<PyFloat>()
            || value.is_instance_of::<PyList>()
            || value.is_instance_of::<PyTuple>()
            || value.is_instance_of::<PyDict>())
}

fn repr(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into())
}

/// Converts plain Python data to a [`Value`]; anything else is refused with the reason.
fn to_value(obj: &Bound<'_, PyAny>) -> Result<Value, NotPlainData> {
    if obj.is_none() {
        return Ok(Value::None);
    }
    // bool before int: a Python bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(Value::Int)
            .map_err(|_| NotPlainData::IntOutOfRange);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| Value::Str(s.to_string()))
            .map_err(|_| NotPlainData::NotUtf8);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return list
            .iter()
            .map(|item| to_value(&item))
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return tuple
            .iter()
            .map(|item| to_value(&item))
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let key = k
                .extract::<String>()
                .map_err(|_| NotPlainData::DictKey(repr(&k)))?;
            items.push((key, to_value(&v)?));
        }
        return Ok(Value::Map(items));
    }
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into());
    Err(NotPlainData::Type(type_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_temp(dir: &std::path::Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gunicorn-config-file-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn converts_settings_and_skips_other_names() {
        let dir = temp_dir("convert");
        let path = write_temp(
            &dir,
            "gunicorn.conf.py",
            "import multiprocessing\n\
             workers = multiprocessing.cpu_count() * 2 + 1\n\
             bind = ['127.0.0.1:1', '[::1]:2']\n\
             preload_app = True\n\
             chdir = None\n\
             secure_scheme_headers = {'X-A': 'on'}\n\
             raw_env = ('A=1',)\n\
             def on_starting(server):\n    pass\n\
             _private = 3\n\
             WORKERS = 9\n",
        );
        let got = load(&path).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "workers",
                "bind",
                "preload_app",
                "chdir",
                "secure_scheme_headers",
                "raw_env"
            ]
        );
        assert!(matches!(got[0].1, Value::Int(n) if n >= 3));
        assert_eq!(
            got[1].1,
            Value::List(vec![
                Value::Str("127.0.0.1:1".into()),
                Value::Str("[::1]:2".into())
            ])
        );
        assert_eq!(got[2].1, Value::Bool(true));
        assert_eq!(got[3].1, Value::None);
        assert_eq!(
            got[4].1,
            Value::Map(vec![("X-A".into(), Value::Str("on".into()))])
        );
        assert_eq!(got[5].1, Value::List(vec![Value::Str("A=1".into())]));
        let file_prefixed = load(&format!("file:{path}")).unwrap();
        assert_eq!(file_prefixed.len(), got.len());
    }

    #[test]
    fn errors_are_one_clear_message() {
        let dir = temp_dir("errors");
        let raising = write_temp(&dir, "raising.py", "x = 1\nraise ValueError('boom')\n");
        let function = write_temp(&dir, "function.py", "def workers():\n    return 2\n");
        match load(&raising).unwrap_err() {
            ConfigFileError::Exception { traceback, .. } => {
                assert!(traceback.contains("ValueError: boom"), "{traceback}");
                assert!(traceback.contains("Traceback"), "{traceback}");
            }
            other => panic!("{other}"),
        }
        let err = load(&function).unwrap_err();
        assert!(
            matches!(err, ConfigFileError::NotPlainData { ref name, .. } if name == "workers"),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(": unsupported type function"),
            "{err}"
        );
        let missing = dir.join("missing.py").to_string_lossy().into_owned();
        assert_eq!(
            load(&missing).unwrap_err().to_string(),
            format!("'{missing}' doesn't exist")
        );
        let err = load("python:no_such_module_for_gunicorn_tests").unwrap_err();
        assert!(err.to_string().contains("ModuleNotFoundError"), "{err}");
    }

    #[test]
    fn unsupported_gunicorn_settings_are_refused() {
        let dir = temp_dir("unsupported");
        // The asgi worker's settings are settings here.
        let data = write_temp(&dir, "data.py", "workers = 2\nasgi_loop = 'uvloop'\n");
        assert_eq!(load(&data).unwrap().len(), 2);
        let parser = write_temp(&dir, "parser.py", "http_parser = 'python'\n");
        let err = load(&parser).unwrap_err();
        assert!(
            matches!(err, ConfigFileError::Refused { ref name, .. } if name == "http_parser"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "http_parser = 'python' in config file: not supported by this server (see docs/settings.md)"
        );
        // gunicorn's defaults ask for nothing.
        let defaults = write_temp(&dir, "defaults.py", "workers = 2\nhttp_parser = 'auto'\n");
        let got = load(&defaults).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        Python::attach(|py| {
            let ns = PyDict::new(py);
            ns.set_item("http_parser", "auto").unwrap();
            ns.set_item("worker", 4).unwrap();
            let (settings, unknown) = collect(&ns).unwrap();
            assert!(settings.is_empty());
            // Only the name that is no gunicorn setting is warned about.
            assert_eq!(unknown, [("worker".to_string(), "4".to_string())]);
        });
    }

    /// Every hook the Python worker runs is marked as a hook in gunicorn 27's table, and the
    /// other way round.
    #[test]
    fn hooks_agree_with_gunicorn27_table() {
        use gunicorn_core::gunicorn27::{Here, GUNICORN27_SETTINGS};
        for (name, _) in crate::server_hooks::HOOKS {
            let g = gunicorn_core::gunicorn27::lookup(name).expect(name);
            assert_eq!(g.here, Here::Hook, "{name}");
        }
        for g in GUNICORN27_SETTINGS.iter().filter(|g| g.here == Here::Hook) {
            assert!(
                crate::server_hooks::arity_of(g.name).is_some(),
                "{}",
                g.name
            );
        }
    }

    #[test]
    fn plain_data_names_are_flagged() {
        ensure_initialized().unwrap();
        Python::attach(|py| {
            let cases: &[(&str, &str, bool)] = &[
                ("worker", "4", true),
                ("bindd", "'x'", true),
                ("os", "__import__('os')", false),
                ("helper", "lambda: 1", false),
                ("_x", "1", false),
                ("MAX", "1", false),
                ("flag", "None", false),
            ];
            for (name, expr, want) in cases {
                let c = std::ffi::CString::new(*expr).unwrap();
                let value = py.eval(&c, None, None).unwrap();
                assert_eq!(looks_like_a_setting(name, &value), *want, "{name} = {expr}");
            }
        });
    }
}
