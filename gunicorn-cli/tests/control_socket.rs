//! The control socket and `gunicornc` (issue 18, item 11; gunicorn 25.1+), end to end: the real
//! server with `--control-socket` in a temp dir, driven by our `gunicornc` and by gunicorn 27's
//! (from `target/package/venvs/gunicorn27`, skipped when absent), and our client driving
//! gunicorn 27. Worker add/remove changes the worker count, reload replaces the workers, stalled,
//! garbage and oversized clients do not stop the server serving HTTP or answering the control
//! socket, the socket has the configured mode, and `--no-control-socket` creates nothing.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::{apps_dir, children_of, eventually, free_port, skip, Gunicorn, Server, TempDir};

const WAIT: Duration = Duration::from_secs(30);

/// Our `gunicornc`.
fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gunicornc"))
}

/// gunicorn 27's venv `bin/` directory, if installed.
fn gunicorn27_bin() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/package/venvs/gunicorn27/bin");
    dir.join("gunicornc").exists().then_some(dir)
}

/// Runs a `gunicornc` with `args`, bounded in time.
fn ctl(client: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(client)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gunicornc");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("gunicornc output")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `gunicornc -s SOCKET -j -c COMMAND`, parsed; panics unless it succeeds.
fn ctl_json(client: &Path, socket: &Path, command: &str) -> Json {
    let out = ctl(
        client,
        &["-s", socket.to_str().unwrap(), "-j", "-c", command],
    );
    assert!(out.status.success(), "{command}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{command}: {e}: {out:?}"))
}

fn start(dir: &TempDir, workers: u32, extra: &[&str]) -> (Server, PathBuf) {
    let socket = dir.path().join("g.ctl");
    let server = Gunicorn::new()
        .bind_free_port()
        .args(["-w", &workers.to_string(), "--control-socket"])
        .arg(socket.to_str().unwrap())
        .args(extra)
        .arg("hello:app")
        .spawn();
    server.wait_booted(workers as usize);
    assert!(
        server
            .wait_for("Control socket listening at ", 1, WAIT)
            .is_some(),
        "{}",
        server.output()
    );
    (server, socket)
}

/// A gunicorn 27 master, stopped (TERM, then KILL) when dropped, so a failed assertion does not
/// leave it running.
struct Reference(std::process::Child);

impl Drop for Reference {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker_count(server: &Server) -> usize {
    children_of(server.pid()).len()
}

#[test]
fn gunicornc_adds_removes_reloads_and_shuts_down() {
    let dir = TempDir::new("ctl-drive");
    let (server, socket) = start(&dir, 2, &[]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "default mode");
    assert!(std::fs::symlink_metadata(&socket).is_ok());

    let workers = ctl_json(&ours(), &socket, "show workers");
    assert_eq!(workers["count"], 2, "{workers}");
    assert_eq!(workers["workers"][0]["age"], 1, "{workers}");

    let added = ctl_json(&ours(), &socket, "worker add 2");
    assert_eq!(
        added,
        serde_json::json!({"added": 2, "previous": 2, "total": 4})
    );
    assert!(
        eventually(WAIT, || worker_count(&server) == 4),
        "{}",
        server.output()
    );
    assert_eq!(ctl_json(&ours(), &socket, "show workers")["count"], 4);

    let removed = ctl_json(&ours(), &socket, "worker remove 5");
    assert_eq!(
        removed,
        serde_json::json!({"removed": 3, "previous": 4, "total": 1})
    );
    assert!(
        eventually(WAIT, || worker_count(&server) == 1),
        "{}",
        server.output()
    );

    let stats = ctl_json(&ours(), &socket, "show stats");
    assert_eq!(stats["pid"], server.pid());
    assert_eq!(stats["workers_target"], 1);
    assert_eq!(stats["workers_spawned"], 4);
    assert!(stats["workers_killed"].as_u64().unwrap() >= 3, "{stats}");

    // reload replaces the worker, through the master's HUP path; as in gunicorn, the reloaded
    // configuration sets the count back to `workers` (2).
    let before = children_of(server.pid());
    assert_eq!(ctl_json(&ours(), &socket, "reload")["status"], "reloading");
    assert!(
        eventually(WAIT, || {
            let now = children_of(server.pid());
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        }),
        "{}",
        server.output()
    );
    assert!(server.wait_for("Handling signal: hup", 1, WAIT).is_some());
    assert_eq!(ctl_json(&ours(), &socket, "show stats")["reloads"], 1);
    assert_eq!(server.get("/").status, 200);

    // worker kill: the master replaces the worker.
    let victim = children_of(server.pid())[0];
    let killed = ctl_json(&ours(), &socket, &format!("worker kill {victim}"));
    assert_eq!(
        killed,
        serde_json::json!({"success": true, "killed": victim})
    );
    assert!(eventually(WAIT, || {
        let now = children_of(server.pid());
        now.len() == 2 && !now.contains(&victim)
    }));
    let unknown = ctl_json(&ours(), &socket, "worker kill 1");
    assert_eq!(unknown["error"], "Worker 1 not found");

    assert_eq!(ctl_json(&ours(), &socket, "reopen")["status"], "reopening");
    assert!(server.wait_for("Handling signal: usr1", 1, WAIT).is_some());

    let listeners = ctl_json(&ours(), &socket, "show listeners");
    assert_eq!(
        listeners["listeners"][0]["address"],
        format!("http://127.0.0.1:{}", server.port())
    );
    assert_eq!(listeners["listeners"][0]["type"], "tcp");
    let config = ctl_json(&ours(), &socket, "show config");
    assert_eq!(config["control_socket"], socket.to_str().unwrap());
    assert_eq!(config["workers"], 2);
    assert_eq!(config["bind"], serde_json::json!(["127.0.0.1:0"]));

    // Bad commands: a clear error, exit status 1, the server unharmed.
    for (command, error) in [
        ("bogus", "Error: Invalid argument: Unknown command: bogus"),
        (
            "show nope",
            "Error: Invalid argument: Unknown show target: nope",
        ),
        (
            "worker add x",
            "Error: Invalid argument: invalid literal for int() with base 10: 'x'",
        ),
        (
            "worker add 999999",
            "Error: Invalid argument: worker add 999999 would make",
        ),
    ] {
        let out = ctl(&ours(), &["-s", socket.to_str().unwrap(), "-c", command]);
        assert_eq!(out.status.code(), Some(1), "{command}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(error), "{command}: {stderr}");
    }
    assert_eq!(
        ctl_json(&ours(), &socket, "show stats")["workers_target"],
        2
    );

    let bye = ctl_json(&ours(), &socket, "shutdown");
    assert_eq!(
        bye,
        serde_json::json!({"status": "shutting_down", "mode": "graceful"})
    );
    let status = server.wait_exit(WAIT).expect("the server stops");
    assert_eq!(status.code(), Some(0), "{}", server.output());
    assert!(server.output().contains("Handling signal: term"));
    assert!(!socket.exists(), "the socket file is removed at exit");
}

#[test]
fn interactive_mode_reads_commands_until_quit() {
    let dir = TempDir::new("ctl-interactive");
    let (_server, socket) = start(&dir, 1, &[]);
    let mut child = Command::new(ours())
        .args(["-s", socket.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"show stats\n\nbogus\nworker add\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with(&format!("Connected to {}\n", socket.display())),
        "{stdout}"
    );
    assert!(stdout.contains("gunicorn> Uptime:"), "{stdout}");
    assert!(
        stdout.contains("Error: Invalid argument: Unknown command: bogus"),
        "{stdout}"
    );
    assert!(stdout.contains("\"added\": 1"), "{stdout}");
}

/// The connection is stalled, sends garbage, announces a 1 GiB message, or stops mid-message:
/// HTTP keeps being served and the control socket keeps answering.
#[test]
fn misbehaving_clients_do_not_block_the_arbiter() {
    let dir = TempDir::new("ctl-abuse");
    let (server, socket) = start(&dir, 1, &[]);
    let mut held = Vec::new();
    for _ in 0..40 {
        // Connects and sends nothing (more of them than the server keeps).
        held.push(UnixStream::connect(&socket).unwrap());
    }
    let mut half = UnixStream::connect(&socket).unwrap();
    half.write_all(&[0, 0, 0, 50, b'{']).unwrap();
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"\0\0\0\x05hello").unwrap();
    let mut huge = UnixStream::connect(&socket).unwrap();
    huge.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    // Keeps writing: the server reads no further than the refused prefix and closes.
    let chunk = vec![b'x'; 64 * 1024];
    huge.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match huge.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 64 << 20, "the server kept reading a 1 GiB message");

    for (stream, want) in [
        (&mut garbage, "Invalid JSON"),
        (&mut huge, "Message too large"),
    ] {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut body).unwrap();
        let answer: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["status"], "error");
        assert!(
            answer["error"].as_str().unwrap().starts_with(want),
            "{answer}"
        );
    }
    for _ in 0..5 {
        assert_eq!(server.get("/").status, 200);
        let stats = ctl_json(&ours(), &socket, "show stats");
        assert_eq!(stats["workers_current"], 1);
    }
    // The master still manages workers while the clients hang on.
    let _ = ctl_json(&ours(), &socket, "worker add 1");
    assert!(eventually(WAIT, || worker_count(&server) == 2));
    drop(held);
}

#[test]
fn socket_mode_stale_socket_and_files_in_the_way() {
    let dir = TempDir::new("ctl-mode");
    // A stale socket left by a dead server is replaced.
    let socket = dir.path().join("g.ctl");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let (server, socket) = start(&dir, 1, &["--control-socket-mode", "0660"]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    assert_eq!(ctl_json(&ours(), &socket, "show workers")["count"], 1);
    drop(server);
    assert!(eventually(WAIT, || !socket.exists()));

    // A regular file is not a socket: left alone, and the server runs without a control socket.
    let file = dir.path().join("keep.ctl");
    std::fs::write(&file, "data").unwrap();
    let server = Gunicorn::new()
        .bind_free_port()
        .args(["--control-socket", file.to_str().unwrap(), "hello:app"])
        .spawn();
    server.wait_booted(1);
    let line = server.wait_for("Control server error: ", 1, WAIT);
    assert!(line.is_some(), "{}", server.output());
    assert!(line.unwrap()[0].contains("[ERROR]"));
    assert_eq!(server.get("/").status, 200);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");

    // A relative path is taken from the current directory; a missing directory is created 0700.
    let server = Gunicorn::new()
        .cwd(dir.path())
        .bind_free_port()
        .args(["--chdir", apps_dir().to_str().unwrap()])
        .args(["--control-socket", "run/rel.ctl", "hello:app"])
        .spawn();
    server.wait_booted(1);
    let rel = apps_dir().join("run/rel.ctl");
    assert!(server
        .wait_for("Control socket listening at ", 1, WAIT)
        .is_some());
    let listening = server.output();
    let shown = listening
        .lines()
        .find_map(|l| l.split("Control socket listening at ").nth(1))
        .unwrap()
        .to_string();
    assert!(Path::new(&shown).is_absolute(), "{shown}");
    assert!(shown.ends_with("run/rel.ctl"), "{shown}");
    let run_dir = Path::new(&shown).parent().unwrap().to_path_buf();
    let dir_mode = std::fs::metadata(&run_dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    drop(server);
    let _ = std::fs::remove_dir_all(&run_dir);
    let _ = rel;
}

#[test]
fn no_control_socket_creates_nothing() {
    let dir = TempDir::new("ctl-off");
    let socket = dir.path().join("g.ctl");
    let server = Gunicorn::new()
        .bind_free_port()
        .args(["--control-socket", socket.to_str().unwrap()])
        .args(["--no-control-socket", "--log-level", "debug", "hello:app"])
        .spawn();
    server.wait_booted(1);
    assert!(server
        .wait_for("Control socket disabled", 1, WAIT)
        .is_some());
    assert_eq!(server.get("/").status, 200);
    assert!(!socket.exists());
    let out = ctl(
        &ours(),
        &["-s", socket.to_str().unwrap(), "-c", "show workers"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "Error: Failed to connect to {}: [Errno 2] No such file or directory",
            socket.display()
        )
    );
}

/// gunicorn's default: `$XDG_RUNTIME_DIR/gunicorn.ctl`, found by the client the same way.
#[test]
fn default_path_follows_xdg_runtime_dir() {
    let dir = TempDir::new("ctl-xdg");
    let server = Gunicorn::new()
        .env("XDG_RUNTIME_DIR", dir.path())
        .bind_free_port()
        .arg("hello:app")
        .spawn();
    server.wait_booted(1);
    let socket = dir.path().join("gunicorn.ctl");
    assert!(server
        .wait_for("Control socket listening at ", 1, WAIT)
        .is_some());
    assert!(socket.exists(), "{}", server.output());
    let out = Command::new(ours())
        .env("XDG_RUNTIME_DIR", dir.path())
        .args(["-j", "-c", "show stats"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stats: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["pid"], server.pid());
}

/// gunicorn 27's `gunicornc` drives our server, and ours drives gunicorn 27: the same commands
/// give the same answers (bar timings and pids) and the same errors.
#[test]
fn differential_with_gunicorn27() {
    let Some(bin) = gunicorn27_bin() else {
        skip("gunicorn 27 is not installed in target/package/venvs/gunicorn27");
        return;
    };
    let theirs = bin.join("gunicornc");
    let dir = TempDir::new("ctl-diff");
    let (server, socket) = start(&dir, 2, &[]);
    let g27_socket = dir.path().join("g27.ctl");
    let port = free_port();
    let mut g27 = Reference(
        Command::new(bin.join("gunicorn"))
            .current_dir(apps_dir())
            .args([
                "-b",
                &format!("127.0.0.1:{port}"),
                "-w",
                "2",
                "--control-socket",
            ])
            .arg(&g27_socket)
            .arg("hello:app")
            .env_remove("GUNICORN_CMD_ARGS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let g27_up = eventually(WAIT, || UnixStream::connect(&g27_socket).is_ok());
    assert!(g27_up, "gunicorn 27 did not open its control socket");

    // Byte for byte: help, errors, the config table (the bind, socket and worker class aside).
    let same_text = [
        "help",
        "bogus",
        "show",
        "show nope",
        "worker",
        "worker add x",
        "dirty add",
    ];
    for command in same_text {
        for client in [&ours(), &theirs] {
            let a = ctl(client, &["-s", socket.to_str().unwrap(), "-c", command]);
            let b = ctl(client, &["-s", g27_socket.to_str().unwrap(), "-c", command]);
            assert_eq!(a.status.code(), b.status.code(), "{command}");
            assert_eq!(text(&a), text(&b), "{command} via {}", client.display());
            assert_eq!(
                String::from_utf8_lossy(&a.stderr),
                String::from_utf8_lossy(&b.stderr),
                "{command}"
            );
        }
    }
    // Same shapes: the keys of every answer, in gunicorn's order.
    let keys = |v: &Json| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
    for command in [
        "show workers",
        "show stats",
        "show config",
        "show listeners",
        "show all",
        "show dirty",
    ] {
        for client in [&ours(), &theirs] {
            let a = ctl_json(client, &socket, command);
            let b = ctl_json(client, &g27_socket, command);
            assert_eq!(keys(&a), keys(&b), "{command} via {}", client.display());
        }
    }
    let rows = |v: &Json| {
        v["workers"][0]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    let a = ctl_json(&theirs, &socket, "show workers");
    let b = ctl_json(&theirs, &g27_socket, "show workers");
    assert_eq!(rows(&a), rows(&b));
    // The human tables have the same layout: same lines but for the values.
    for command in ["show workers", "show stats", "show listeners", "show all"] {
        let a = text(&ctl(
            &theirs,
            &["-s", socket.to_str().unwrap(), "-c", command],
        ));
        let b = text(&ctl(
            &ours(),
            &["-s", g27_socket.to_str().unwrap(), "-c", command],
        ));
        // Every number becomes N and runs of blanks one space: the values differ, not the
        // layout.
        let shape = |t: &str| {
            t.lines()
                .map(|l| {
                    // `booted` differs by design (docs/control.md).
                    let l = l.replace(" yes ", " no  ");
                    let mut out = String::new();
                    for c in l.chars() {
                        let c = if c.is_ascii_digit() { 'N' } else { c };
                        let repeat = out.ends_with(c) && (c == 'N' || c == ' ');
                        if !repeat {
                            out.push(c);
                        }
                    }
                    out
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&a), shape(&b), "{command}:\n{a}\n---\n{b}");
    }
    // gunicorn 27's client changes our worker count, ours changes gunicorn 27's.
    let added = ctl_json(&theirs, &socket, "worker add 1");
    assert_eq!(added["total"], 3);
    assert!(eventually(WAIT, || worker_count(&server) == 3));
    let added = ctl_json(&ours(), &g27_socket, "worker add 1");
    assert_eq!(added["total"], 3);
    let g27_pid = g27.0.id() as i32;
    assert!(eventually(WAIT, || children_of(g27_pid).len() == 3));
    let bye = ctl_json(&ours(), &g27_socket, "shutdown quick");
    assert_eq!(bye["mode"], "quick");
    let deadline = Instant::now() + WAIT;
    while g27.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        g27.0.try_wait().ok().flatten().is_some(),
        "gunicorn 27 did not shut down"
    );
    let bye = ctl_json(&theirs, &socket, "shutdown");
    assert_eq!(bye["status"], "shutting_down");
    assert_eq!(server.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
}

/// The inodes of the unix sockets bound at `path` (from /proc/net/unix).
fn socket_inodes(path: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .filter(|l| l.ends_with(path.to_str().unwrap()))
        .filter_map(|l| l.split_whitespace().nth(6).map(str::to_string))
        .collect()
}

/// Whether process `pid` holds one of the sockets `inodes`.
fn holds_socket(pid: i32, inodes: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|target| {
                let t = target.to_string_lossy().into_owned();
                inodes.iter().any(|i| t == format!("socket:[{i}]"))
            })
            .unwrap_or(false)
    })
}

/// With a dirty arbiter: `show dirty`, `show all` and `dirty add`/`remove` go through it, and
/// neither the dirty arbiter nor the workers keep the master's control socket open.
#[test]
fn dirty_arbiter_pid_is_reported_and_the_socket_stays_the_masters() {
    let dir = TempDir::new("ctl-dirty");
    let (server, socket) = start(
        &dir,
        1,
        &["--dirty-app", "dirty_tasks:Counter", "--dirty-workers", "1"],
    );
    let line = server
        .wait_for("Spawned dirty arbiter (pid: ", 1, WAIT)
        .expect("a dirty arbiter");
    let dirty: i32 = line[0]
        .split("Spawned dirty arbiter (pid: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("the dirty arbiter's pid");
    let stats = ctl_json(&ours(), &socket, "show stats");
    assert_eq!(stats["dirty_arbiter_pid"], dirty, "{stats}");
    // The dirty arbiter answers for its workers and apps; dirty add/remove go through it.
    let dirty_workers = |shown: &Json| shown["workers"].as_array().map_or(0, Vec::len);
    assert!(eventually(WAIT, || {
        dirty_workers(&ctl_json(&ours(), &socket, "show dirty")) == 1
    }));
    let shown = ctl_json(&ours(), &socket, "show dirty");
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["pid"], dirty);
    assert_eq!(
        shown["apps"][0]["import_path"], "dirty_tasks:Counter",
        "{shown}"
    );
    let add = ctl_json(&ours(), &socket, "dirty add 2");
    assert_eq!(add["success"], true, "{add}");
    assert_eq!(add["operation"], "add");
    assert!(eventually(WAIT, || children_of(dirty).len() == 3));
    let all = ctl_json(&ours(), &socket, "show all");
    assert_eq!(all["dirty_arbiter"]["pid"], dirty, "{all}");
    assert_eq!(all["dirty_worker_count"], 3, "{all}");
    let removed = ctl_json(&ours(), &socket, "dirty remove 1");
    assert_eq!(removed["success"], true, "{removed}");
    assert!(eventually(WAIT, || children_of(dirty).len() == 2));
    // gunicorn 27's client reads the same answers.
    if let Some(bin) = gunicorn27_bin() {
        let out = ctl(
            &bin.join("gunicornc"),
            &["-s", socket.to_str().unwrap(), "-c", "show dirty"],
        );
        let text = text(&out);
        assert!(
            text.starts_with(&format!("Dirty arbiter PID: {dirty}")),
            "{text}"
        );
        assert!(text.contains("dirty_tasks:Counter"), "{text}");
    }

    // A worker and a dirty arbiter forked after the socket was opened.
    let _ = ctl_json(&ours(), &socket, "worker add 1");
    assert!(eventually(WAIT, || worker_count(&server) == 3));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dirty),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(server
        .wait_for("Spawned dirty arbiter (pid: ", 2, WAIT)
        .is_some());
    let inodes = socket_inodes(&socket);
    assert!(!inodes.is_empty());
    assert!(holds_socket(server.pid(), &inodes));
    // A child just forked holds it until it closes it, a few instructions after the fork:
    // wait for that, bounded (with the descriptors inherited for good, this never holds).
    let holders = || -> Vec<i32> {
        children_of(server.pid())
            .into_iter()
            .filter(|pid| holds_socket(*pid, &inodes))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(10), || holders().is_empty()),
        "children holding the control socket: {:?}",
        holders()
    );
    assert_eq!(
        children_of(server.pid()).len(),
        3,
        "two web workers and the dirty arbiter"
    );
}
