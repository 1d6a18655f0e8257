//! Process titles as other programs see them: `/proc/PID/cmdline`, `ps -o args` and the thread
//! name, and the environment that a long title moves out of its way.
//!
//! The title rewrites the process's own argv (and possibly the environment strings after it), so
//! each case runs in a fresh copy of this test binary (`PROC_TITLE_CHILD=1`, running only
//! `child_role`) that sets the title, reports what it captured, and waits for its stdin to close
//! while the test reads its `/proc` files. The copy gets exactly the environment the test computes
//! (`env_clear` then every variable), so the test knows the size of its environment area.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use gunicorn_core::process;

/// The longest title shown (the kernel reads one page for a setproctitle title).
const MAX_TITLE: usize = 4095;

/// The environment as `NAME=value` entries, sorted: what `std::env` and a spawned `env -0` show.
fn env_entries(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<Vec<u8>> {
    let mut entries: Vec<Vec<u8>> = vars
        .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat())
        .collect();
    entries.sort();
    entries
}

/// Runs in the child copy only: sets `$PROC_TITLE_FIRST` (if any) and then `$PROC_TITLE_WHAT` /
/// the name (`$PROC_TITLE_NAME`, or `$PROC_TITLE_NAME_LEN` times `x`) as the title, and prints
/// the arguments it was started with as `process` sees them afterwards, `$PROC_TITLE_CHECK` as
/// `std::env::var` reads it, and whether the whole environment, read in place and as passed on
/// to a spawned `env -0`, is the one it started with. Then waits for stdin to close.
#[test]
fn child_role() {
    if std::env::var_os("PROC_TITLE_CHILD").is_none() {
        return;
    }
    let before = env_entries(std::env::vars_os());
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if let Ok(first) = std::env::var("PROC_TITLE_FIRST") {
        process::set_title("master", &first);
    }
    let name = match std::env::var("PROC_TITLE_NAME_LEN") {
        Ok(n) => "x".repeat(n.parse().unwrap()),
        Err(_) => var("PROC_TITLE_NAME"),
    };
    process::set_title(&var("PROC_TITLE_WHAT"), &name);
    let join = |args: Vec<OsString>| {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("|")
    };
    println!("original={}", join(process::original_args()));
    println!("check={}", var("PROC_TITLE_CHECK"));
    println!("env_intact={}", env_entries(std::env::vars_os()) == before);
    // The spawned process gets its environment from `environ`, string by string.
    let spawned = match Command::new("env").arg("-0").stderr(Stdio::null()).output() {
        Ok(out) if out.status.success() => {
            let mut got: Vec<Vec<u8>> = out
                .stdout
                .split(|b| *b == 0)
                .filter(|e| !e.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            got.sort();
            if got == before {
                "same"
            } else {
                "differs"
            }
        }
        _ => "unavailable",
    };
    println!("spawned_env={spawned}");
    println!("ready");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

/// One case: the title(s) and the environment the child starts with.
struct Case<'a> {
    what: &'a str,
    /// The name, passed as `PROC_TITLE_NAME`.
    name: Option<&'a str>,
    /// Or `x` this many times, built by the child, so that the environment stays small.
    name_len: Option<usize>,
    /// A master title set first.
    first: Option<&'a str>,
    /// Start from this process's environment (else from nothing), plus the case's variables.
    inherit_env: bool,
    /// More variables for the child.
    extra: &'a [(&'a str, &'a str)],
}

impl Case<'_> {
    fn name(&self) -> String {
        match self.name_len {
            Some(n) => "x".repeat(n),
            None => self.name.unwrap_or_default().to_string(),
        }
    }
}

/// What a child shows while it holds its title.
struct Seen {
    cmdline: Vec<u8>,
    /// The names of the child's threads.
    comm: Vec<String>,
    ps: Option<String>,
    original: String,
    check: String,
    env_intact: String,
    spawned_env: String,
    started_with: Vec<OsString>,
    /// The size of the child's environment strings area: each `NAME=value` and its NUL.
    env_area: usize,
}

const CHECK_VALUE: &str = "still-readable: after the title / 42";

fn run_child(case: &Case<'_>) -> Seen {
    let exe = std::env::current_exe().unwrap();
    let args = ["child_role", "--exact", "--nocapture", "--test-threads=1"];
    let mut env: BTreeMap<OsString, OsString> = if case.inherit_env {
        std::env::vars_os().collect()
    } else {
        BTreeMap::new()
    };
    for k in ["PROC_TITLE_FIRST", "PROC_TITLE_NAME", "PROC_TITLE_NAME_LEN"] {
        env.remove(OsStr::new(k));
    }
    let mut set = |k: &str, v: &str| {
        env.insert(k.into(), v.into());
    };
    set("PROC_TITLE_CHILD", "1");
    set("PROC_TITLE_WHAT", case.what);
    set("PROC_TITLE_CHECK", CHECK_VALUE);
    if let Some(n) = case.name_len {
        set("PROC_TITLE_NAME_LEN", &n.to_string());
    } else {
        set("PROC_TITLE_NAME", case.name.unwrap_or_default());
    }
    if let Some(f) = case.first {
        set("PROC_TITLE_FIRST", f);
    }
    for (k, v) in case.extra {
        set(k, v);
    }
    let env_area = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut child = Command::new(&exe)
        .args(args)
        .env_clear()
        .envs(&env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut reported = BTreeMap::new();
    // libtest prints its own lines first; wait for ours (bounded by the child itself: it either
    // prints "ready" or exits, closing stdout).
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the child exited before setting its title");
        }
        let l = line.trim_end();
        if l == "ready" {
            break;
        }
        // libtest's "test child_role ... " may share the line.
        for key in ["original", "check", "env_intact", "spawned_env"] {
            if let Some((_, v)) = l.split_once(&format!("{key}=")) {
                reported.insert(key, v.to_string());
            }
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
    let mut take = |k: &str| reported.remove(k).unwrap_or_default();
    Seen {
        cmdline,
        comm,
        ps,
        original: take("original"),
        check: take("check"),
        env_intact: take("env_intact"),
        spawned_env: take("spawned_env"),
        started_with,
        env_area,
    }
}

/// The size of the argv area: each original argument and its NUL.
fn argv_area(started_with: &[OsString]) -> usize {
    started_with.iter().map(|a| a.as_bytes().len() + 1).sum()
}

/// The title as shown: whole when it and its NUL fit in the argv area; else across the
/// environment area too, cut to leave one NUL at its end, and to one page.
fn shown(title: &str, seen: &Seen) -> String {
    let argv = argv_area(&seen.started_with);
    let area = if title.len() < argv {
        argv
    } else {
        argv + seen.env_area
    };
    title[..title.len().min(area - 1).min(MAX_TITLE)].to_string()
}

fn check(case: &Case<'_>) -> Option<Seen> {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("no /proc: skipped");
        return None;
    }
    let seen = run_child(case);
    let title = format!("gunicorn: {} [{}]", case.what, case.name());
    let want = shown(&title, &seen);
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
    // So is the environment, whether or not the title needed its area.
    assert_eq!(seen.check, CHECK_VALUE, "std::env::var after the title");
    assert_eq!(seen.env_intact, "true", "std::env::vars_os after the title");
    assert!(
        ["same", "unavailable"].contains(&seen.spawned_env.as_str()),
        "a spawned child's environment: {}",
        seen.spawned_env
    );
    Some(seen)
}

fn case(what: &'static str, name: &'static str) -> Case<'static> {
    Case {
        what,
        name: Some(name),
        name_len: None,
        first: None,
        inherit_env: true,
        extra: &[],
    }
}

#[test]
fn master_title_is_the_whole_command_line() {
    check(&case("master", "myapp:app"));
}

#[test]
fn worker_title_replaces_a_longer_master_title() {
    // A forked worker inherits the master's title and writes a shorter one over it.
    check(&Case {
        first: Some("a-much-longer-name-than-the-worker-has:application"),
        ..case("worker", "a:b")
    });
}

#[test]
fn a_title_longer_than_the_command_line_is_shown_whole() {
    // `gunicorn --paste /long/path/development.ini` names its processes after the ini file.
    let name = format!("/tmp/pytest-of-root/{}/development.ini", "p".repeat(400));
    let name: &'static str = Box::leak(name.into_boxed_str());
    let Some(seen) = check(&case("master", name)) else {
        return;
    };
    let title = format!("gunicorn: master [{name}]");
    assert!(
        title.len() > argv_area(&seen.started_with),
        "the case is too easy"
    );
    assert_eq!(seen.cmdline, format!("{title}\0").into_bytes());
    if let Some(ps) = &seen.ps {
        assert_eq!(ps, &title, "ps -o args= shows all of it");
    }
}

#[test]
fn a_worker_title_after_a_long_master_title_is_exact() {
    // The worker inherits the moved environment and the master's title across both areas; its
    // shorter title leaves no tail of the master's behind.
    let long: &'static str = Box::leak("m".repeat(500).into_boxed_str());
    check(&Case {
        first: Some(long),
        ..case("worker", "a:b")
    });
}

#[test]
fn a_second_long_title_reuses_the_moved_environment() {
    let long: &'static str = Box::leak("m".repeat(700).into_boxed_str());
    check(&Case {
        first: Some(long),
        name_len: Some(300),
        ..case("worker", "")
    });
}

#[test]
fn a_title_longer_than_command_line_and_environment_is_cut_to_fit() {
    let Some(seen) = check(&Case {
        name_len: Some(3000),
        inherit_env: false,
        ..case("worker", "")
    }) else {
        return;
    };
    // The cut is at the end of the environment area, not of the argv area.
    let area = argv_area(&seen.started_with) + seen.env_area;
    assert!(area - 1 < MAX_TITLE);
    assert_eq!(seen.cmdline.len(), area);
}

#[test]
fn titles_stop_at_4095_bytes() {
    let pad: &'static str = Box::leak("p".repeat(8000).into_boxed_str());
    let extra: &'static [(&'static str, &'static str)] =
        Box::leak(vec![("PROC_TITLE_PAD", pad)].into_boxed_slice());
    let Some(seen) = check(&Case {
        name_len: Some(5000),
        extra,
        ..case("worker", "")
    }) else {
        return;
    };
    assert_eq!(seen.cmdline.len(), MAX_TITLE + 1);
}
