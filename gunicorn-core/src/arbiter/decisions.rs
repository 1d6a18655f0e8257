//! The master's decisions that need no process: what a reaped worker's status means, and which
//! workers to retire. Kept pure so they are unit-tested without forking.

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

use super::exit_status::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};

/// What a reaped child's status means for the master (gunicorn's `reap_workers`), decided
/// without side effects so it can be tested without forking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    /// The line to log, and at which level; `None` for a clean exit.
    pub log: Option<(crate::log::Level, String)>,
    /// Set when the master must halt: the reason and the master's exit status.
    pub halt: Option<(&'static str, i32)>,
}

/// Classifies a worker's end: exit codes 3 and 4 halt the master with the same status, any other
/// non-zero code is logged as an error, and death by signal is logged at error level for
/// SIGKILL (with gunicorn's out-of-memory hint), info for SIGTERM and warning otherwise.
pub fn classify_exit(pid: i32, status: WaitStatus) -> ExitReport {
    use crate::log::Level;
    match status {
        WaitStatus::Exited(_, code) => ExitReport {
            log: (code != 0).then(|| {
                (
                    Level::Error,
                    format!("Worker (pid:{pid}) exited with code {code}."),
                )
            }),
            halt: match code {
                WORKER_BOOT_ERROR => Some(("Worker failed to boot.", WORKER_BOOT_ERROR)),
                APP_LOAD_ERROR => Some(("App failed to load.", APP_LOAD_ERROR)),
                _ => None,
            },
        },
        WaitStatus::Signaled(_, sig, _) => {
            let msg = format!("Worker (pid:{pid}) was sent {}!", sig.as_str());
            let log = match sig {
                Signal::SIGKILL => (Level::Error, format!("{msg} Perhaps out of memory?")),
                Signal::SIGTERM => (Level::Info, msg),
                _ => (Level::Warning, msg),
            };
            ExitReport {
                log: Some(log),
                halt: None,
            }
        }
        _ => ExitReport {
            log: None,
            halt: None,
        },
    }
}

/// Which workers to retire so that `wanted` remain: the oldest first (lowest age), as gunicorn.
/// `live` is `(pid, age)` of the workers not already retiring.
pub fn workers_to_retire(live: &[(i32, u64)], wanted: u64) -> Vec<i32> {
    let mut sorted = live.to_vec();
    sorted.sort_by_key(|(_, age)| *age);
    let excess = sorted.len().saturating_sub(wanted as usize);
    sorted
        .into_iter()
        .take(excess)
        .map(|(pid, _)| pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Level;
    use nix::unistd::Pid;

    #[test]
    fn exits_are_classified_like_gunicorn() {
        let p = Pid::from_raw(42);
        type Case = (
            WaitStatus,
            Option<(Level, &'static str)>,
            Option<(&'static str, i32)>,
        );
        let cases: Vec<Case> = vec![
            (WaitStatus::Exited(p, 0), None, None),
            (
                WaitStatus::Exited(p, 1),
                Some((Level::Error, "Worker (pid:42) exited with code 1.")),
                None,
            ),
            (
                WaitStatus::Exited(p, 3),
                Some((Level::Error, "Worker (pid:42) exited with code 3.")),
                Some(("Worker failed to boot.", 3)),
            ),
            (
                WaitStatus::Exited(p, 4),
                Some((Level::Error, "Worker (pid:42) exited with code 4.")),
                Some(("App failed to load.", 4)),
            ),
            (
                WaitStatus::Signaled(p, Signal::SIGKILL, false),
                Some((
                    Level::Error,
                    "Worker (pid:42) was sent SIGKILL! Perhaps out of memory?",
                )),
                None,
            ),
            (
                WaitStatus::Signaled(p, Signal::SIGTERM, false),
                Some((Level::Info, "Worker (pid:42) was sent SIGTERM!")),
                None,
            ),
            (
                WaitStatus::Signaled(p, Signal::SIGSEGV, true),
                Some((Level::Warning, "Worker (pid:42) was sent SIGSEGV!")),
                None,
            ),
        ];
        for (status, log, halt) in cases {
            let r = classify_exit(42, status);
            assert_eq!(
                r.log.as_ref().map(|(l, s)| (*l, s.as_str())),
                log,
                "{status:?}"
            );
            assert_eq!(r.halt, halt, "{status:?}");
        }
    }

    #[test]
    fn the_oldest_workers_are_retired_first() {
        let live = [(10, 3), (11, 1), (12, 2), (13, 4)];
        let cases: &[(u64, &[i32])] = &[
            (4, &[]),
            (5, &[]),
            (3, &[11]),
            (2, &[11, 12]),
            (1, &[11, 12, 10]),
        ];
        for (wanted, want) in cases {
            assert_eq!(workers_to_retire(&live, *wanted), *want, "{wanted}");
        }
    }
}
