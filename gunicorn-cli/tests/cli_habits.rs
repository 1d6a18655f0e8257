//! The command line's argparse habits (issue 18 items 1-3), checked against what gunicorn 27.0.1
//! prints for the same command lines: a repeated option keeps its last value, long options may
//! be abbreviated, usage errors are argparse's two lines and exit 2.

mod support;

use support::Gunicorn;

/// The value `--print-config` shows for `name`.
fn printed(stdout: &str, name: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let (key, value) = line.split_once(" = ")?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

const USAGE: &str = "usage: gunicorn [OPTIONS] [APP_MODULE]";

#[test]
fn repeats_keep_the_last_value_and_appends_accumulate() {
    let out = Gunicorn::new()
        .args([
            "-w",
            "2",
            "-w",
            "3",
            "--preload",
            "--preload",
            "--timeo",
            "7",
            "-b",
            "127.0.0.1:1",
            "-b",
            "127.0.0.1:2",
            "--print-config",
            "hello:app",
        ])
        .run();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(printed(&out.stdout, "workers").as_deref(), Some("3"));
    assert_eq!(printed(&out.stdout, "timeout").as_deref(), Some("7"));
    assert_eq!(printed(&out.stdout, "preload_app").as_deref(), Some("True"));
    let bind = printed(&out.stdout, "bind").unwrap();
    assert!(
        bind.contains("127.0.0.1:1") && bind.contains("127.0.0.1:2"),
        "{bind}"
    );
}

#[test]
fn gunicorn_cmd_args_repeats_and_abbreviations() {
    let out = Gunicorn::new()
        .env("GUNICORN_CMD_ARGS", "-w 2 --work=5 --workers 4 --grace 9")
        .args(["--print-config", "hello:app"])
        .run();
    // --work is ambiguous (--workers, --worker-class, ...), as in gunicorn.
    assert_eq!(out.code(), Some(2), "{out:?}");
    let out = Gunicorn::new()
        .env(
            "GUNICORN_CMD_ARGS",
            "-w 2 --workers 4 --grace 9 --preload --preload",
        )
        .args(["--print-config", "hello:app"])
        .run();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(printed(&out.stdout, "workers").as_deref(), Some("4"));
    assert_eq!(
        printed(&out.stdout, "graceful_timeout").as_deref(),
        Some("9")
    );
}

/// Usage errors: argparse's usage line, then `gunicorn: error: ...`, exit 2. The expected
/// lines are gunicorn 27.0.1's, except for the did-you-mean this server adds.
#[test]
fn usage_errors_are_argparses() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--re", "hello:app"],
            "ambiguous option: --re could match --reload, --reload-engine, --reload-extra-file, --reuse-port",
        ),
        (
            &["--work=3", "hello:app"],
            "ambiguous option: --work=3 could match --workers, --worker-class, --worker-connections, --worker-tmp-dir",
        ),
        (
            &["--wokers", "3", "hello:app"],
            "unrecognized arguments: --wokers (did you mean --workers?)",
        ),
        (
            &["--wokers=3", "hello:app"],
            "unrecognized arguments: --wokers=3 (did you mean --workers?)",
        ),
        (&["-x", "hello:app"], "unrecognized arguments: -x"),
        (&["-w", "abc", "hello:app"], "argument -w/--workers: invalid int value: 'abc'"),
        (&["--timeout=1.5", "hello:app"], "argument -t/--timeout: invalid int value: '1.5'"),
        (&["--umask", "abc", "hello:app"], "argument -m/--umask: invalid auto_int value: 'abc'"),
        (&["-w"], "argument -w/--workers: expected one argument"),
        (&["--preload=x", "hello:app"], "argument --preload: ignored explicit argument 'x'"),
    ];
    for (args, want) in cases {
        let out = Gunicorn::new().args(args.iter()).run();
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(
            out.stderr.trim_end(),
            format!("{USAGE}\ngunicorn: error: {want}"),
            "{args:?}"
        );
        assert!(!out.stderr.contains("tip:"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn ints_are_read_as_python_reads_them() {
    let out = Gunicorn::new()
        .args([
            "-w",
            " 4 ",
            "--backlog",
            "1_000",
            "-m",
            "022",
            "--print-config",
            "hello:app",
        ])
        .run();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(printed(&out.stdout, "workers").as_deref(), Some("4"));
    assert_eq!(printed(&out.stdout, "backlog").as_deref(), Some("1000"));
}
