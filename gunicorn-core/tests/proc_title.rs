//! Process titles as other programs see them: `/proc/PID/cmdline`, `ps -o args` and the thread
//! name.
//!
//! The title rewrites the process's own argv, so each case runs in a fresh copy of this test
//! binary (`PROC_TITLE_CHILD=1`, running only `child_role`) that sets the title, reports what it
//! captured, and waits for its stdin to close while the test reads its `/proc` files.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use gunicorn_core::process;

/// Runs in the child copy only: sets `$PROC_TITLE_FIRST` (if any) and then `$PROC_TITLE_WHAT` /
/// `$PROC_TITLE_NAME` as the title, prints the arguments it was started with as `process` and
/// `std::env` see them afterwards, and waits for stdin to close.
#[test]
fn child_role() {
    if std::env::var_os("PROC_TITLE_CHILD").is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if let Ok(first) = std::env::var("PROC_TITLE_FIRST") {
        process::set_title("master", &first);
    }
    process::set_title(&var("PROC_TITLE_WHAT"), &var("PROC_TITLE_NAME"));
    let join = |args: Vec<OsString>| {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("|")
    };
    println!("original={}", join(process::original_args()));
    println!("ready");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

/// What a child shows while it holds its title.
struct Seen {
    cmdline: Vec<u8>,
    /// The names of the child's threads.
    comm: Vec<String>,
    ps: Option<String>,
    original: String,
    started_with: Vec<OsString>,
}

fn run_child(what: &str, name: &str, first: Option<&str>) -> Seen {
    let exe = std::env::current_exe().unwrap();
    let args = ["child_role", "--exact", "--nocapture", "--test-threads=1"];
    let mut cmd = Command::new(&exe);
    cmd.args(args)
        .env("PROC_TITLE_CHILD", "1")
        .env("PROC_TITLE_WHAT", what)
        .env("PROC_TITLE_NAME", name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match first {
        Some(f) => cmd.env("PROC_TITLE_FIRST", f),
        None => cmd.env_remove("PROC_TITLE_FIRST"),
    };
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut original = String::new();
    // libtest prints its own lines first; wait for ours (bounded by the child itself: it either
    // prints "ready" or exits, closing stdout).
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the child exited before setting its title");
        }
        // libtest's "test child_role ... " may share the line.
        if let Some((_, o)) = line.trim_end().split_once("original=") {
            original = o.to_string();
        }
        if line.trim_end() == "ready" {
            break;
        }
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    // PR_SET_NAME names the calling thread, here libtest's thread for `child_role`.
    let comm = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim_end_matches('\n').to_string())
        .collect();
    // `ww`: never cut the line to a terminal width.
    let ps = Command::new("ps")
        .args(["ww", "-o", "args=", "-p", &pid.to_string()])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim_end_matches('\n')
                .to_string()
        });
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let mut started_with = vec![exe.into_os_string()];
    started_with.extend(args.iter().map(OsString::from));
    Seen {
        cmdline,
        comm,
        ps,
        original,
        started_with,
    }
}

/// The argv area holds each original argument and its NUL; a title is cut to leave one NUL.
fn shown(title: &str, started_with: &[OsString]) -> String {
    let area: usize = started_with.iter().map(|a| a.as_bytes().len() + 1).sum();
    title[..title.len().min(area - 1)].to_string()
}

fn check(what: &str, name: &str, first: Option<&str>) {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("no /proc: skipped");
        return;
    }
    let seen = run_child(what, name, first);
    let title = format!("gunicorn: {what} [{name}]");
    let want = shown(&title, &seen.started_with);
    // The kernel returns the title and one NUL: no padding, no leftovers of the command line
    // or of an earlier, longer title.
    assert_eq!(
        String::from_utf8_lossy(&seen.cmdline),
        format!("{want}\0"),
        "/proc/PID/cmdline"
    );
    if let Some(ps) = &seen.ps {
        assert_eq!(ps, &want, "ps -o args=");
    }
    assert!(
        seen.comm.iter().any(|c| c == &title[..15]),
        "the thread name stays: {:?}",
        seen.comm
    );
    // The arguments captured before the first title are intact.
    let started: Vec<String> = seen
        .started_with
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(seen.original, started.join("|"));
}

#[test]
fn master_title_is_the_whole_command_line() {
    check("master", "myapp:app", None);
}

#[test]
fn worker_title_replaces_a_longer_master_title() {
    // A forked worker inherits the master's title and writes a shorter one over it.
    check(
        "worker",
        "a:b",
        Some("a-much-longer-name-than-the-worker-has:application"),
    );
}

#[test]
fn a_title_longer_than_the_command_line_is_cut_to_fit() {
    let name = "x".repeat(400);
    check("worker", &name, None);
}
