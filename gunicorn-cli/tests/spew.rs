//! `--spew` (issue 18 part 6): every executed line of Python is printed on stdout as
//! `module:lineno: source line`, in the worker's main thread, its gthread pool threads, a
//! greenlet worker's greenlets and, with `--preload`, the master; without `--spew`, none.

mod support;

use std::time::Duration;

use support::{Gunicorn, TempDir};

const APP: &str = "\
def app(environ, start_response):
    body = b'spewed\\n'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
";

/// The app's module-level line (traced while it is imported) and a line of its request.
const IMPORT_LINE: &str = "spewapp:1: def app(environ, start_response):";
const REQUEST_LINE: &str = "spewapp:2:     body = b'spewed\\n'";

/// Serves one request with `args`; returns the server's stdout once the request was answered.
fn serve_one(dir: &TempDir, args: &[&str], spew: bool) -> String {
    let mut g = Gunicorn::new()
        .args(["--chdir", dir.path().to_str().unwrap()])
        .args(args.iter().copied());
    if spew {
        g = g.arg("--spew");
    }
    let server = g.arg("spewapp:app").bind_free_port().spawn();
    server.wait_booted(1);
    let r = server.get("/");
    assert_eq!(r.status, 200, "{args:?}: {}", server.output());
    assert_eq!(r.text(), "spewed\n");
    if spew {
        let seen = server.wait_for(REQUEST_LINE, 1, Duration::from_secs(10));
        assert!(seen.is_some(), "{args:?}: {}", server.stdout_text());
    } else {
        // Give a stray trace line the time to show.
        std::thread::sleep(Duration::from_millis(300));
    }
    server.stdout_text()
}

fn app_dir() -> TempDir {
    let dir = TempDir::new("spew");
    dir.write("spewapp.py", APP);
    dir
}

#[test]
fn spew_prints_the_apps_lines_under_each_worker_class() {
    let dir = app_dir();
    let mut classes: Vec<&[&str]> = vec![
        &["-k", "sync"],
        &["-k", "gthread", "--threads", "2"],
        // The application is imported in the master (traced there), served in the worker.
        &["-k", "sync", "--preload"],
    ];
    if support::python_has("gevent") {
        classes.push(&["-k", "gevent"]);
    } else {
        support::skip("gevent is not installed: the greenlet worker is not checked");
    }
    for args in classes {
        let out = serve_one(&dir, args, true);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.contains(&IMPORT_LINE), "{args:?}: {out}");
        assert!(lines.contains(&REQUEST_LINE), "{args:?}: {out}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("spewapp:3:     start_response(")),
            "{args:?}: {out}"
        );
        // Python's own modules are traced too (the nuclear option), in the same format.
        assert!(
            lines.iter().any(|l| !l.starts_with("spewapp:")
                && l.split(':')
                    .nth(1)
                    .is_some_and(|n| n.parse::<u32>().is_ok())),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn without_spew_nothing_is_traced() {
    let dir = app_dir();
    for args in [&["-k", "sync"][..], &["-k", "gthread", "--threads", "2"]] {
        let out = serve_one(&dir, args, false);
        assert!(!out.contains("spewapp:"), "{args:?}: {out}");
    }
}
