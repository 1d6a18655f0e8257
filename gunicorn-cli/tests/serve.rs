//! End-to-end tests that boot the server and talk HTTP to it (issue 2 parts 3, 4, 5, 7 and the
//! "Done means" list): app loading forms, binds, the process model (master + N workers, a
//! killed worker replaced, TERM exits 0), config sources, Flask and Django.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{
    alive, children_of, eventually, fixtures_dir, get_request, python_has, send_to, skip, Gunicorn,
    TempDir,
};

const STOP_TIMEOUT: Duration = Duration::from_secs(40);

#[test]
fn four_workers_serve_and_term_stops_everything_with_status_0() {
    let server = Gunicorn::new()
        .args(["-w", "4", "hello:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(4);
    let out = server.output();
    assert!(out.contains("[INFO] Starting gunicorn"), "{out}");
    assert!(out.contains("Listening at: http://127.0.0.1:"), "{out}");
    assert!(out.contains("Using worker: sync"), "{out}");

    let resp = server.get("/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "Hello, World!\n");

    // What `ps` shows: one master and its 4 workers.
    let mut workers = server.worker_pids();
    workers.sort_unstable();
    assert_eq!(workers.len(), 4);
    assert!(
        eventually(Duration::from_secs(10), || children_of(server.pid())
            == workers),
        "children {:?} != booted {:?}",
        children_of(server.pid()),
        workers
    );

    server.signal(Signal::SIGTERM);
    let status = server
        .wait_exit(STOP_TIMEOUT)
        .expect("master exits after TERM");
    assert_eq!(status.code(), Some(0), "{}", server.output());
    for pid in workers {
        assert!(
            eventually(Duration::from_secs(10), || !alive(pid)),
            "worker {pid} outlived the master"
        );
    }
}

#[test]
fn a_killed_worker_is_replaced() {
    let server = Gunicorn::new()
        .args(["-w", "2", "hello:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    let victim = server.worker_pids()[0];
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    server.wait_booted(3);
    let pids = server.worker_pids();
    assert!(!pids[2..].contains(&victim));
    assert!(
        eventually(Duration::from_secs(10), || children_of(server.pid()).len()
            == 2
            && !children_of(server.pid()).contains(&victim)),
        "children: {:?}",
        children_of(server.pid())
    );
    assert_eq!(server.get("/").status, 200);
    assert!(server
        .output()
        .contains(&format!("Worker (pid:{victim}) was sent SIGKILL!")));
}

#[test]
fn int_is_a_quick_stop_with_status_0() {
    let server = Gunicorn::new().arg("hello:app").bind_free_port().spawn();
    server.wait_booted(1);
    server.signal(Signal::SIGINT);
    let status = server
        .wait_exit(STOP_TIMEOUT)
        .expect("master exits after INT");
    assert_eq!(status.code(), Some(0), "{}", server.output());
}

#[test]
fn app_loading_forms() {
    let cases: &[(&str, &str)] = &[
        ("hello:app", "Hello, World!\n"),
        ("hello", "Hello, World!\n"),
        ("hello:application", "Hello, World!\n"),
        ("pkg.sub.wsgi:application", "pkg.sub.wsgi\n"),
        ("pkg.sub.wsgi", "pkg.sub.wsgi\n"),
        ("factory:create_app()", "default debug=False\n"),
        ("factory:create_app('x', debug=True)", "x debug=True\n"),
    ];
    for (app, body) in cases {
        let server = Gunicorn::new().arg(app).bind_free_port().spawn();
        server.wait_booted(1);
        let resp = server.get("/");
        assert_eq!(resp.status, 200, "{app}: {resp:?}");
        assert_eq!(resp.text(), *body, "{app}");
    }
}

#[test]
fn chdir_and_pythonpath_find_the_app() {
    let apps = support::apps_dir();
    let elsewhere = TempDir::new("chdir");
    let server = Gunicorn::new()
        .cwd(elsewhere.path())
        .args(["--chdir", apps.to_str().unwrap(), "hello:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/").text(), "Hello, World!\n");
    drop(server);
    let server = Gunicorn::new()
        .cwd(elsewhere.path())
        .args(["--pythonpath", apps.to_str().unwrap(), "hello:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/").text(), "Hello, World!\n");
}

#[test]
fn an_app_that_cannot_load_stops_the_master_with_gunicorns_status() {
    // gunicorn 27: an exception while importing (ImportError, SyntaxError...) is exit 3, "Worker
    // failed to boot."; an AppImportError (no such attribute, not callable) is exit 4.
    let cases: &[(&str, &str, i32)] = &[
        ("no_such_module_xyz:app", "no_such_module_xyz", 3),
        ("hello:no_such_attr", "no_such_attr", 4),
        ("factory:not_callable", "must be callable", 4),
        (
            "broken_import:app",
            "module_that_does_not_exist_anywhere",
            3,
        ),
    ];
    for (app, needle, code) in cases {
        let server = Gunicorn::new().arg(app).bind_free_port().spawn();
        let status = server
            .wait_exit(STOP_TIMEOUT)
            .unwrap_or_else(|| panic!("{app}: master did not exit:\n{}", server.output()));
        assert_eq!(status.code(), Some(*code), "{app}: {}", server.output());
        let err = server.stderr_text();
        let reason = if *code == 3 {
            "Reason: Worker failed to boot."
        } else {
            "Reason: App failed to load."
        };
        assert!(err.contains(reason), "{app}: {err}");
        assert!(err.contains(needle), "{app}: {err}");
        // No respawn loop: at most the one worker that failed.
        assert!(server.worker_pids().len() <= 1, "{app}: {err}");
    }
}

#[test]
fn several_binds_and_ipv6() {
    let server = Gunicorn::new()
        .args([
            "-b",
            "127.0.0.1:0",
            "-b",
            "127.0.0.1:0",
            "-b",
            "[::1]:0",
            "hello:app",
        ])
        .spawn();
    server.wait_booted(1);
    let addrs = server.listening_addrs();
    assert_eq!(addrs.len(), 3, "{}", server.output());
    assert!(addrs[2].is_ipv6(), "{addrs:?}");
    for addr in addrs {
        assert_ne!(addr.port(), 0);
        let resp = send_to(addr, get_request("/").as_bytes());
        assert_eq!(resp.text(), "Hello, World!\n", "{addr}");
    }
}

#[test]
fn unix_socket_bind() {
    let dir = TempDir::new("unix");
    let path = dir.path().join("gunicorn.sock");
    let server = Gunicorn::new()
        .args(["-b", &format!("unix:{}", path.display()), "hello:app"])
        .spawn();
    server.wait_booted(1);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).expect("connect unix socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(get_request("/").as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let resp = support::parse_response(&raw).expect("a response");
    assert_eq!(resp.text(), "Hello, World!\n");
    server.signal(Signal::SIGTERM);
    assert_eq!(
        server.wait_exit(STOP_TIMEOUT).and_then(|s| s.code()),
        Some(0)
    );
    assert!(!path.exists(), "the socket file is removed on stop");
}

#[test]
fn port_env_sets_the_default_bind() {
    // PORT=0: gunicorn's default becomes 0.0.0.0:$PORT, and the kernel picks the port.
    let server = Gunicorn::new().env("PORT", "0").arg("hello:app").spawn();
    server.wait_booted(1);
    let addrs = server.listening_addrs();
    assert_eq!(addrs.len(), 1, "{}", server.output());
    assert!(addrs[0].ip().is_unspecified(), "{addrs:?}");
    let loopback = SocketAddr::from(([127, 0, 0, 1], addrs[0].port()));
    let resp = send_to(loopback, get_request("/").as_bytes());
    assert_eq!(resp.text(), "Hello, World!\n");
}

#[test]
fn a_busy_port_is_an_error_with_status_1() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let server = Gunicorn::new()
        .args(["-b", &format!("127.0.0.1:{port}"), "hello:app"])
        .spawn();
    let status = server.wait_exit(STOP_TIMEOUT).expect("master gives up");
    assert_eq!(status.code(), Some(1), "{}", server.output());
    assert!(
        server.output().contains("Can't connect to"),
        "{}",
        server.output()
    );
    drop(busy);
}

#[test]
fn config_file_in_the_cwd_configures_the_server() {
    let dir = TempDir::new("servecwd");
    std::fs::copy(
        support::apps_dir().join("hello.py"),
        dir.path().join("hello.py"),
    )
    .unwrap();
    dir.write(
        "gunicorn.conf.py",
        "bind = ['127.0.0.1:0']\nworkers = 2\nwsgi_app = 'hello:app'\n",
    );
    let server = Gunicorn::new().cwd(dir.path()).spawn();
    server.wait_booted(2);
    assert_eq!(server.get("/").text(), "Hello, World!\n");
}

#[test]
fn gunicorn_cmd_args_configure_the_server() {
    let server = Gunicorn::new()
        .env("GUNICORN_CMD_ARGS", "--workers 2 --bind 127.0.0.1:0")
        .arg("hello:app")
        .spawn();
    server.wait_booted(2);
    assert_eq!(server.get("/").text(), "Hello, World!\n");
}

#[test]
fn env_option_is_seen_by_the_app() {
    let server = Gunicorn::new()
        .cwd(fixtures_dir())
        .args(["-e", "GREETING=hello there", "-e", "EMPTY=", "envapp:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(1);
    assert_eq!(server.get("/GREETING").text(), "hello there");
    let empty = server.get("/EMPTY");
    assert_eq!((empty.status, empty.text().as_str()), (200, ""));
    assert_eq!(server.get("/NOT_SET_ANYWHERE").status, 404);
}

#[test]
fn flask_app() {
    if !python_has("flask") {
        return skip("flask is not installed in the Python gunicorn runs (run scripts/test)");
    }
    let server = Gunicorn::new()
        .args(["-w", "2", "flask_app:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    let resp = server.get("/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "Hello from Flask\n");
    let resp = server.get("/json?a=1");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.text().contains("\"a\":\"1\"") || resp.text().contains("\"a\": \"1\""));
    let post = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello flask";
    let resp = server.send(post);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "hello flask");
    assert_eq!(server.get("/missing").status, 404);
}

#[test]
fn django_project() {
    if !python_has("django") {
        return skip("django is not installed in the Python gunicorn runs (run scripts/test)");
    }
    let dir = TempDir::new("django");
    let python = match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => std::path::Path::new(&v).join("bin/python"),
        None => "python3".into(),
    };
    let status = std::process::Command::new(python)
        .args(["-m", "django", "startproject", "mysite"])
        .arg(dir.path())
        .status()
        .expect("run django-admin startproject");
    assert!(status.success(), "django-admin startproject failed");
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-w", "2", "mysite.wsgi"])
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    // A new project with DEBUG = True answers / with its welcome page.
    let resp = server.get("/");
    assert_eq!(resp.status, 200, "{}", server.output());
    assert!(
        resp.text().contains("The install worked successfully"),
        "{}",
        resp.text()
    );
    // The admin redirects to its login page.
    let resp = server.get("/admin/");
    assert_eq!(resp.status, 302, "{resp:?}");
    assert!(
        resp.header("Location")
            .unwrap_or("")
            .contains("/admin/login/"),
        "{resp:?}"
    );
}

#[test]
fn hup_rereads_the_config_file() {
    let dir = TempDir::new("hup");
    std::fs::copy(
        support::apps_dir().join("hello.py"),
        dir.path().join("hello.py"),
    )
    .unwrap();
    let conf = "bind = ['127.0.0.1:0']\nwsgi_app = 'hello:app'\n";
    dir.write("gunicorn.conf.py", &format!("{conf}workers = 1\n"));
    let server = Gunicorn::new().cwd(dir.path()).spawn();
    server.wait_booted(1);
    dir.write("gunicorn.conf.py", &format!("{conf}workers = 3\n"));
    server.signal(Signal::SIGHUP);
    // HUP spawns a new generation of `workers` and retires the old one.
    server.wait_booted(4);
    assert!(
        eventually(Duration::from_secs(30), || children_of(server.pid()).len()
            == 3),
        "children: {:?}\n{}",
        children_of(server.pid()),
        server.output()
    );
    assert_eq!(server.get("/").text(), "Hello, World!\n");
}

#[test]
fn reuse_port_lets_each_worker_bind() {
    // With --reuse-port each worker binds the address itself, so port 0 would give each worker
    // its own port: use a port that was free a moment ago.
    let port = support::free_port();
    let server = Gunicorn::new()
        .args([
            "--reuse-port",
            "-w",
            "2",
            "-b",
            &format!("127.0.0.1:{port}"),
            "hello:app",
        ])
        .spawn();
    server.wait_booted(2);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..4 {
        let resp = send_to(addr, get_request("/").as_bytes());
        assert_eq!(resp.text(), "Hello, World!\n");
    }
}

#[test]
fn backlog_and_preload_are_accepted() {
    let server = Gunicorn::new()
        .args(["--backlog", "16", "--preload", "-w", "2", "hello:app"])
        .bind_free_port()
        .spawn();
    server.wait_booted(2);
    assert_eq!(server.get("/").text(), "Hello, World!\n");
    // --preload with an app that cannot load fails in the master, before any worker.
    let server = Gunicorn::new()
        .args(["--preload", "hello:no_such_attr"])
        .bind_free_port()
        .spawn();
    let status = server.wait_exit(STOP_TIMEOUT).expect("master exits");
    // gunicorn 27 exits 1 with the traceback when the preloaded application fails.
    assert_eq!(status.code(), Some(1), "{}", server.output());
    assert!(server.worker_pids().is_empty(), "{}", server.output());
    assert!(
        server.stderr_text().contains("no_such_attr"),
        "{}",
        server.output()
    );
}

#[test]
fn chdir_applies_before_binding() {
    // A relative unix socket path is taken from --chdir, as gunicorn chdirs in the master.
    let dir = TempDir::new("chdirbind");
    std::fs::copy(
        support::apps_dir().join("hello.py"),
        dir.path().join("hello.py"),
    )
    .unwrap();
    let elsewhere = TempDir::new("chdirbind-start");
    let server = Gunicorn::new()
        .cwd(elsewhere.path())
        .args([
            "--chdir",
            dir.path().to_str().unwrap(),
            "-b",
            "unix:rel.sock",
            "hello:app",
        ])
        .spawn();
    server.wait_booted(1);
    assert!(dir.path().join("rel.sock").exists(), "{}", server.output());
    let missing = Gunicorn::new()
        .args(["--chdir", "/no/such/dir/for/gunicorn", "hello:app"])
        .run();
    assert_eq!(missing.code(), Some(1), "{missing:?}");
}
