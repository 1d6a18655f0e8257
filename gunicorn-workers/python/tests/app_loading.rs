//! App loading against the fixture apps in tests/apps: every spelling gunicorn accepts and its
//! one-line errors.

use gunicorn_core::Config;
use gunicorn_python::app::{self, AppLoadError};
use pyo3::prelude::*;

fn apps_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/apps").to_string()
}

fn cfg(uri: &str) -> Config {
    Config {
        wsgi_app: Some(uri.to_string()),
        chdir: Some(apps_dir()),
        ..Config::default()
    }
}

/// Calls the loaded app with a minimal environ and returns its joined body.
fn call(uri: &str) -> String {
    let app = app::load(&cfg(uri)).unwrap_or_else(|e| panic!("{uri}: {e}"));
    Python::attach(|py| {
        let code = c"
def run(app):
    import io
    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'wsgi.input': io.BytesIO(b''),
           'SERVER_NAME': 'x', 'SERVER_PORT': '80', 'wsgi.url_scheme': 'http'}
    out = []
    res = app(env, lambda s, h, e=None: out.append)
    return b''.join(list(res)).decode()
";
        let m = PyModule::from_code(py, code, c"runner.py", c"runner").unwrap();
        m.getattr("run")
            .unwrap()
            .call1((app.callable(),))
            .unwrap()
            .extract()
            .unwrap()
    })
}

fn error(uri: &str) -> AppLoadError {
    match app::load(&cfg(uri)) {
        Ok(_) => panic!("{uri} loaded"),
        Err(e) => e,
    }
}

#[test]
fn accepted_spellings() {
    let cases = [
        ("hello:app", "Hello, World!\n"),
        ("hello", "Hello, World!\n"),
        ("pkg.sub.wsgi", "pkg.sub.wsgi\n"),
        ("pkg.sub.wsgi:application", "pkg.sub.wsgi\n"),
        ("factory:create_app()", "default debug=False\n"),
        ("factory:create_app('x', debug=True)", "x debug=True\n"),
        ("factory:create_app(name=\"y\")", "y debug=False\n"),
    ];
    for (uri, want) in cases {
        assert_eq!(call(uri), want, "{uri}");
    }
}

#[test]
fn one_line_errors() {
    let cases = [
        ("hello:nope", "Failed to find attribute 'nope' in 'hello'."),
        ("factory:not_callable", "Application object must be callable."),
        ("factory:returns_none()", "Failed to find application object: 'returns_none()'"),
        ("factory:create_app(1, 2, 3)", "The factory 'create_app' in module 'factory' could not be called with the specified arguments"),
        ("factory:create_app(x)", "Failed to parse arguments as literal values: 'create_app(x)'"),
        ("factory:create_app(**{})", "Failed to parse arguments as literal values: 'create_app(**{})'"),
        ("factory:a.b()", "Function reference must be a simple name: 'a.b()'"),
        ("factory:1 +", "Failed to parse '1 +' as an attribute name or function call."),
        ("factory:a.b", "Failed to parse 'a.b' as an attribute name or function call."),
        ("hello.py", "Failed to find application, did you mean 'hello:application'?"),
        ("hello.py:app", "Failed to find application, did you mean 'hello:app'?"),
    ];
    for (uri, want) in cases {
        let e = error(uri);
        assert!(matches!(e, AppLoadError::Invalid(_)), "{uri}: {e:?}");
        assert_eq!(e.to_string(), want, "{uri}");
    }
}

#[test]
fn python_exceptions_keep_their_traceback() {
    let cases = [
        (
            "no_such_module_here:app",
            "ModuleNotFoundError: No module named 'no_such_module_here'",
        ),
        (
            "broken_import:app",
            "ModuleNotFoundError: No module named 'module_that_does_not_exist_anywhere'",
        ),
        (
            "factory:type_error_inside()",
            "TypeError: object of type 'int' has no len()",
        ),
    ];
    for (uri, want) in cases {
        match error(uri) {
            AppLoadError::Exception { message, traceback } => {
                assert_eq!(message, want, "{uri}");
                // An ImportError's traceback is followed by one line naming the interpreter
                // and the sys.path the import was tried with.
                let mut lines = traceback.trim_end().lines().rev();
                let mut last = lines.next().unwrap_or_default();
                if want.contains("ModuleNotFoundError") {
                    assert!(
                        last.starts_with("Python ") && last.contains("sys.path = ["),
                        "{uri}: {traceback}"
                    );
                    last = lines.next().unwrap_or_default();
                }
                assert_eq!(last, want, "{uri}: {traceback}");
            }
            e => panic!("{uri}: {e:?}"),
        }
    }
}

#[test]
fn no_app_and_bad_chdir() {
    let c = Config {
        wsgi_app: None,
        ..Config::default()
    };
    assert!(matches!(app::load(&c), Err(AppLoadError::NoApp)));
    let mut c = cfg("hello:app");
    c.chdir = Some("/nonexistent/dir".into());
    assert_eq!(
        app::load(&c).unwrap_err().to_string(),
        "can't chdir to \"/nonexistent/dir\""
    );
}

#[test]
fn pythonpath_entries_are_prepended() {
    let mut c = cfg("wsgi:application");
    c.pythonpath = Some("pkg/sub, pkg".into());
    // `wsgi` is importable only through --pythonpath pkg/sub.
    let app = app::load(&c).unwrap();
    Python::attach(|py| {
        let path: Vec<String> = py
            .import("sys")
            .unwrap()
            .getattr("path")
            .unwrap()
            .extract()
            .unwrap();
        let apps = std::path::Path::new(&apps_dir()).to_path_buf();
        assert_eq!(std::path::Path::new(&path[0]), apps.join("pkg"));
        assert_eq!(std::path::Path::new(&path[1]), apps.join("pkg/sub"));
        assert!(app.callable().bind(py).is_callable());
    });
}
