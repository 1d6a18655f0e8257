//! The plain data of a log line: its level and its local time. A leaf module: the error log
//! (`log`), the access log, syslog and the system calls (`sys`, which reads the local time) all
//! use these types, and none of them needs another to name them.

/// A log level, ordered from the most to the least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `debug`.
    Debug = 10,
    /// `info`.
    Info = 20,
    /// `warning`.
    Warning = 30,
    /// `error`.
    Error = 40,
    /// `critical`.
    Critical = 50,
}

impl Level {
    /// The name printed in the `[LEVEL]` field (Python's `levelname`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// Parses a `loglevel` setting value, case-insensitively.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Level {
        match v {
            10 => Level::Debug,
            20 => Level::Info,
            30 => Level::Warning,
            40 => Level::Error,
            _ => Level::Critical,
        }
    }
}

/// A broken-down local time with its UTC offset, displayed as `[%Y-%m-%d %H:%M:%S %z]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second (60 on a leap second).
    pub second: u32,
    /// Offset from UTC in seconds, east positive.
    pub utc_offset: i64,
}
