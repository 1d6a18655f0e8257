//! End-to-end tests of the access log (issue 7): the default format on stdout for every worker
//! class, a custom format with header/environ atoms in a file, nothing when unset, USR1
//! reopening after the file was moved away, and a bad format refused at startup.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::{eventually, python_has, skip, Gunicorn, TempDir};

const LOG_TIMEOUT: Duration = Duration::from_secs(10);

const APP: &str = r#"
def app(environ, start_response):
    if environ['PATH_INFO'] == '/boom':
        raise RuntimeError('boom')
    body = b'hello'
    start_response('201 Created', [
        ('Content-Type', 'text/plain'),
        ('X-Trace', 'tr-1'),
        ('Content-Length', str(len(body))),
    ])
    return [body]
"#;

const REQUEST: &[u8] = b"GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\
Referer: http://ref/\r\nUser-Agent: agent \"q\"\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\
X-Req: r-1\r\n\r\n";

fn app_dir() -> TempDir {
    let dir = TempDir::new("access");
    dir.write("logapp.py", APP);
    dir
}

#[test]
fn default_format_on_stdout_for_every_worker_class() {
    let mut classes = vec![vec!["-k", "sync"], vec!["-k", "gthread", "--threads", "2"]];
    for greenlet in ["gevent", "eventlet"] {
        if python_has(greenlet) {
            classes.push(vec!["-k", greenlet]);
        } else {
            skip(&format!(
                "{greenlet} is not installed: -k {greenlet} not covered"
            ));
        }
    }
    for class in classes {
        let dir = app_dir();
        let server = Gunicorn::new()
            .cwd(dir.path())
            .args(["--access-logfile", "-", "logapp:app"])
            .args(&class)
            .bind_free_port()
            .spawn();
        server.wait_booted(1);
        let r = server.send(REQUEST);
        assert_eq!(r.status, 201, "{class:?}");
        let lines = server
            .wait_for("\"GET /a%20b?x=1 HTTP/1.1\"", 1, LOG_TIMEOUT)
            .unwrap_or_else(|| panic!("{class:?}: no access line:\n{}", server.output()));
        let line = &lines[0];
        // 127.0.0.1 - user [22/Nov/2026:05:10:06 +0000] "GET ..." 201 5 "ref" "ua"
        assert!(line.starts_with("127.0.0.1 - user ["), "{class:?}: {line}");
        assert!(
            line.ends_with(
                "] \"GET /a%20b?x=1 HTTP/1.1\" 201 5 \"http://ref/\" \"agent \\\"q\\\"\""
            ),
            "{class:?}: {line}"
        );
        assert!(
            server.stdout_text().contains(line.as_str()),
            "{class:?}: the access log goes to stdout"
        );
        // An app error is logged with its 500.
        let r = server.get("/boom");
        assert_eq!(r.status, 500);
        assert!(
            server
                .wait_for("\"GET /boom HTTP/1.1\" 500 ", 1, LOG_TIMEOUT)
                .is_some(),
            "{class:?}: {}",
            server.output()
        );
        // Exactly one line per request.
        assert_eq!(
            server.stdout_text().matches("HTTP/1.1\" ").count(),
            2,
            "{class:?}: {}",
            server.stdout_text()
        );
    }
}

#[test]
fn custom_format_in_a_file_and_usr1_reopens_it() {
    let dir = app_dir();
    let log = dir.path().join("access.log");
    let format = "%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%({x-req}i)s|%({X-TRACE}o)s|%({path_info}e)s|%({missing}i)s|%(p)s|%(nope)s";
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--access-logfile", log.to_str().unwrap()])
        .args(["--access-logformat", format, "logapp:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    let pid = server.worker_pids()[0];
    assert_eq!(server.send(REQUEST).status, 201);
    let want = format!("GET|/a b|x=1|HTTP/1.1|201|5|r-1|tr-1|/a b|-|<{pid}>|-\n");
    assert!(
        eventually(LOG_TIMEOUT, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            == want),
        "{:?}",
        std::fs::read_to_string(&log)
    );
    assert!(!server.stdout_text().contains("GET|"), "nothing on stdout");
    // logrotate: move the file away, USR1, and the next lines land in a new file.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(Signal::SIGUSR1);
    assert!(server
        .wait_for("Handling signal: usr1", 1, LOG_TIMEOUT)
        .is_some());
    // The worker reopens from its own helper thread; retry until a line lands in the new file.
    let mut sent = 0;
    let reopened = eventually(LOG_TIMEOUT, || {
        if sent < 50 {
            sent += 1;
            server.send(REQUEST);
        }
        log.exists() && !std::fs::read_to_string(&log).unwrap_or_default().is_empty()
    });
    assert!(
        reopened,
        "no new access.log after USR1:\n{}",
        server.output()
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .starts_with("GET|/a b|"));
    assert!(std::fs::read_to_string(&rotated)
        .unwrap()
        .starts_with(&want));
}

#[test]
fn nothing_is_logged_without_an_access_log() {
    let dir = app_dir();
    let server = Gunicorn::new()
        .cwd(dir.path())
        .arg("logapp:app")
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.send(REQUEST).status, 201);
    server.signal(Signal::SIGTERM);
    server.wait_exit(Duration::from_secs(40));
    let out = server.output();
    assert!(!out.contains("HTTP/1.1\" 201"), "{out}");
}

#[test]
fn a_bad_format_is_refused_at_startup() {
    let out = Gunicorn::new()
        .args(["--access-logformat", "%s %(h)s", "hello:app"])
        .bind_free_port()
        .run();
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("access_log_format"), "{out:?}");
}
