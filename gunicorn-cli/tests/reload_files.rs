//! `--reload`: a worker restarts when a file of its application (or a `--reload-extra-file`
//! pattern) changes; a SyntaxError is served as a 500 page until the file is fixed. And HUP
//! with `--preload` keeps the application code loaded in the master (gunicorn's behaviour).

mod support;

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{eventually, Gunicorn, Server, TempDir, BOOT_TIMEOUT};

/// How long a change may take to be served (the poll engine checks every second).
const RELOAD_WAIT: Duration = Duration::from_secs(30);

fn app_text(version: &str) -> String {
    format!(
        "VERSION = {version:?}\n\
         def app(environ, start_response):\n    \
         body = VERSION.encode()\n    \
         start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    \
         return [body]\n"
    )
}

/// Rewrites `path` so its mtime moves on even on coarse-timestamp filesystems.
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    let _ = f.set_modified(later);
}

fn body(server: &Server) -> Option<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port()));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let r = support::exchange(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    Some((r.status, r.text()))
}

fn wait_body(server: &Server, want_status: u16, want: &str) -> bool {
    eventually(RELOAD_WAIT, || {
        body(server).is_some_and(|(s, b)| s == want_status && b.contains(want))
    })
}

fn reload_on_edit(engine: &str, worker: &str) {
    let dir = TempDir::new("reload-edit");
    let module = dir.write("reloadapp.py", &app_text("one"));
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--reload", "--reload-engine", engine, "-k", worker])
        .bind_free_port()
        .arg("reloadapp:app")
        .spawn();
    server.wait_booted(1);
    assert!(wait_body(&server, 200, "one"), "{}", server.output());
    // Give the watcher a moment to see the file once before it changes (poll records mtimes
    // on its first pass).
    std::thread::sleep(Duration::from_millis(1500));
    rewrite(&module, &app_text("two"));
    assert!(wait_body(&server, 200, "two"), "{}", server.output());
    let reloading = server
        .wait_for("Worker reloading: ", 1, BOOT_TIMEOUT)
        .expect("reload line");
    assert!(
        reloading[0].contains("reloadapp.py modified"),
        "{reloading:?}"
    );
    assert!(reloading[0].contains("[INFO]"), "{reloading:?}");
}

#[test]
fn reload_on_module_edit_inotify() {
    reload_on_edit("inotify", "sync");
}

#[test]
fn reload_on_module_edit_poll() {
    reload_on_edit("poll", "sync");
}

#[test]
fn reload_on_module_edit_gthread_auto() {
    reload_on_edit("auto", "gthread");
}

#[test]
fn reload_extra_file_glob() {
    for engine in ["inotify", "poll"] {
        let dir = TempDir::new("reload-extra");
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        let page = dir.write("templates/page.txt", "first");
        dir.write(
            "extraapp.py",
            "import os\n\
             TEXT = open(os.path.join(os.path.dirname(__file__), 'templates', 'page.txt')).read()\n\
             def app(environ, start_response):\n    \
             body = TEXT.encode()\n    \
             start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    \
             return [body]\n",
        );
        let server = Gunicorn::new()
            .cwd(dir.path())
            .args(["--reload", "--reload-engine", engine])
            .args(["--reload-extra-file", "templates/*.txt"])
            .bind_free_port()
            .arg("extraapp:app")
            .spawn();
        server.wait_booted(1);
        assert!(wait_body(&server, 200, "first"), "{}", server.output());
        std::thread::sleep(Duration::from_millis(1500));
        rewrite(&page, "second");
        assert!(
            wait_body(&server, 200, "second"),
            "{engine}: {}",
            server.output()
        );
        assert!(
            server.output().contains("page.txt modified"),
            "{}",
            server.output()
        );
    }
}

#[test]
fn syntax_error_is_served_then_fixed() {
    let dir = TempDir::new("reload-syntax");
    let module = dir.write(
        "brokenapp.py",
        "def app(environ, start_response:\n    pass\n",
    );
    let record = dir.path().join("record.txt");
    let conf = dir.write(
        "conf.py",
        &format!(
            "def worker_int(worker):\n    open({record:?}, 'a').write('worker_int %s\\n' % worker.age)\n"
        ),
    );
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["-c", conf.to_str().unwrap(), "--reload"])
        .bind_free_port()
        .arg("brokenapp:app")
        .spawn();
    server.wait_booted(1);
    // Served as a 500 page with the traceback, not a crash loop.
    assert!(
        wait_body(&server, 500, "SyntaxError"),
        "{}",
        server.output()
    );
    let (_, text) = body(&server).unwrap();
    assert!(text.contains("brokenapp.py"), "{text}");
    std::thread::sleep(Duration::from_millis(1500));
    rewrite(&module, &app_text("fixed"));
    assert!(wait_body(&server, 200, "fixed"), "{}", server.output());
    // One worker boot per state: no crash loop.
    assert_eq!(server.worker_pids().len(), 2, "{}", server.output());
    // The reload ran the worker_int hook of the worker it replaced.
    assert!(eventually(BOOT_TIMEOUT, || std::fs::read_to_string(
        &record
    )
    .unwrap_or_default()
    .contains("worker_int 1")));
}

#[test]
fn syntax_error_without_reload_fails_to_load() {
    let dir = TempDir::new("reload-noreload");
    dir.write(
        "brokenapp.py",
        "def app(environ, start_response:\n    pass\n",
    );
    let done = Gunicorn::new()
        .cwd(dir.path())
        .bind_free_port()
        .arg("brokenapp:app")
        .run();
    // gunicorn 27: a SyntaxError while importing is "Worker failed to boot.", exit 3.
    assert_eq!(done.code(), Some(3), "{}", done.stderr);
    assert!(
        done.stderr.contains("Worker failed to boot."),
        "{}",
        done.stderr
    );
}

/// gunicorn: HUP re-reads the configuration and replaces the workers, but an application
/// loaded in the master with `--preload` is not imported again; without `--preload` the new
/// workers import the new code.
#[test]
fn hup_reloads_code_only_without_preload() {
    for (preload, after_hup) in [(true, "one"), (false, "two")] {
        let dir = TempDir::new("reload-hup");
        let module = dir.write("hupapp.py", &app_text("one"));
        let mut cmd = Gunicorn::new().cwd(dir.path()).bind_free_port();
        if preload {
            cmd = cmd.arg("--preload");
        }
        let server = cmd.arg("hupapp:app").spawn();
        server.wait_booted(1);
        assert!(wait_body(&server, 200, "one"), "{}", server.output());
        rewrite(&module, &app_text("two"));
        server.signal(Signal::SIGHUP);
        server.wait_booted(2);
        // Wait for the old worker to be gone, then every answer comes from the new one.
        assert!(
            server.wait_for("Worker exiting", 1, BOOT_TIMEOUT).is_some(),
            "{}",
            server.output()
        );
        assert!(
            wait_body(&server, 200, after_hup),
            "preload={preload}: {}",
            server.output()
        );
        let (_, text) = body(&server).unwrap();
        assert_eq!(text, after_hup, "preload={preload}");
    }
}

#[test]
fn reload_on_module_edit_gevent() {
    if !support::python_has("gevent") {
        support::skip("gevent is not installed in the test Python");
        return;
    }
    reload_on_edit("auto", "gevent");
}

/// An in-place save (truncate, then write a moment later) must not make the new worker import
/// the empty file: the inotify watcher waits for the directory to settle.
#[test]
fn in_place_save_is_imported_complete() {
    use std::io::Write;
    let dir = TempDir::new("reload-inplace");
    let module = dir.write("inplaceapp.py", &app_text("one"));
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--reload", "--reload-engine", "inotify"])
        .bind_free_port()
        .arg("inplaceapp:app")
        .spawn();
    server.wait_booted(1);
    assert!(wait_body(&server, 200, "one"), "{}", server.output());
    std::thread::sleep(Duration::from_millis(1500));
    let text = app_text("two");
    let (first, rest) = text.split_at(text.len() / 2);
    let mut f = std::fs::File::create(&module).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    f.write_all(first.as_bytes()).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    f.write_all(rest.as_bytes()).unwrap();
    drop(f);
    assert!(wait_body(&server, 200, "two"), "{}", server.output());
    assert!(
        !server.output().contains("App failed to load"),
        "{}",
        server.output()
    );
}

/// An edit made while the worker imports the application (right after "Booting worker", before
/// the watcher first looks at the file) restarts the worker: the baseline is the worker's boot,
/// not the first scan after the import. The app announces that its import has begun (its source
/// is read) with a marker file, then lingers so the edit lands before the first scan.
fn edit_during_import(engine: &str) {
    let dir = TempDir::new("reload-early");
    let marker = dir.path().join("importing");
    let module = dir.write(
        "earlyapp.py",
        &format!(
            "import pathlib, time\n\
             pathlib.Path({:?}).write_text('x')\n\
             time.sleep(1.5)\n{}",
            marker.display().to_string(),
            app_text("one")
        ),
    );
    let server = Gunicorn::new()
        .cwd(dir.path())
        .args(["--reload", "--reload-engine", engine])
        .bind_free_port()
        .arg("earlyapp:app")
        .spawn();
    assert!(
        server.wait_for("Booting worker", 1, BOOT_TIMEOUT).is_some(),
        "{}",
        server.output()
    );
    assert!(
        eventually(BOOT_TIMEOUT, || marker.exists()),
        "{}",
        server.output()
    );
    // A plain save (mtime = now), while the worker is still inside the import.
    let tmp = module.with_extension("tmp");
    std::fs::write(&tmp, app_text("two")).unwrap();
    std::fs::rename(&tmp, &module).unwrap();
    let reloading = server.wait_for("Worker reloading: ", 1, RELOAD_WAIT);
    assert!(
        reloading.is_some_and(|l| l[0].contains("earlyapp.py modified")),
        "{engine}: {}",
        server.output()
    );
    assert!(
        wait_body(&server, 200, "two"),
        "{engine}: {}",
        server.output()
    );
}

#[test]
fn edit_during_import_reloads_inotify() {
    edit_during_import("inotify");
}

#[test]
fn edit_during_import_reloads_poll() {
    edit_during_import("poll");
}
