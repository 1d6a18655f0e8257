//! The access log (`--access-logfile`, `--access-logformat`), written by the workers once per
//! request, and the per-request StatsD metrics.
//!
//! gunicorn logs an access line when `accesslog` is set (`-` is stdout) or when syslog takes
//! access lines; nothing otherwise. The format is compiled once by [`init`] (in the master,
//! before the workers are forked, so a bad format stops the start). A worker hands a finished
//! request to [`record`] as plain data; the line is formatted and written with one `write(2)`
//! without any Python involvement, so callers can (and the WSGI bridge does) run it without
//! the GIL.

pub mod template;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use template::{
    access_time, basic_auth_user, AccessRecord, AccessSource, Template, TemplateError,
    DEFAULT_FORMAT,
};

use crate::log_record::Level;

/// Why the access log cannot be set up. The error log's `LogError` wraps it, with the same
/// messages.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// `access_log_format` cannot be compiled.
    #[error("invalid access_log_format {format:?}: {reason}")]
    Format {
        /// The format as given.
        format: String,
        /// Why it was refused.
        reason: String,
    },
    /// The access log file cannot be opened for appending.
    #[error("Error: '{path}' isn't writable [{source}]")]
    Open {
        /// The path given as `accesslog`.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}
use crate::{statsd, syslog, Config};

enum Dest {
    Stdout,
    File { path: PathBuf, file: File },
}

struct State {
    template: Arc<Template>,
    /// `None` when access lines only go to syslog.
    dest: Option<Dest>,
}

/// True when an access line is written somewhere (file, stdout or syslog).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<Option<State>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    // O_CLOEXEC (std's default): a USR2-exec'd master does not inherit it.
    OpenOptions::new().create(true).append(true).open(path)
}

/// Compiles the format and opens the destination. Call after [`crate::syslog::init`], which
/// decides whether syslog takes access lines.
pub fn init(cfg: &Config) -> Result<(), AccessLogError> {
    let template = Template::parse(&cfg.access_log_format).map_err(|e| AccessLogError::Format {
        format: cfg.access_log_format.clone(),
        reason: e.to_string(),
    })?;
    let dest = match cfg.accesslog.as_deref() {
        None => None,
        Some("-") => Some(Dest::Stdout),
        Some(path) => {
            let p = PathBuf::from(path);
            let file = open_append(&p).map_err(|source| AccessLogError::Open {
                path: path.to_string(),
                source,
            })?;
            Some(Dest::File { path: p, file })
        }
    };
    // A forwarder (logconfig mode, set by the Python side) survives a HUP reload.
    let forwarding = FORWARDER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    let active = dest.is_some() || syslog::takes_access() || forwarding;
    *lock() = Some(State {
        template: Arc::new(template),
        dest,
    });
    ACTIVE.store(active, Ordering::Relaxed);
    Ok(())
}

/// Whether a finished request needs a [`record`] call at all (an access line or metrics).
/// Workers check this first so that, with neither configured, a request costs nothing here.
pub fn wanted() -> bool {
    ACTIVE.load(Ordering::Relaxed) || statsd::enabled()
}

/// Logs one finished request: the access line (file/stdout, syslog) and the StatsD metrics.
pub fn record(rec: &AccessRecord<'_>) {
    if ACTIVE.load(Ordering::Relaxed) {
        let template = lock().as_ref().map(|s| Arc::clone(&s.template));
        if let Some(template) = template {
            let line = template.render(rec);
            let forward = *FORWARDER.lock().unwrap_or_else(|e| e.into_inner());
            match forward {
                Some(forward) => forward(&line),
                None => write_line(&line),
            }
        }
    }
    statsd::access(rec.status, rec.duration);
}

/// Where access lines go instead when a logging configuration owns the destinations: Python's
/// `gunicorn.access` logger (gunicorn logs access whenever a `logconfig*` is set).
pub type Forwarder = fn(&str);

static FORWARDER: Mutex<Option<Forwarder>> = Mutex::new(None);

/// Routes every access line to `forward` from now on, and turns the access log on.
pub fn set_forwarder(forward: Forwarder) {
    *FORWARDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(forward);
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Whether access lines are written somewhere (file, stdout, syslog, or a forwarder).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Writes one already formatted access line (newline added) to the access log's destinations:
/// used by [`record`] and by Python's `gunicorn.access` logger.
pub fn write_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    {
        let mut state = lock();
        // Errors writing the log are dropped, as Python's logging does by default.
        let _ = match state.as_mut().and_then(|s| s.dest.as_mut()) {
            Some(Dest::Stdout) => io::stdout().lock().write_all(&bytes),
            Some(Dest::File { file, .. }) => file.write_all(&bytes),
            None => Ok(()),
        };
    }
    syslog::send(syslog::Stream::Access, Level::Info, line);
}

/// Whether an access-log file or stdout is configured (Python's `gunicorn.access` logger gets
/// a handler then).
pub fn has_destination() -> bool {
    lock().as_ref().is_some_and(|s| s.dest.is_some())
}

/// Reopens the access log file (USR1). A no-op for stdout or when there is none.
pub fn reopen() -> io::Result<()> {
    let mut state = lock();
    if let Some(Dest::File { path, file }) = state.as_mut().and_then(|s| s.dest.as_mut()) {
        *file = open_append(path)?;
    }
    Ok(())
}

/// Gives the access log file to the workers' user (gunicorn chowns both log files), so the
/// workers can reopen it on USR1 after dropping privileges.
pub fn chown(uid: u32, gid: u32) -> io::Result<()> {
    let state = lock();
    if let Some(Dest::File { path, .. }) = state.as_ref().and_then(|s| s.dest.as_ref()) {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Src;

    impl AccessSource for Src {
        fn environ(&self, name: &str) -> Option<&str> {
            name.eq_ignore_ascii_case("REQUEST_METHOD").then_some("GET")
        }
        fn request_header(&self, _: &str) -> Option<&str> {
            None
        }
        fn response_header(&self, _: &str) -> Option<&str> {
            None
        }
    }

    /// The only test touching this module's global state (tests run in parallel threads).
    #[test]
    fn file_destination_writes_lines_and_reopens() {
        let dir = std::env::temp_dir().join(format!("gunicorn-access-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let cfg = Config {
            accesslog: Some(path.to_str().unwrap().to_string()),
            access_log_format: "%(m)s %(s)s %(B)s".into(),
            ..Config::default()
        };
        init(&cfg).unwrap();
        assert!(active() && wanted() && has_destination());
        let rec = |status| AccessRecord {
            source: &Src,
            status,
            sent: Some(3),
            duration: std::time::Duration::from_millis(1),
            pid: 1,
            time: crate::log_record::LocalTime::now(),
        };
        record(&rec(200));
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        reopen().unwrap();
        record(&rec(404));
        let bad = Config {
            access_log_format: "%(m)z".into(),
            ..Config::default()
        };
        assert!(matches!(init(&bad), Err(AccessLogError::Format { .. })));
        init(&Config::default()).unwrap();
        assert!(!active());
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(old, "GET 200 3\n");
        assert_eq!(new, "GET 404 3\n");
    }
}
