//! Dirty arbiters (gunicorn 25+, docs/dirty.md), end to end: a WSGI app (`tests/apps/dirty_web.py`)
//! calls the dirty apps of `tests/apps/dirty_tasks.py` through `gunicorn.dirty.get_dirty_client()`.
//! Covered: result and state across calls, errors, streaming, a task past `dirty_timeout`, a
//! dirty worker or the dirty arbiter killed with SIGKILL and replaced, TTIN/TTOU, `module:Class:N`
//! and the `workers` class attribute, the four hooks, the graceful stop, and the same requests
//! answered by gunicorn 27 (`target/package/venvs/gunicorn27`, skipped when absent).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::reference::gunicorn27;
use support::{alive, eventually, free_port, send_to, Gunicorn, Server, TempDir};

const WAIT: Duration = Duration::from_secs(30);

/// The pid in the first line containing `prefix` followed by a number.
fn pid_after(server: &Server, prefix: &str) -> i32 {
    let lines = server
        .wait_for(prefix, 1, WAIT)
        .unwrap_or_else(|| panic!("no {prefix:?} line; output:\n{}", server.output()));
    let rest = lines[0].split(prefix).nth(1).unwrap_or_default();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {:?}", lines[0]))
}

/// The body of `GET path` as JSON.
fn call(server: &Server, path: &str) -> serde_like::Json {
    let resp = server.get(path);
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    serde_like::parse(&resp.text())
}

/// Polls `path` until its answer has a `result` (the dirty workers may still be loading).
fn call_when_ready(server: &Server, path: &str) -> serde_like::Json {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = call(server, path);
        if answer.get("result").is_some() || Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn dirty_server(extra: &[&str]) -> Server {
    let server = Gunicorn::new()
        .bind_free_port()
        .args(["-w", "1", "--dirty-app", "dirty_tasks:Counter"])
        .args(extra)
        .arg("dirty_web:app")
        .spawn();
    server.wait_booted(1);
    server
}

#[test]
fn a_web_worker_calls_a_dirty_app() {
    let server = dirty_server(&["--dirty-workers", "1"]);
    let arbiter = pid_after(&server, "Spawned dirty arbiter (pid: ");
    assert!(server
        .wait_for("Dirty arbiter listening on ", 1, WAIT)
        .is_some());

    // State stays in the dirty worker across calls.
    let first = call_when_ready(&server, "/call?action=incr");
    let second = call(&server, "/call?action=incr&args=%5B5%5D");
    assert_eq!(
        first.at(&["result", "count"]).as_i64(),
        Some(1),
        "{first:?}"
    );
    assert_eq!(
        second.at(&["result", "count"]).as_i64(),
        Some(6),
        "{second:?}"
    );
    assert_eq!(
        first.at(&["result", "pid"]).as_i64(),
        second.at(&["result", "pid"]).as_i64()
    );
    let dirty_pid = first.at(&["result", "pid"]).as_i64().unwrap() as i32;
    assert_ne!(dirty_pid, arbiter);
    assert!(support::children_of(arbiter).contains(&dirty_pid));

    // Arguments and keyword arguments arrive as sent (tuples as lists).
    let echo = call(
        &server,
        "/call?action=echo&args=%5B1,%22two%22,null%5D&kwargs=%7B%22k%22:%5Btrue%5D%7D",
    );
    assert_eq!(
        echo.at(&["result"]).to_string(),
        r#"{"args":[1,"two",null],"kwargs":{"k":[true]}}"#
    );

    // An exception in the app is a DirtyAppError with its message; the worker stays.
    let boom = call(&server, "/call?action=boom");
    assert_eq!(boom.at(&["error"]).as_str(), Some("DirtyAppError"));
    assert_eq!(
        boom.at(&["message"]).as_str(),
        Some("boom from the dirty app")
    );
    assert!(server
        .wait_for("Error executing dirty_tasks:Counter.boom", 1, WAIT)
        .is_some());
    let unknown = call(&server, "/call?action=_private");
    assert_eq!(unknown.at(&["error"]).as_str(), Some("DirtyAppError"));

    // A generator streams its items.
    let stream = call(&server, "/stream?n=4");
    assert_eq!(
        stream.at(&["result"]).to_string(),
        r#"["t0","t1","t2","t3"]"#
    );

    // An app that is not configured.
    let missing = call(&server, "/call?app=dirty_tasks:Nope&action=x");
    assert_eq!(
        missing.at(&["error"]).as_str(),
        Some("DirtyAppNotFoundError")
    );
    let third = call(&server, "/call?action=incr");
    assert_eq!(third.at(&["result", "count"]).as_i64(), Some(7));

    // The stash: written by a dirty worker, read by the web worker.
    let put = call(
        &server,
        "/call?action=stash_put&args=%5B%22sessions%22,%22u1%22,%7B%22n%22:1%7D%5D",
    );
    assert_eq!(put.at(&["result"]).to_string(), r#"["u1"]"#);
    let got = call(&server, "/stash?table=sessions&key=u1");
    assert_eq!(got.at(&["result"]).to_string(), r#"{"n":1}"#);
    let missing = call(&server, "/stash?table=sessions&key=u2");
    assert_eq!(missing.at(&["result"]).as_str(), Some("missing"));
}

#[test]
fn a_task_past_dirty_timeout_fails_and_its_worker_is_replaced() {
    let server = dirty_server(&["--dirty-workers", "1", "--dirty-timeout", "1"]);
    let before = call_when_ready(&server, "/call?action=incr");
    let old_pid = before.at(&["result", "pid"]).as_i64().unwrap() as i32;
    let started = Instant::now();
    let slow = call(&server, "/call?action=nap&args=%5B20%5D");
    assert!(started.elapsed() < Duration::from_secs(15), "{slow:?}");
    assert_eq!(slow.at(&["error"]).as_str(), Some("DirtyTimeoutError"));
    assert_eq!(slow.at(&["message"]).as_str(), Some("Worker timeout"));
    assert!(server
        .wait_for(&format!("DIRTY WORKER TIMEOUT (pid:{old_pid})"), 1, WAIT)
        .is_some());
    // The next task waits for the replacement, a fresh worker: its state starts again.
    let after = call(&server, "/call?action=incr");
    assert!(eventually(WAIT, || !alive(old_pid)));
    assert_ne!(after.at(&["result", "pid"]).as_i64(), Some(old_pid as i64));
    assert_eq!(after.at(&["result", "count"]).as_i64(), Some(1));
    // A task within the limit still answers.
    let quick = call(&server, "/call?action=nap&args=%5B0%5D");
    assert_eq!(quick.at(&["result"]).as_str(), Some("slept 0"));
}

#[test]
fn killed_dirty_worker_and_dirty_arbiter_are_replaced() {
    let server = dirty_server(&["--dirty-workers", "1"]);
    let arbiter = pid_after(&server, "Spawned dirty arbiter (pid: ");
    let first = call_when_ready(&server, "/call?action=incr");
    let worker = first.at(&["result", "pid"]).as_i64().unwrap() as i32;

    kill(Pid::from_raw(worker), Signal::SIGKILL).unwrap();
    assert!(server
        .wait_for(
            &format!("Dirty worker (pid:{worker}) killed by signal 9"),
            1,
            WAIT
        )
        .is_some());
    let next = call_when_ready(&server, "/call?action=incr");
    let worker2 = next.at(&["result", "pid"]).as_i64().unwrap() as i32;
    assert_ne!(worker2, worker);
    assert_eq!(next.at(&["result", "count"]).as_i64(), Some(1));

    // The master replaces the dirty arbiter; the dead arbiter's worker leaves by itself.
    kill(Pid::from_raw(arbiter), Signal::SIGKILL).unwrap();
    assert!(server
        .wait_for(
            &format!("Dirty arbiter (pid:{arbiter}) killed by signal 9"),
            1,
            WAIT
        )
        .is_some());
    assert!(server
        .wait_for("Spawning dirty arbiter...", 1, WAIT)
        .is_some());
    assert!(server
        .wait_for("Spawned dirty arbiter (pid: ", 2, WAIT)
        .is_some());
    assert!(
        eventually(WAIT, || !alive(worker2)),
        "orphaned dirty worker"
    );
    // The web worker's client still holds a connection to the dead arbiter: it reconnects
    // (the request never reached anyone), and the task waits for the new worker to boot.
    assert!(server
        .wait_for("Dirty arbiter listening on ", 2, WAIT)
        .is_some());
    let again = call(&server, "/call?action=incr");
    assert_eq!(
        again.at(&["result", "count"]).as_i64(),
        Some(1),
        "{again:?}\n{}",
        server.output()
    );
}

#[test]
fn ttin_and_ttou_change_the_dirty_worker_count_and_app_limits_hold() {
    let server = dirty_server(&["--dirty-workers", "2", "--dirty-app", "dirty_tasks:Heavy"]);
    let arbiter = pid_after(&server, "Spawned dirty arbiter (pid: ");
    assert!(server
        .wait_for("Spawned dirty worker (pid: ", 2, WAIT)
        .is_some());
    // Heavy has `workers = 1`: only the first worker loads it.
    let lines = server.wait_for("with apps: ", 2, WAIT).unwrap();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("dirty_tasks:Heavy"))
            .count(),
        1,
        "{lines:?}"
    );
    let heavy: Vec<i64> = (0..3)
        .map(|_| {
            call_when_ready(&server, "/call?app=dirty_tasks:Heavy&action=whoami")
                .at(&["result"])
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(heavy.iter().all(|p| *p == heavy[0]), "{heavy:?}");

    kill(Pid::from_raw(arbiter), Signal::SIGTTIN).unwrap();
    assert!(server
        .wait_for("SIGTTIN: Increasing dirty workers to 3", 1, WAIT)
        .is_some());
    assert!(server
        .wait_for("Spawned dirty worker (pid: ", 3, WAIT)
        .is_some());
    assert!(eventually(WAIT, || support::children_of(arbiter).len() == 3));

    kill(Pid::from_raw(arbiter), Signal::SIGTTOU).unwrap();
    assert!(server
        .wait_for("SIGTTOU: Decreasing dirty workers to 2", 1, WAIT)
        .is_some());
    assert!(server
        .wait_for("Dirty worker exited (pid:", 1, WAIT)
        .is_some());
    assert!(eventually(WAIT, || support::children_of(arbiter).len() == 2));
    // The worker that kept Heavy was not the one retired.
    let still = call(&server, "/call?app=dirty_tasks:Heavy&action=whoami");
    assert_eq!(still.at(&["result"]).as_i64(), Some(heavy[0]));

    // Heavy requires one worker, Counter none: TTOU stops at 1.
    kill(Pid::from_raw(arbiter), Signal::SIGTTOU).unwrap();
    assert!(server
        .wait_for("SIGTTOU: Decreasing dirty workers to 1", 1, WAIT)
        .is_some());
    kill(Pid::from_raw(arbiter), Signal::SIGTTOU).unwrap();
    assert!(server
        .wait_for("SIGTTOU: Cannot decrease below 1 workers", 1, WAIT)
        .is_some());
}

#[test]
fn hup_to_the_master_gives_the_dirty_arbiter_new_workers() {
    let server = dirty_server(&["--dirty-workers", "1"]);
    let arbiter = pid_after(&server, "Spawned dirty arbiter (pid: ");
    let before = call_when_ready(&server, "/call?action=incr");
    let old = before.at(&["result", "pid"]).as_i64().unwrap() as i32;
    server.signal(Signal::SIGHUP);
    assert!(server
        .wait_for("Reloading dirty workers", 1, WAIT)
        .is_some());
    assert!(server
        .wait_for(&format!("Dirty worker exited (pid:{old})"), 1, WAIT)
        .is_some());
    // The same dirty arbiter, a new worker with fresh state.
    let after = call_when_ready(&server, "/call?action=incr");
    assert_ne!(after.at(&["result", "pid"]).as_i64(), Some(old as i64));
    assert_eq!(after.at(&["result", "count"]).as_i64(), Some(1));
    assert!(alive(arbiter));
    assert_eq!(support::children_of(arbiter).len(), 1);
}

/// One message to the dirty arbiter's socket in its framing (4-byte big-endian length, JSON).
fn ask_dirty_arbiter(socket: &str, request: &str) -> serde_like::Json {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(&(request.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
    stream.read_exact(&mut body).unwrap();
    serde_like::parse(&String::from_utf8_lossy(&body))
}

#[test]
fn the_dirty_arbiter_answers_status_and_manage() {
    let server = dirty_server(&["--dirty-workers", "1", "--dirty-app", "dirty_tasks:Heavy"]);
    let line = server
        .wait_for("Spawned dirty arbiter (pid: ", 1, WAIT)
        .unwrap()
        .remove(0);
    let socket = line.split(") at ").nth(1).unwrap().trim().to_string();
    call_when_ready(&server, "/call?action=incr");
    let status = ask_dirty_arbiter(&socket, r#"{"type":"status","id":"1"}"#);
    assert_eq!(
        status.at(&["type"]).as_str(),
        Some("response"),
        "{status:?}"
    );
    assert_eq!(
        status
            .at(&["result", "workers"])
            .to_string()
            .matches("\"pid\"")
            .count(),
        1
    );
    let apps = status.at(&["result", "apps"]).to_string();
    assert!(
        apps.contains(r#""import_path":"dirty_tasks:Heavy","worker_count":1"#),
        "{apps}"
    );
    let added = ask_dirty_arbiter(
        &socket,
        r#"{"type":"manage","id":"2","op":"add","count":2}"#,
    );
    assert_eq!(added.at(&["result", "target_workers"]).as_i64(), Some(3));
    assert!(server
        .wait_for("Spawned dirty worker (pid: ", 3, WAIT)
        .is_some());
    let removed = ask_dirty_arbiter(
        &socket,
        r#"{"type":"manage","id":"3","op":"remove","count":5}"#,
    );
    // Heavy needs one worker: the count stops there.
    assert_eq!(removed.at(&["result", "target_workers"]).as_i64(), Some(1));
    assert!(server
        .wait_for("Dirty worker exited (pid:", 2, WAIT)
        .is_some());
}

#[test]
fn dirty_threads_run_tasks_at_once_and_the_async_client_works() {
    let server = Gunicorn::new()
        .bind_free_port()
        .args(["-w", "2", "--dirty-app", "dirty_tasks:Counter"])
        .args(["--dirty-workers", "1", "--dirty-threads", "2"])
        .arg("dirty_web:app")
        .spawn();
    server.wait_booted(2);
    call_when_ready(&server, "/call?action=incr");
    // Two calls meet inside the one dirty worker: they run at the same time.
    let port = server.port();
    let meet = || {
        std::thread::spawn(move || {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let req = support::get_request("/call?action=rendezvous&args=%5B20%5D");
            serde_like::parse(&send_to(addr, req.as_bytes()).text())
        })
    };
    let (a, b) = (meet(), meet());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.at(&["result"]).as_str(), Some("met"), "{a:?}");
    assert_eq!(b.at(&["result"]).as_str(), Some("met"), "{b:?}");

    // execute_async and stream_async; an `async def` action is awaited in the dirty worker.
    let answer = call(&server, "/async?action=later&args=%5B7%5D");
    assert_eq!(
        answer.at(&["result"]).to_string(),
        r#"{"items":["t0","t1"],"one":{"awaited":7}}"#
    );
}

const HOOKS_CONF: &str = r#"
dirty_workers = 1
def on_dirty_starting(arbiter):
    arbiter.log.info("hook on_dirty_starting pid=%s workers=%s", arbiter.pid, arbiter.cfg.dirty_workers)
def dirty_post_fork(arbiter, worker):
    arbiter.log.info("hook dirty_post_fork worker=%s apps=%s", worker.pid, worker.app_paths)
def dirty_worker_init(worker):
    worker.log.info("hook dirty_worker_init worker=%s apps=%s", worker.pid, sorted(worker.apps))
def dirty_worker_exit(arbiter, worker):
    arbiter.log.info("hook dirty_worker_exit worker=%s", worker.pid)
"#;

#[test]
fn the_four_hooks_fire_and_the_stop_is_graceful() {
    let dir = TempDir::new("dirtyhooks");
    let conf = dir.write("dirty.conf.py", HOOKS_CONF);
    let marker = dir.path().join("closed.txt");
    let server = Gunicorn::new()
        .bind_free_port()
        .env("DIRTY_TEST_CLOSE_MARKER", &marker)
        .args(["-w", "1", "-c", conf.to_str().unwrap()])
        .args(["--dirty-app", "dirty_tasks:Counter", "dirty_web:app"])
        .spawn();
    server.wait_booted(1);
    let arbiter = pid_after(&server, "Spawned dirty arbiter (pid: ");
    assert!(server
        .wait_for(
            &format!("hook on_dirty_starting pid={arbiter} workers=1"),
            1,
            WAIT
        )
        .is_some());
    let worker = pid_after(&server, "hook dirty_post_fork worker=");
    assert!(server
        .wait_for(
            &format!("hook dirty_post_fork worker={worker} apps=['dirty_tasks:Counter']"),
            1,
            WAIT
        )
        .is_some());
    assert!(server
        .wait_for(
            &format!("hook dirty_worker_init worker={worker} apps=['dirty_tasks:Counter']"),
            1,
            WAIT
        )
        .is_some());
    // A task running when the stop comes finishes: the stop is graceful.
    let port = server.port();
    let slow = std::thread::spawn(move || {
        send_to(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            support::get_request("/call?action=nap&args=%5B2%5D").as_bytes(),
        )
    });
    std::thread::sleep(Duration::from_millis(700));
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(WAIT).expect("master exits");
    assert_eq!(status.code(), Some(0), "{}", server.output());
    let answer = slow.join().unwrap();
    assert!(answer.text().contains("slept 2"), "{}", answer.text());
    assert!(server
        .wait_for(&format!("hook dirty_worker_exit worker={worker}"), 1, WAIT)
        .is_some());
    assert!(server
        .wait_for(&format!("Dirty arbiter exiting (pid: {arbiter})"), 1, WAIT)
        .is_some());
    assert!(!alive(worker) && !alive(arbiter));
    let closed = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        closed,
        format!("closed {worker}\n"),
        "DirtyApp.close() ran once"
    );
}

#[test]
fn a_bad_dirty_app_spec_is_one_line_at_boot() {
    let out = Gunicorn::new()
        .bind_free_port()
        .args([
            "--dirty-workers",
            "1",
            "--dirty-app",
            "dirty_tasks:Counter:0",
        ])
        .arg("dirty_web:app")
        .run();
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("Invalid value for dirty_apps: \"dirty_tasks:Counter:0\""),
        "{}",
        out.stderr
    );
}

/// The requests whose answers must be the same under gunicorn 27 and here.
const SAME_ANSWERS: &[&str] = &[
    "/call?action=incr",
    "/call?action=incr&args=%5B2%5D",
    "/call?action=echo&args=%5B1,%22two%22,null,%5B3%5D%5D&kwargs=%7B%22k%22:%7B%22a%22:1.5%7D%7D",
    "/call?action=boom",
    "/call?action=_private",
    "/call?action=nope",
    "/stream?n=3",
    "/call?action=nap&args=%5B0%5D",
    "/call?action=stash_put&args=%5B%22tbl%22,%22k1%22,%5B1,%7B%22a%22:null%7D%5D%5D",
    "/stash?table=tbl&key=k1",
    "/async?action=echo&args=%5B%22x%22,2%5D",
    // Not "/stash?table=tbl&key=nope": gunicorn 27's stash.get(table, key, default) raises
    // StashError for a missing key instead of returning the default (docs/dirty.md).
];

/// The answers to [`SAME_ANSWERS`], without the dirty worker's pid.
fn answers(port: u16) -> Vec<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    SAME_ANSWERS
        .iter()
        .map(|path| {
            let text = send_to(addr, support::get_request(path).as_bytes()).text();
            let json = serde_like::parse(&text);
            json.without("pid").to_string()
        })
        .collect()
}

#[test]
fn same_answers_as_gunicorn_27() {
    let Some(g27) = gunicorn27() else {
        support::skip("gunicorn 27 is not installed in target/package/venvs/gunicorn27");
        return;
    };
    let port = free_port();
    let mut reference = Command::new(&g27)
        .current_dir(support::apps_dir())
        // Its own process name: gunicorn 27 kills the process named in
        // $TMPDIR/gunicorn-dirty-NAME.pid at start (an orphaned dirty arbiter, it assumes).
        .args([
            "-b",
            &format!("127.0.0.1:{port}"),
            "-w",
            "1",
            "-n",
            "dirty-g27-test",
        ])
        .args(["--dirty-workers", "1", "--dirty-app", "dirty_tasks:Counter"])
        .arg("dirty_web:app")
        .env_remove("GUNICORN_CMD_ARGS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gunicorn 27");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ready = eventually(WAIT, || {
        std::net::TcpStream::connect(addr).is_ok()
            && send_to(addr, support::get_request("/call?action=echo").as_bytes())
                .text()
                .contains("result")
    });
    let theirs = ready.then(|| answers(port));
    let _ = kill(Pid::from_raw(reference.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + WAIT;
    while reference.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = reference.kill();
    let _ = reference.wait();
    let theirs = theirs.expect("gunicorn 27 answered");

    let server = dirty_server(&["--dirty-workers", "1"]);
    call_when_ready(&server, "/call?action=echo");
    let ours = answers(server.port());
    for ((path, a), b) in SAME_ANSWERS.iter().zip(&theirs).zip(&ours) {
        assert_eq!(a, b, "{path}");
    }
}

/// A small JSON reader for the answers (the test crate has no JSON dependency).
mod serde_like {
    use std::fmt;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Num(String),
        Str(String),
        List(Vec<Json>),
        Obj(Vec<(String, Json)>),
    }

    impl Json {
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Obj(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn at(&self, path: &[&str]) -> &Json {
            let mut cur = self;
            for key in path {
                cur = cur.get(key).unwrap_or(&Json::Null);
            }
            cur
        }

        pub fn as_i64(&self) -> Option<i64> {
            match self {
                Json::Num(n) => n.parse().ok(),
                _ => None,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Json::Str(s) => Some(s),
                _ => None,
            }
        }

        /// The same value with every object member named `key` removed.
        pub fn without(&self, key: &str) -> Json {
            match self {
                Json::List(items) => Json::List(items.iter().map(|v| v.without(key)).collect()),
                Json::Obj(items) => Json::Obj(
                    items
                        .iter()
                        .filter(|(k, _)| k != key)
                        .map(|(k, v)| (k.clone(), v.without(key)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
    }

    impl fmt::Display for Json {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Json::Null => write!(f, "null"),
                Json::Bool(b) => write!(f, "{b}"),
                Json::Num(n) => write!(f, "{n}"),
                Json::Str(s) => write!(f, "{s:?}"),
                Json::List(items) => {
                    write!(f, "[")?;
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            write!(f, ",")?;
                        }
                        write!(f, "{v}")?;
                    }
                    write!(f, "]")
                }
                Json::Obj(items) => {
                    write!(f, "{{")?;
                    for (i, (k, v)) in items.iter().enumerate() {
                        if i > 0 {
                            write!(f, ",")?;
                        }
                        write!(f, "{k:?}:{v}")?;
                    }
                    write!(f, "}}")
                }
            }
        }
    }

    pub fn parse(text: &str) -> Json {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let value = parse_value(&chars, &mut pos);
        value.unwrap_or_else(|| panic!("not JSON: {text:?}"))
    }

    fn skip_ws(c: &[char], pos: &mut usize) {
        while *pos < c.len() && c[*pos].is_whitespace() {
            *pos += 1;
        }
    }

    fn parse_value(c: &[char], pos: &mut usize) -> Option<Json> {
        skip_ws(c, pos);
        let ch = *c.get(*pos)?;
        match ch {
            'n' => {
                *pos += 4;
                Some(Json::Null)
            }
            't' => {
                *pos += 4;
                Some(Json::Bool(true))
            }
            'f' => {
                *pos += 5;
                Some(Json::Bool(false))
            }
            '"' => parse_string(c, pos).map(Json::Str),
            '[' => {
                *pos += 1;
                let mut items = Vec::new();
                loop {
                    skip_ws(c, pos);
                    if c.get(*pos) == Some(&']') {
                        *pos += 1;
                        return Some(Json::List(items));
                    }
                    items.push(parse_value(c, pos)?);
                    skip_ws(c, pos);
                    if c.get(*pos) == Some(&',') {
                        *pos += 1;
                    }
                }
            }
            '{' => {
                *pos += 1;
                let mut items = Vec::new();
                loop {
                    skip_ws(c, pos);
                    if c.get(*pos) == Some(&'}') {
                        *pos += 1;
                        return Some(Json::Obj(items));
                    }
                    let key = parse_string(c, pos)?;
                    skip_ws(c, pos);
                    *pos += 1; // ':'
                    let value = parse_value(c, pos)?;
                    items.push((key, value));
                    skip_ws(c, pos);
                    if c.get(*pos) == Some(&',') {
                        *pos += 1;
                    }
                }
            }
            _ => {
                let start = *pos;
                while *pos < c.len() && "+-0123456789.eE".contains(c[*pos]) {
                    *pos += 1;
                }
                (start < *pos).then(|| Json::Num(c[start..*pos].iter().collect()))
            }
        }
    }

    fn parse_string(c: &[char], pos: &mut usize) -> Option<String> {
        if c.get(*pos) != Some(&'"') {
            return None;
        }
        *pos += 1;
        let mut out = String::new();
        while let Some(&ch) = c.get(*pos) {
            *pos += 1;
            match ch {
                '"' => return Some(out),
                '\\' => {
                    let esc = *c.get(*pos)?;
                    *pos += 1;
                    match esc {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex: String = c.get(*pos..*pos + 4)?.iter().collect();
                            *pos += 4;
                            out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        None
    }
}
