//! End-to-end tests of Python logging in the workers (issue 7 part 3): the `gunicorn.error` and
//! `gunicorn.access` loggers and the handler-reuse recipe, Flask's variant of it, and
//! `logconfig_dict`, `--log-config-json` and `--log-config` (ini) applied as gunicorn does.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{eventually, python_has, skip, Gunicorn, TempDir};

const LOG_TIMEOUT: Duration = Duration::from_secs(10);

const APP: &str = r#"
import logging
gunicorn_error = logging.getLogger("gunicorn.error")
applog = logging.getLogger("myapp")
# The common recipe: reuse gunicorn's handlers and level.
applog.handlers = gunicorn_error.handlers
applog.setLevel(gunicorn_error.level)
applog.propagate = False
applog.info("imported with level %s", logging.getLevelName(gunicorn_error.level))

def app(environ, start_response):
    applog.warning("from app %s", environ["PATH_INFO"])
    applog.debug("debug from app")
    logging.getLogger("gunicorn.access").info("manual access line")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"#;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn gunicorn_loggers_share_the_destinations_and_format() {
    let dir = TempDir::new("pylog");
    dir.write("pyapp.py", APP);
    let error_log = dir.path().join("error.log");
    let access_log = dir.path().join("access.log");
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--error-logfile", error_log.to_str().unwrap()])
        .args(["--access-logfile", access_log.to_str().unwrap()])
        .args(["--log-level", "info", "pyapp:app"])
        .bind_free_port()
        .spawn();
    assert!(eventually(LOG_TIMEOUT, || read(&error_log).contains("Booting worker")));
    let addr = support::listening_addr_in(&read(&error_log));
    let r = support::send_to(addr, support::get_request("/x").as_bytes());
    assert_eq!(r.status, 200);
    assert!(
        eventually(LOG_TIMEOUT, || read(&error_log).contains("from app /x")),
        "{}",
        read(&error_log)
    );
    let text = read(&error_log);
    let warn = text.lines().find(|l| l.contains("from app /x")).unwrap();
    // [2026-11-22 05:10:06 +0000] [123] [WARNING] from app /x
    assert!(warn.starts_with('['), "{warn}");
    assert!(warn.contains("] [WARNING] from app /x"), "{warn}");
    assert!(text.contains("[INFO] imported with level INFO"), "{text}");
    assert!(!text.contains("debug from app"), "{text}");
    assert!(
        eventually(LOG_TIMEOUT, || read(&access_log)
            .contains("\"GET /x HTTP/1.1\" 200")),
        "{}",
        read(&access_log)
    );
    let access = read(&access_log);
    assert!(
        access.lines().any(|l| l == "manual access line"),
        "{access}"
    );
    drop(server);
}

#[test]
fn flask_app_logger_reuses_gunicorn_handlers() {
    if !python_has("flask") {
        skip("flask is not installed");
        return;
    }
    let dir = TempDir::new("pyflask");
    dir.write(
        "flaskapp.py",
        r#"
import logging
from flask import Flask
app = Flask(__name__)
gunicorn_logger = logging.getLogger("gunicorn.error")
app.logger.handlers = gunicorn_logger.handlers
app.logger.setLevel(gunicorn_logger.level)

@app.route("/")
def index():
    app.logger.error("flask says hi")
    return "ok"
"#,
    );
    let server = Gunicorn::new()
        .cwd(dir.path())
        .arg("flaskapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/").status, 200);
    let lines = server
        .wait_for("flask says hi", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    assert!(lines[0].contains("] [ERROR] flask says hi"), "{}", lines[0]);
    assert!(server.stderr_text().contains("flask says hi"));
}

#[test]
fn logconfig_dict_routes_gunicorn_lines() {
    let dir = TempDir::new("pydict");
    dir.write("pyapp.py", APP);
    let out = dir.path().join("dict.log");
    dir.write(
        "gunicorn.conf.py",
        &format!(
            r#"
# The merge over gunicorn's defaults is shallow (as gunicorn's dict.update): replacing
# "handlers" means "root" must not name the default console handler.
logconfig_dict = {{
    "root": {{"level": "WARNING", "handlers": []}},
    "formatters": {{"custom": {{"format": "CUSTOM %(name)s %(levelname)s %(message)s"}}}},
    "handlers": {{"file": {{"class": "logging.FileHandler", "filename": {out:?}, "formatter": "custom"}}}},
    "loggers": {{
        "gunicorn.error": {{"level": "INFO", "handlers": ["file"], "propagate": False}},
        "gunicorn.access": {{"level": "INFO", "handlers": ["file"], "propagate": False}},
    }},
}}
"#
        ),
    );
    let server = Gunicorn::new()
        .cwd(dir.path())
        .arg("pyapp:app")
        .bind_free_port()
        .spawn();
    // The master's lines go through the configuration too.
    assert!(
        eventually(LOG_TIMEOUT, || read(&out)
            .contains("CUSTOM gunicorn.error INFO Booting worker")),
        "{}\n{}",
        read(&out),
        server.output()
    );
    assert!(read(&out).contains("CUSTOM gunicorn.error INFO Listening at: "));
    let addr = support::listening_addr_in(&read(&out));
    assert_eq!(
        support::send_to(addr, support::get_request("/d").as_bytes()).status,
        200
    );
    // Access lines are logged whenever a logconfig is set, through gunicorn.access.
    assert!(
        eventually(LOG_TIMEOUT, || read(&out)
            .contains("CUSTOM gunicorn.access INFO 127.0.0.1 - - [")),
        "{}",
        read(&out)
    );
    assert!(read(&out).contains("\"GET /d HTTP/1.1\" 200 2"));
    assert!(
        !server.output().contains("Booting worker"),
        "{}",
        server.output()
    );
    // USR1 reopens the configuration's FileHandlers in the master and the workers.
    let rotated = dir.path().join("dict.log.1");
    std::fs::rename(&out, &rotated).unwrap();
    server.signal(nix::sys::signal::Signal::SIGUSR1);
    assert!(eventually(LOG_TIMEOUT, || read(&rotated)
        .contains("Handling signal: usr1")));
    let mut sent = 0;
    let reopened = eventually(LOG_TIMEOUT, || {
        if sent < 50 {
            sent += 1;
            support::send_to(addr, support::get_request("/after").as_bytes());
        }
        read(&out).contains("\"GET /after HTTP/1.1\" 200")
    });
    assert!(reopened, "{}\n{}", read(&out), server.output());
}

#[test]
fn log_config_json_and_ini() {
    let dir = TempDir::new("pyjson");
    dir.write("pyapp.py", APP);
    let json_out = dir.path().join("json.log");
    let json = dir.write(
        "log.json",
        &format!(
            r#"{{"root": {{"level": "WARNING", "handlers": []}},
 "formatters": {{"j": {{"format": "JSON %(levelname)s %(message)s"}}}},
 "handlers": {{"f": {{"class": "logging.FileHandler", "filename": {json_out:?}, "formatter": "j"}}}},
 "loggers": {{"gunicorn.error": {{"level": "INFO", "handlers": ["f"], "propagate": false}}}}}}"#
        ),
    );
    let ini_out = dir.path().join("ini.log");
    let ini = dir.write(
        "log.ini",
        &format!(
            "[loggers]\nkeys=root,error\n\n[handlers]\nkeys=f\n\n[formatters]\nkeys=i\n\n\
[logger_root]\nlevel=WARNING\nhandlers=\n\n\
[logger_error]\nlevel=INFO\nhandlers=f\npropagate=0\nqualname=gunicorn.error\n\n\
[handler_f]\nclass=FileHandler\nformatter=i\nargs=({:?},)\n\n\
[formatter_i]\nformat=INI %(levelname)s %(message)s\n",
            ini_out.to_str().unwrap()
        ),
    );
    let cases = [
        (
            "--log-config-json",
            json,
            json_out,
            "JSON INFO Booting worker",
        ),
        ("--log-config", ini, ini_out, "INI INFO Booting worker"),
    ];
    for (flag, file, out, want) in cases {
        let server = Gunicorn::new()
            .cwd(dir.path())
            .args([flag, file.to_str().unwrap(), "pyapp:app"])
            .bind_free_port()
            .spawn();
        assert!(
            eventually(LOG_TIMEOUT, || read(&out).contains(want)),
            "{flag}: {}\n{}",
            read(&out),
            server.output()
        );
        drop(server);
    }
    let out = Gunicorn::new()
        .cwd(dir.path())
        .args(["--log-config", "missing.ini", "pyapp:app"])
        .bind_free_port()
        .run();
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("missing.ini"), "{out:?}");
}
