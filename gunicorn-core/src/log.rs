//! The error log, in gunicorn's format, for Rust code in the master and the workers.
//!
//! gunicorn's `gunicorn.error` logger formats every record as
//! `[%Y-%m-%d %H:%M:%S %z] [pid] [LEVEL] message` in local time, and writes it to stderr when
//! `errorlog` is `-`, otherwise to a file opened for appending. USR1 reopens that file (log
//! rotation). Each line is written with one `write(2)` so lines from the master and the workers,
//! which share the file, never interleave.
//!
//! Before [`init`] is called everything at INFO or above goes to stderr, so an embedding program
//! that never calls it still gets gunicorn's lines.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

pub use crate::log_record::{Level, LocalTime};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `loglevel` is not one of debug, info, warning, error, critical.
    #[error("invalid log level: {0}")]
    Level(String),
    /// The error log file cannot be opened for appending.
    #[error("Error: '{path}' isn't writable [{source}]")]
    Open {
        /// The path given as `errorlog`.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The access log cannot be set up (its format, or its file).
    #[error(transparent)]
    AccessLog(#[from] crate::access_log::AccessLogError),
    /// `--log-syslog` is on and syslog cannot be set up.
    #[error("{0}")]
    Syslog(#[from] crate::syslog::SyslogError),
    /// `--statsd-host` is set and the socket cannot be set up.
    #[error("{0}")]
    Statsd(#[from] crate::statsd::StatsdError),
    /// `--capture-output`: stdout/stderr cannot be redirected into the error log.
    #[error("cannot redirect stdout/stderr to the error log: {0}")]
    Capture(io::Error),
}

enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static SINK: Mutex<Sink> = Mutex::new(Sink::Stderr);

fn open_append(path: &PathBuf) -> io::Result<File> {
    // std opens files with O_CLOEXEC, so a re-exec'd master does not inherit the log fd.
    OpenOptions::new().create(true).append(true).open(path)
}

/// Sets the level and the destination: `-` is stderr, anything else a file opened for appending.
/// Called once by the CLI (and again on HUP when the configuration is reloaded).
pub fn init(loglevel: &str, errorlog: &str) -> Result<(), LogError> {
    let level = Level::parse(loglevel).ok_or_else(|| LogError::Level(loglevel.to_string()))?;
    let sink = if errorlog == "-" {
        Sink::Stderr
    } else {
        let path = PathBuf::from(errorlog);
        let file = open_append(&path).map_err(|source| LogError::Open {
            path: errorlog.to_string(),
            source,
        })?;
        Sink::File { path, file }
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
    *lock_sink() = sink;
    Ok(())
}

/// Sets up every log destination from the configuration, in the master before the workers are
/// forked (they inherit it): the error log ([`init`]), syslog, StatsD, the access log, and
/// `--capture-output`. Called by the CLI, and again by the arbiter when HUP reloads the settings.
pub fn setup(cfg: &crate::Config) -> Result<(), LogError> {
    init(&cfg.loglevel, &cfg.errorlog)?;
    crate::syslog::init(cfg)?;
    if let crate::statsd::Metrics::Disabled(e) = crate::statsd::init(cfg)? {
        crate::log_warning!("{e}; StatsD metrics are disabled");
    }
    crate::access_log::init(cfg)?;
    let capture = cfg.capture_output && cfg.errorlog != "-";
    CAPTURE.store(capture, Ordering::Relaxed);
    if capture {
        capture_output().map_err(LogError::Capture)?;
    }
    Ok(())
}

/// `--capture-output` is on (and the error log is a file).
static CAPTURE: AtomicBool = AtomicBool::new(false);

/// Points fds 1 and 2 at the error log file, as gunicorn's `capture_output` does with dup2:
/// `print()` and anything written to stderr by the app or by C code lands in the file.
fn capture_output() -> io::Result<()> {
    let sink = lock_sink();
    if let Sink::File { file, .. } = &*sink {
        let _ = io::stdout().lock().flush();
        nix::unistd::dup2_stdout(file)?;
        nix::unistd::dup2_stderr(file)?;
    }
    Ok(())
}

/// The current level threshold.
pub fn level() -> Level {
    Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Whether a record at `level` would be written.
pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// Reopens the log files (USR1, after logrotate moved them): the error log, the access log,
/// and with `--capture-output` stdout/stderr again. A no-op for stderr/stdout.
pub fn reopen() -> io::Result<()> {
    {
        let mut sink = lock_sink();
        if let Sink::File { path, file } = &mut *sink {
            *file = open_append(path)?;
        }
    }
    if CAPTURE.load(Ordering::Relaxed) {
        capture_output()?;
    }
    crate::access_log::reopen()?;
    let hook = *REOPEN_HOOK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hook) = hook {
        hook();
    }
    Ok(())
}

/// Also run on USR1 after our own files are reopened: the Python side reopens the
/// `FileHandler`s a logging configuration created, as gunicorn's reopen does.
pub type ReopenHook = fn();

static REOPEN_HOOK: Mutex<Option<ReopenHook>> = Mutex::new(None);

/// Sets the [`ReopenHook`].
pub fn set_reopen_hook(hook: ReopenHook) {
    *REOPEN_HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
}

/// Gives the log file to the workers' user, so they can still reopen it (USR1) after dropping
/// privileges, as gunicorn's `util.chown` of the error log. A no-op for stderr.
pub fn chown(uid: u32, gid: u32) -> io::Result<()> {
    let sink = lock_sink();
    if let Sink::File { path, .. } = &*sink {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    crate::access_log::chown(uid, gid)
}

fn lock_sink() -> std::sync::MutexGuard<'static, Sink> {
    // A thread that panicked while logging leaves a usable sink behind.
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Formats one line exactly as gunicorn's `generic` formatter would, newline included.
pub fn format_line(time: &LocalTime, pid: u32, level: Level, args: fmt::Arguments<'_>) -> String {
    format!("{time} [{pid}] [{}] {args}\n", level.name())
}

impl LocalTime {
    /// The current local time.
    pub fn now() -> LocalTime {
        crate::sys::local_time_now()
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.utc_offset < 0 { '-' } else { '+' };
        let off = self.utc_offset.unsigned_abs();
        write!(
            f,
            "[{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}{:02}{:02}]",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            off / 3600,
            (off % 3600) / 60
        )
    }
}

/// Writes one record if `level` passes the threshold. Errors writing the log are ignored, as
/// Python's logging does by default (`raiseExceptions` only prints them).
///
/// Also sends the record to syslog when `--log-syslog` is on, and counts it in StatsD
/// (`gunicorn.log.warning`, `.error`, `.critical`, as gunicorn's Statsd logger does per call).
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    let metric = match level {
        Level::Warning => Some("gunicorn.log.warning"),
        Level::Error => Some("gunicorn.log.error"),
        Level::Critical => Some("gunicorn.log.critical"),
        _ => None,
    };
    emit(level, args, metric);
}

/// Logs an error with a traceback (Python's `logger.exception`): an ERROR line, counted as
/// `gunicorn.log.exception` in StatsD.
pub fn log_exception(args: fmt::Arguments<'_>) {
    emit(Level::Error, args, Some("gunicorn.log.exception"));
}

/// Where records go instead of the sink when a logging configuration owns the destinations
/// (set by the Python side after applying `logconfig*`): Python's `gunicorn.error` logger.
pub type Forwarder = fn(Level, &str);

static FORWARDER: Mutex<Option<Forwarder>> = Mutex::new(None);

/// Routes every record above the level threshold to `forward` from now on (in this process and
/// in workers forked later).
pub fn set_forwarder(forward: Forwarder) {
    *FORWARDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(forward);
}

fn emit(level: Level, args: fmt::Arguments<'_>, metric: Option<&str>) {
    if let Some(metric) = metric {
        crate::statsd::increment(metric, 1);
    }
    if !enabled(level) {
        return;
    }
    let message = fmt::format(args);
    let forward = *FORWARDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(forward) = forward {
        forward(level, &message);
        return;
    }
    let line = format_line(
        &LocalTime::now(),
        std::process::id(),
        level,
        format_args!("{message}"),
    );
    {
        let mut sink = lock_sink();
        let _ = match &mut *sink {
            Sink::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            Sink::File { file, .. } => file.write_all(line.as_bytes()),
        };
    }
    crate::syslog::send(crate::syslog::Stream::Error, level, &message);
}

/// Writes `bytes` to the error log's destination as they are, without the record format: the
/// WSGI `wsgi.errors` stream, which gunicorn points at its error-log streams.
pub fn write_raw(bytes: &[u8]) {
    let mut sink = lock_sink();
    let _ = match &mut *sink {
        Sink::Stderr => io::stderr().lock().write_all(bytes),
        Sink::File { file, .. } => file.write_all(bytes),
    };
}

/// Logs at DEBUG with `format!` syntax.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($arg)*)) };
}

/// Logs an exception at ERROR with `format!` syntax (counted as `gunicorn.log.exception`).
#[macro_export]
macro_rules! log_exception {
    ($($arg:tt)*) => { $crate::log::log_exception(format_args!($($arg)*)) };
}

/// Logs at INFO with `format!` syntax.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($arg)*)) };
}

/// Logs at WARNING with `format!` syntax.
#[macro_export]
macro_rules! log_warning {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warning, format_args!($($arg)*)) };
}

/// Logs at ERROR with `format!` syntax.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($arg)*)) };
}

/// Logs at CRITICAL with `format!` syntax.
#[macro_export]
macro_rules! log_critical {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Critical, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_gunicorns_generic_format() {
        let t = LocalTime {
            year: 2024,
            month: 1,
            day: 9,
            hour: 13,
            minute: 24,
            second: 39,
            utc_offset: 0,
        };
        let cases: &[(Level, &str, &str)] = &[
            (
                Level::Critical,
                "WORKER TIMEOUT (pid:7214)",
                "[2024-01-09 13:24:39 +0000] [1637] [CRITICAL] WORKER TIMEOUT (pid:7214)\n",
            ),
            (
                Level::Info,
                "Booting worker with pid: 7",
                "[2024-01-09 13:24:39 +0000] [1637] [INFO] Booting worker with pid: 7\n",
            ),
            (
                Level::Warning,
                "w",
                "[2024-01-09 13:24:39 +0000] [1637] [WARNING] w\n",
            ),
            (
                Level::Debug,
                "d",
                "[2024-01-09 13:24:39 +0000] [1637] [DEBUG] d\n",
            ),
            (
                Level::Error,
                "e",
                "[2024-01-09 13:24:39 +0000] [1637] [ERROR] e\n",
            ),
        ];
        for (level, msg, want) in cases {
            assert_eq!(format_line(&t, 1637, *level, format_args!("{msg}")), *want);
        }
    }

    #[test]
    fn offsets_render_like_strftime_z() {
        let base = LocalTime {
            year: 2026,
            month: 11,
            day: 22,
            hour: 1,
            minute: 2,
            second: 3,
            utc_offset: 0,
        };
        let cases: &[(i64, &str)] = &[
            (0, "+0000"),
            (3600, "+0100"),
            (-5 * 3600, "-0500"),
            (5 * 3600 + 1800, "+0530"),
            (-(9 * 3600 + 1800), "-0930"),
            (12 * 3600 + 45 * 60, "+1245"),
        ];
        for (offset, want) in cases {
            let t = LocalTime {
                utc_offset: *offset,
                ..base
            };
            assert_eq!(t.to_string(), format!("[2026-11-22 01:02:03 {want}]"));
        }
    }

    #[test]
    fn levels_parse_and_filter() {
        let cases: &[(&str, Option<Level>)] = &[
            ("debug", Some(Level::Debug)),
            ("INFO", Some(Level::Info)),
            ("warning", Some(Level::Warning)),
            ("error", Some(Level::Error)),
            ("critical", Some(Level::Critical)),
            ("loud", None),
        ];
        for (text, want) in cases {
            assert_eq!(Level::parse(text), *want, "{text}");
        }
        assert!(Level::Debug < Level::Info && Level::Error < Level::Critical);
    }

    #[test]
    fn now_is_a_plausible_local_time() {
        let t = LocalTime::now();
        assert!(t.year >= 2024 && (1..=12).contains(&t.month) && (1..=31).contains(&t.day));
        assert!(t.utc_offset.abs() < 15 * 3600);
    }

    #[test]
    fn file_sink_appends_filters_and_reopens() {
        let dir = std::env::temp_dir().join(format!("gunicorn-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("error.log");
        std::fs::write(&path, "existing\n").unwrap();
        init("warning", path.to_str().unwrap()).unwrap();
        crate::log_info!("filtered out");
        crate::log_warning!("kept {}", 1);
        // logrotate: move the file away, reopen, and the next line goes to a new file.
        let rotated = dir.join("error.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        reopen().unwrap();
        crate::log_error!("after reopen");
        init("info", "-").unwrap();
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(old.starts_with("existing\n"));
        assert!(old.ends_with("] [WARNING] kept 1\n"), "{old}");
        assert!(!old.contains("filtered out"));
        assert_eq!(new.lines().count(), 1);
        assert!(new.contains("[ERROR] after reopen"), "{new}");
        assert!(init("loud", "-").is_err());
        assert!(init("info", "/nonexistent-dir/x/error.log").is_err());
    }
}
