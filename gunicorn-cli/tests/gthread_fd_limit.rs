//! The gthread worker's open-files limit: each connection holds two descriptors (its socket
//! and `gunicorn.socket`'s duplicate), so the worker raises its soft limit to the hard one and
//! warns when even that is short of `--worker-connections`. Its own test binary, because it
//! lowers the test process's limit, which the spawned servers inherit.

mod support;

use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use support::Gunicorn;

/// The soft and hard open-files limits of process `pid`.
fn open_files_limits(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

#[test]
fn the_worker_raises_its_soft_limit_and_warns_when_the_hard_one_is_short() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard < 3000 {
        support::skip("the hard open-files limit is too low to lower the soft one below it");
        return;
    }
    let cases = [
        // (soft, hard, warning expected)
        (512, hard, false),
        (600, 600, true),
    ];
    for (soft, hard, warns) in cases {
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
        let server = Gunicorn::new()
            .cwd(support::apps_dir())
            .args([
                "-k",
                "gthread",
                "--threads",
                "2",
                "--worker-connections",
                "1000",
            ])
            .arg("hello:app")
            .bind_free_port()
            .spawn();
        server.wait_booted(1);
        let worker = server.worker_pids()[0];
        // The limit is raised as the worker starts serving: wait for a served request.
        assert_eq!(server.get("/").status, 200);
        assert_eq!(
            open_files_limits(worker),
            (hard.to_string(), hard.to_string()),
            "soft {soft}"
        );
        let warned = server
            .wait_for(
                "The open files limit (600)",
                1,
                Duration::from_secs(if warns { 10 } else { 1 }),
            )
            .is_some();
        assert_eq!(
            warned,
            warns,
            "soft {soft} hard {hard}: {}",
            server.output()
        );
    }
}
