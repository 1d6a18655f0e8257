//! Server hooks from the config file: each hook runs at its point with the objects gunicorn
//! passes (server, worker, req, environ, resp), in gunicorn's order; a raising hook is logged
//! (or fatal where gunicorn makes it fatal); a wrong arity is one clear error line, exit 1.

mod support;

use std::path::Path;

use nix::sys::signal::Signal;
use support::{eventually, Gunicorn, TempDir, BOOT_TIMEOUT, EXIT_TIMEOUT};

const APP: &str = "def app(environ, start_response):\n    \
    body = b'hooked\\n'\n    \
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    \
    return [body]\n";

/// The same application for `-k asgi`, next to it in the same module.
const ASGI_APP: &str = "\n\nasync def asgi(scope, receive, send):\n    \
    if scope['type'] != 'http':\n        return\n    \
    body = b'hooked\\n'\n    \
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain'), (b'content-length', str(len(body)).encode())]})\n    \
    await send({'type': 'http.response.body', 'body': body})\n";

/// A config file whose every hook appends one line to `record`.
fn recording_config(record: &Path) -> String {
    format!(
        r#"import os
RECORD = {record:?}

def _w(line):
    with open(RECORD, "a") as f:
        f.write(line + "\n")

def on_starting(server):
    server.log.info("hook on_starting says %s", "hi")
    _w("on_starting pid_ok=%s" % (server.pid == os.getpid()))

def nworkers_changed(server, new, old):
    _w("nworkers_changed %s %s" % (new, old))

def when_ready(server):
    _w("when_ready workers=%s timeout=%s bind=%s" % (server.cfg.workers, server.cfg.timeout, type(server.cfg.bind).__name__))

def pre_fork(server, worker):
    _w("pre_fork age=%s" % worker.age)

def post_fork(server, worker):
    _w("post_fork age=%s pid_ok=%s ppid_ok=%s" % (worker.age, worker.pid == os.getpid(), worker.ppid == os.getppid() == server.pid))

def post_worker_init(worker):
    _w("post_worker_init pid_ok=%s alive=%s" % (worker.pid == os.getpid(), worker.alive))

def pre_request(worker, req):
    worker.log.debug("pre_request %s", req.path)
    _w("pre_request %s %s %s %s %s %s" % (req.method, req.path, req.query, req.uri, req.version, dict(req.headers).get("X-TEST")))

def post_request(worker, req, environ, resp):
    _w("post_request %s %s %s %s %s %s" % (req.path, environ["PATH_INFO"], resp.status, resp.status_code, resp.sent, dict(resp.headers).get("Content-Type")))

def worker_int(worker):
    _w("worker_int age=%s" % worker.age)

def worker_exit(server, worker):
    _w("worker_exit age=%s pid_ok=%s" % (worker.age, worker.pid == os.getpid()))

def child_exit(server, worker):
    _w("child_exit age=%s pid=%s" % (worker.age, worker.pid))

def on_reload(server):
    _w("on_reload")

def on_exit(server):
    _w("on_exit")
"#
    )
}

/// A scratch directory holding the `hookapp` application.
fn hookapp_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("hookapp.py", &format!("{APP}{ASGI_APP}"));
    dir
}

/// gunicorn serving `hookapp:app` from `dir` with the config file `conf`, on a free port.
fn hookapp_server(dir: &TempDir, conf: &Path) -> Gunicorn {
    Gunicorn::new()
        .cwd(dir.path())
        .args(["-c", conf.to_str().unwrap()])
        .bind_free_port()
        .arg("hookapp:app")
}

fn read_record(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_record(record: &Path, prefix: &str) -> bool {
    eventually(BOOT_TIMEOUT, || {
        read_record(record).iter().any(|l| l.starts_with(prefix))
    })
}

fn position(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:#?}"))
}

fn every_hook_in_order(worker_class: &str) {
    let app = if worker_class == "asgi" {
        "hookapp:asgi"
    } else {
        "hookapp:app"
    };
    let dir = hookapp_dir("hooks-all");
    let record = dir.path().join("record.txt");
    let conf = dir.write("conf.py", &recording_config(&record));
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-c", conf.to_str().unwrap(), "-k", worker_class])
        .args(["--timeout", "30", "--graceful-timeout", "5"])
        .bind_free_port()
        .arg(app)
        .spawn();
    server.wait_booted(1);
    assert!(
        wait_record(&record, "post_worker_init"),
        "{:?}",
        read_record(&record)
    );
    let resp = server
        .send(b"GET /x%20y?a=1 HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert!(
        wait_record(&record, "post_request"),
        "{:?}",
        read_record(&record)
    );

    // HUP: on_reload, a new worker (age 2), the old one stopped and reaped.
    server.signal(Signal::SIGHUP);
    assert!(
        wait_record(&record, "child_exit age=1"),
        "{:?}\n{}",
        read_record(&record),
        server.output()
    );
    // INT: quick stop of the worker (worker_int, worker_exit), then on_exit.
    server.signal(Signal::SIGINT);
    let status = server.wait_exit(EXIT_TIMEOUT).expect("master exits");
    assert_eq!(status.code(), Some(0), "{}", server.output());

    let lines = read_record(&record);
    let expected_order = [
        "on_starting pid_ok=True",
        "when_ready workers=1 timeout=30 bind=list",
        "nworkers_changed 1 None",
        "pre_fork age=1",
        "post_fork age=1 pid_ok=True ppid_ok=True",
        "post_worker_init pid_ok=True alive=True",
        "pre_request GET /x%20y a=1 /x%20y?a=1 (1, 1) yes",
        // resp.headers are the app's: an ASGI app's names are lower-case, so the recording
        // hook's dict lookup of "Content-Type" finds none there.
        if worker_class == "asgi" {
            "post_request /x%20y /x y 200 OK 200 7 None"
        } else {
            "post_request /x%20y /x y 200 OK 200 7 text/plain"
        },
        "on_reload",
        "pre_fork age=2",
        "worker_exit age=1 pid_ok=True",
        "child_exit age=1",
        "worker_int age=2",
        "worker_exit age=2 pid_ok=True",
        "child_exit age=2",
        "on_exit",
    ];
    let mut last = 0;
    for want in expected_order {
        let at = position(&lines[last..], want) + last;
        last = at;
    }
    // post_fork of the new generation ran in its worker.
    position(&lines, "post_fork age=2 pid_ok=True ppid_ok=True");
    let out = server.output();
    assert!(out.contains("[INFO] hook on_starting says hi"), "{out}");
}

#[test]
fn every_hook_runs_in_order_sync() {
    every_hook_in_order("sync");
}

#[test]
fn every_hook_runs_in_order_gthread() {
    every_hook_in_order("gthread");
}

#[test]
fn wrong_arity_is_one_line_and_exit_1() {
    let dir = hookapp_dir("hooks-arity");
    let cases = [
        (
            "def post_fork(server):\n    pass\n",
            "post_fork",
            "arity of: 2",
        ),
        (
            "def post_request(a, b, c, d, e):\n    pass\n",
            "post_request",
            "arity of: 4",
        ),
        (
            "on_starting = 'nosuchmodule_x.func'\n",
            "on_starting",
            "No module named",
        ),
        ("when_ready = 3\n", "when_ready", "not callable"),
    ];
    for (text, name, reason) in cases {
        let conf = dir.write("bad.py", text);
        let done = hookapp_server(&dir, &conf).run();
        assert_eq!(done.code(), Some(1), "{text}: {}", done.stderr);
        let line = done
            .stderr
            .lines()
            .find(|l| l.contains("Invalid value for"))
            .unwrap_or_else(|| panic!("{text}: {}", done.stderr));
        assert!(
            line.starts_with(&format!("Error: Invalid value for {name}: ")),
            "{line}"
        );
        assert!(line.contains(reason), "{line}");
    }
}

#[test]
fn string_hooks_and_short_post_request() {
    let dir = hookapp_dir("hooks-string");
    let record = dir.path().join("record.txt");
    dir.write(
        "myhooks.py",
        &format!(
            "def when_ready(server):\n    open({record:?}, 'a').write('when_ready from module\\n')\n"
        ),
    );
    let conf = dir.write(
        "conf.py",
        &format!(
            "when_ready = 'myhooks.when_ready'\n\
             def post_request(worker, req):\n    open({record:?}, 'a').write('post_request2 %s\\n' % req.method)\n"
        ),
    );
    let server = hookapp_server(&dir, &conf).spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/").status, 200);
    assert!(
        wait_record(&record, "post_request2 GET"),
        "{:?}",
        read_record(&record)
    );
    assert!(read_record(&record)
        .iter()
        .any(|l| l == "when_ready from module"));
}

#[test]
fn raising_hooks_are_logged_not_fatal() {
    let dir = hookapp_dir("hooks-raise");
    let conf = dir.write(
        "conf.py",
        "def pre_request(worker, req):\n    if req.path == '/boom':\n        raise RuntimeError('pre boom')\n\
         def post_request(worker, req, environ, resp):\n    raise ValueError('post boom')\n\
         def worker_exit(server, worker):\n    raise KeyError('exit boom')\n",
    );
    let server = hookapp_server(&dir, &conf).spawn();
    server.wait_booted(1);
    // post_request raising does not change the response, only logs.
    let ok = server.get("/");
    assert_eq!(ok.status, 200);
    assert!(
        server
            .wait_for("ValueError: post boom", 1, BOOT_TIMEOUT)
            .is_some(),
        "{}",
        server.output()
    );
    assert!(server.output().contains("Exception in post_request hook"));
    // pre_request raising is an application error: a 500.
    let boom = server.get("/boom");
    assert_eq!(boom.status, 500);
    assert!(
        server
            .wait_for("RuntimeError: pre boom", 1, BOOT_TIMEOUT)
            .is_some(),
        "{}",
        server.output()
    );
    // worker_exit raising (the old generation after a HUP) is logged; the server goes on.
    server.signal(Signal::SIGHUP);
    assert!(server
        .wait_booted(2)
        .wait_for("KeyError: 'exit boom'", 1, BOOT_TIMEOUT)
        .is_some());
    assert!(server.output().contains("Exception in worker_exit hook"));
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn raising_on_starting_or_post_fork_is_fatal() {
    let dir = hookapp_dir("hooks-fatal");
    let cases = [
        (
            "def on_starting(server):\n    raise RuntimeError('no start')\n",
            1,
            "RuntimeError: no start",
        ),
        (
            "def when_ready(server):\n    raise RuntimeError('not ready')\n",
            1,
            "RuntimeError: not ready",
        ),
        (
            "def post_fork(server, worker):\n    raise RuntimeError('no fork')\n",
            3,
            "RuntimeError: no fork",
        ),
        (
            "def post_worker_init(worker):\n    raise RuntimeError('no init')\n",
            3,
            "RuntimeError: no init",
        ),
    ];
    for (text, code, needle) in cases {
        let conf = dir.write("conf.py", text);
        let done = hookapp_server(&dir, &conf).run();
        assert_eq!(done.code(), Some(code), "{text}: {}", done.stderr);
        assert!(done.stderr.contains(needle), "{text}: {}", done.stderr);
    }
}

#[test]
fn worker_abort_runs_on_timeout() {
    let dir = TempDir::new("hooks-abort");
    let record = dir.path().join("record.txt");
    let conf = dir.write(
        "conf.py",
        &format!(
            "def worker_abort(worker):\n    open({record:?}, 'a').write('worker_abort %s\\n' % worker.age)\n\
             def worker_exit(server, worker):\n    open({record:?}, 'a').write('worker_exit %s\\n' % worker.age)\n"
        ),
    );
    let server = Gunicorn::new()
        .args(["-c", conf.to_str().unwrap(), "--timeout", "1"])
        .bind_free_port()
        .arg("slow:app")
        .spawn();
    server.wait_booted(1);
    let port = server.port();
    let client = std::thread::spawn(move || {
        support::send_to(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            b"GET /?s=20 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .status
    });
    assert!(
        wait_record(&record, "worker_abort 1"),
        "{}",
        server.output()
    );
    assert!(wait_record(&record, "worker_exit 1"), "{}", server.output());
    assert_eq!(client.join().unwrap(), 500);
    let lines = read_record(&record);
    assert!(position(&lines, "worker_abort 1") < position(&lines, "worker_exit 1"));
}

#[test]
fn every_hook_runs_in_order_asgi() {
    every_hook_in_order("asgi");
}

#[test]
fn every_hook_runs_in_order_gevent() {
    if !support::python_has("gevent") {
        support::skip("gevent is not installed");
        return;
    }
    every_hook_in_order("gevent");
}

/// HUP executes the config file again: its hooks replace the old ones; a file whose hook has a
/// wrong arity is refused as a whole and the running hooks stay.
#[test]
fn hup_replaces_hooks_and_refuses_bad_ones() {
    let dir = hookapp_dir("hooks-hup");
    let record = dir.path().join("record.txt");
    let hook = |tag: &str| {
        format!(
            "def post_request(worker, req, environ, resp):\n    open({record:?}, 'a').write('{tag} %s\\n' % req.path)\n"
        )
    };
    let conf = dir.write("conf.py", &hook("first"));
    let server = hookapp_server(&dir, &conf).spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/a").status, 200);
    assert!(wait_record(&record, "first /a"));

    dir.write("conf.py", &hook("second"));
    server.signal(Signal::SIGHUP);
    server.wait_booted(2);
    assert!(eventually(BOOT_TIMEOUT, || {
        let _ = server.get("/b");
        read_record(&record).iter().any(|l| l == "second /b")
    }));

    dir.write("conf.py", "def post_request(worker):\n    pass\n");
    server.signal(Signal::SIGHUP);
    assert!(
        server
            .wait_for("Value must have an arity of: 4", 1, BOOT_TIMEOUT)
            .is_some(),
        "{}",
        server.output()
    );
    assert_eq!(server.get("/c").status, 200);
    assert!(
        wait_record(&record, "second /c"),
        "{:?}",
        read_record(&record)
    );
}

/// `pre_fork`, `on_reload`, `child_exit` and a later `nworkers_changed` run in gunicorn's main
/// loop: an exception there ends the master with 255 ("Unhandled exception in main loop"),
/// without `on_exit`, after stopping the workers.
#[test]
fn raising_in_the_master_loop_ends_the_master_with_255() {
    let dir = hookapp_dir("hooks-crash");
    let record = dir.path().join("record.txt");
    let on_exit = format!("def on_exit(server):\n    open({record:?}, 'a').write('on_exit\\n')\n");
    // (hook source, signal sent after boot, traceback text)
    let cases: &[(&str, Option<Signal>, &str)] = &[
        ("def pre_fork(server, worker):\n    raise RuntimeError('pre_fork boom')\n", None, "RuntimeError: pre_fork boom"),
        ("def on_reload(server):\n    raise RuntimeError('reload boom')\n", Some(Signal::SIGHUP), "RuntimeError: reload boom"),
        ("def child_exit(server, worker):\n    raise RuntimeError('child boom')\n", Some(Signal::SIGTTOU), "RuntimeError: child boom"),
        ("def nworkers_changed(server, new, old):\n    if old is not None:\n        raise RuntimeError('ttin boom')\n", Some(Signal::SIGTTIN), "RuntimeError: ttin boom"),
    ];
    for (text, signal, needle) in cases {
        let _ = std::fs::remove_file(&record);
        let conf = dir.write("conf.py", &format!("{text}{on_exit}"));
        let server = Gunicorn::new()
            .cwd(dir.path())
            .args(["-c", conf.to_str().unwrap(), "-w", "2"])
            .bind_free_port()
            .arg("hookapp:app")
            .spawn();
        if let Some(sig) = signal {
            server.wait_booted(2);
            server.signal(*sig);
        }
        let status = server.wait_exit(EXIT_TIMEOUT).expect("master exits");
        let out = server.output();
        assert_eq!(status.code(), Some(255), "{text}: {out}");
        assert!(
            out.contains("Unhandled exception in main loop"),
            "{text}: {out}"
        );
        assert!(out.contains(needle), "{text}: {out}");
        assert!(
            !read_record(&record).iter().any(|l| l == "on_exit"),
            "{text}"
        );
    }
}

/// `server.num_workers` follows TTIN even without a `nworkers_changed` hook.
#[test]
fn server_num_workers_follows_ttin() {
    let dir = hookapp_dir("hooks-num");
    let record = dir.path().join("record.txt");
    let conf = dir.write(
        "conf.py",
        &format!(
            "def pre_fork(server, worker):\n    open({record:?}, 'a').write('pre_fork %s %s\\n' % (worker.age, server.num_workers))\n"
        ),
    );
    let server = hookapp_server(&dir, &conf).spawn();
    server.wait_booted(1);
    server.signal(Signal::SIGTTIN);
    assert!(
        wait_record(&record, "pre_fork 2 2"),
        "{:?}",
        read_record(&record)
    );
    assert_eq!(read_record(&record)[0], "pre_fork 1 1");
}
