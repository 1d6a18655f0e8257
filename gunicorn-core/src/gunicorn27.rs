//! gunicorn 27.0.1's settings, all 120 of them, and what this server does with each.
//!
//! The list is gunicorn's `gunicorn.config.KNOWN_SETTINGS` (name, section, command-line flags,
//! default), in gunicorn's order. [`Here`] says what becomes of each one here: a setting of the
//! [`SETTINGS`](crate::config::SETTINGS) table, a server hook the Python worker runs, or one this
//! server does not honour (refused, or not implemented yet with the issue that tracks it).
//!
//! It is pure data, shared by `docs/settings.md` (rendered by the `gunicorn` command) and the
//! config-file loader, which refuses a name this server does not honour unless its value asks for
//! nothing ([`Here::asks_nothing`]): nothing of gunicorn's is ignored silently. Tests check that
//! it agrees with `SETTINGS` and with the Python worker's list of hooks.

use crate::config::Value;

/// One of gunicorn 27's settings.
#[derive(Debug, Clone, Copy)]
pub struct Gunicorn27Setting {
    /// gunicorn's name (`gunicorn.conf.py`).
    pub name: &'static str,
    /// gunicorn's section of its settings reference.
    pub section: &'static str,
    /// gunicorn's command-line flags (empty: config file only).
    pub flags: &'static [&'static str],
    /// gunicorn's default, as its documentation shows it.
    pub default: &'static str,
    /// What this server does with it.
    pub here: Here,
}

/// What this server does with a gunicorn setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Here {
    /// A setting of [`SETTINGS`](crate::config::SETTINGS): it works here.
    Yes,
    /// A server hook the Python worker calls where gunicorn calls it.
    Hook,
    /// Not honoured by this server by design.
    Refused {
        /// Why, in one line.
        reason: &'static str,
        /// The values that ask nothing of the server, accepted in a config file.
        quiet: &'static [Plain],
    },
    /// Not implemented yet.
    NotYet {
        /// The issue that tracks it.
        issue: u32,
        /// The feature it belongs to.
        what: &'static str,
        /// The values that ask nothing of the server (gunicorn's default, `None`), accepted in
        /// a config file.
        quiet: &'static [Plain],
    },
}

/// A plain value a config file may bind a setting to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer (also given as a string of digits).
    Int(i64),
    /// A string (compared ignoring ASCII case and surrounding spaces).
    Str(&'static str),
    /// `[]` or `()`.
    EmptyList,
}

impl Plain {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Plain::None, Value::None) => true,
            (Plain::Bool(a), Value::Bool(b)) => a == b,
            (Plain::Int(a), Value::Int(b)) => a == b,
            (Plain::Int(a), Value::Str(s)) => s.trim().parse::<i64>().ok() == Some(*a),
            (Plain::Str(a), Value::Str(b)) => a.eq_ignore_ascii_case(b.trim()),
            (Plain::EmptyList, Value::List(items)) => items.is_empty(),
            _ => false,
        }
    }
}

impl Here {
    /// True when this server honours the setting (a setting or a hook of its own).
    pub fn is_supported(&self) -> bool {
        matches!(self, Here::Yes | Here::Hook)
    }

    /// True when `value` asks nothing of the server: gunicorn's default or `None`, for a setting
    /// this server does not honour (a supported one always asks for something).
    pub fn asks_nothing(&self, value: &Value) -> bool {
        match self {
            Here::Yes | Here::Hook => false,
            Here::Refused { quiet, .. } | Here::NotYet { quiet, .. } => {
                quiet.iter().any(|q| q.matches(value))
            }
        }
    }

    /// The one-line status shown in `docs/settings.md`.
    pub fn describe(&self) -> String {
        match self {
            Here::Yes => "yes".into(),
            Here::Hook => "yes (server hook)".into(),
            Here::Refused { reason, .. } => format!("refused: {reason}"),
            Here::NotYet { issue, what, .. } => format!("not yet: {what}, issue {issue}"),
        }
    }
}

/// The gunicorn 27 setting `name`, if it is one.
pub fn lookup(name: &str) -> Option<&'static Gunicorn27Setting> {
    GUNICORN27_SETTINGS.iter().find(|s| s.name == name)
}

/// gunicorn 27.0.1's settings in its order (`gunicorn.config.KNOWN_SETTINGS`).
pub static GUNICORN27_SETTINGS: &[Gunicorn27Setting] = &[
    Gunicorn27Setting {
        name: "config",
        section: "Config File",
        flags: &["-c", "--config"],
        default: "'./gunicorn.conf.py'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "wsgi_app",
        section: "Config File",
        flags: &[],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "bind",
        section: "Server Socket",
        flags: &["-b", "--bind"],
        default: "['127.0.0.1:8000']",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "backlog",
        section: "Server Socket",
        flags: &["--backlog"],
        default: "2048",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "workers",
        section: "Worker Processes",
        flags: &["-w", "--workers"],
        default: "1",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "worker_class",
        section: "Worker Processes",
        flags: &["-k", "--worker-class"],
        default: "'sync'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "threads",
        section: "Worker Processes",
        flags: &["--threads"],
        default: "1",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "worker_connections",
        section: "Worker Processes",
        flags: &["--worker-connections"],
        default: "1000",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "max_requests",
        section: "Worker Processes",
        flags: &["--max-requests"],
        default: "0",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "max_requests_jitter",
        section: "Worker Processes",
        flags: &["--max-requests-jitter"],
        default: "0",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "timeout",
        section: "Worker Processes",
        flags: &["-t", "--timeout"],
        default: "30",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "graceful_timeout",
        section: "Worker Processes",
        flags: &["--graceful-timeout"],
        default: "30",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "keepalive",
        section: "Worker Processes",
        flags: &["--keep-alive"],
        default: "2",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "limit_request_line",
        section: "Security",
        flags: &["--limit-request-line"],
        default: "4094",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "limit_request_fields",
        section: "Security",
        flags: &["--limit-request-fields"],
        default: "100",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "limit_request_field_size",
        section: "Security",
        flags: &["--limit-request-field_size"],
        default: "8190",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "reload",
        section: "Debugging",
        flags: &["--reload"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "reload_engine",
        section: "Debugging",
        flags: &["--reload-engine"],
        default: "'auto'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "reload_extra_files",
        section: "Debugging",
        flags: &["--reload-extra-file"],
        default: "[]",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "spew",
        section: "Debugging",
        flags: &["--spew"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "check_config",
        section: "Debugging",
        flags: &["--check-config"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "print_config",
        section: "Debugging",
        flags: &["--print-config"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "preload_app",
        section: "Server Mechanics",
        flags: &["--preload"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "sendfile",
        section: "Server Mechanics",
        flags: &["--no-sendfile"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "reuse_port",
        section: "Server Mechanics",
        flags: &["--reuse-port"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "chdir",
        section: "Server Mechanics",
        flags: &["--chdir"],
        default: "'.'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "daemon",
        section: "Server Mechanics",
        flags: &["-D", "--daemon"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "raw_env",
        section: "Server Mechanics",
        flags: &["-e", "--env"],
        default: "[]",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "pidfile",
        section: "Server Mechanics",
        flags: &["-p", "--pid"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "worker_tmp_dir",
        section: "Server Mechanics",
        flags: &["--worker-tmp-dir"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "user",
        section: "Server Mechanics",
        flags: &["-u", "--user"],
        default: "os.geteuid()",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "group",
        section: "Server Mechanics",
        flags: &["-g", "--group"],
        default: "os.getegid()",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "umask",
        section: "Server Mechanics",
        flags: &["-m", "--umask"],
        default: "0",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "initgroups",
        section: "Server Mechanics",
        flags: &["--initgroups"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "tmp_upload_dir",
        section: "Server Mechanics",
        flags: &[],
        default: "None",
        here: Here::Refused { reason: "gunicorn 27 itself never reads it; request bodies are not spooled to disk here", quiet: &[Plain::None] },
    },
    Gunicorn27Setting {
        name: "secure_scheme_headers",
        section: "Server Mechanics",
        flags: &[],
        default: "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "forwarded_allow_ips",
        section: "Server Mechanics",
        flags: &["--forwarded-allow-ips"],
        default: "'127.0.0.1,::1'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "accesslog",
        section: "Logging",
        flags: &["--access-logfile"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "disable_redirect_access_to_syslog",
        section: "Logging",
        flags: &["--disable-redirect-access-to-syslog"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "access_log_format",
        section: "Logging",
        flags: &["--access-logformat"],
        default: "'%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "errorlog",
        section: "Logging",
        flags: &["--error-logfile", "--log-file"],
        default: "'-'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "loglevel",
        section: "Logging",
        flags: &["--log-level"],
        default: "'info'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "capture_output",
        section: "Logging",
        flags: &["--capture-output"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "logger_class",
        section: "Logging",
        flags: &["--logger-class"],
        default: "'gunicorn.glogging.Logger'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "logconfig",
        section: "Logging",
        flags: &["--log-config"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "logconfig_dict",
        section: "Logging",
        flags: &[],
        default: "{}",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "logconfig_json",
        section: "Logging",
        flags: &["--log-config-json"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "syslog_addr",
        section: "Logging",
        flags: &["--log-syslog-to"],
        default: "'udp://localhost:514' (platform-specific)",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "syslog",
        section: "Logging",
        flags: &["--log-syslog"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "syslog_prefix",
        section: "Logging",
        flags: &["--log-syslog-prefix"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "syslog_facility",
        section: "Logging",
        flags: &["--log-syslog-facility"],
        default: "'user'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "enable_stdio_inheritance",
        section: "Logging",
        flags: &["-R", "--enable-stdio-inheritance"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "statsd_host",
        section: "Logging",
        flags: &["--statsd-host"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "dogstatsd_tags",
        section: "Logging",
        flags: &["--dogstatsd-tags"],
        default: "''",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "statsd_prefix",
        section: "Logging",
        flags: &["--statsd-prefix"],
        default: "''",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "enable_backlog_metric",
        section: "Logging",
        flags: &["--enable-backlog-metric"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "proc_name",
        section: "Process Naming",
        flags: &["-n", "--name"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "default_proc_name",
        section: "Process Naming",
        flags: &[],
        default: "'gunicorn'",
        here: Here::Refused { reason: "gunicorn sets it from the application; here the process title uses `proc_name`, else the application, else `gunicorn`", quiet: &[Plain::None, Plain::Str("gunicorn")] },
    },
    Gunicorn27Setting {
        name: "pythonpath",
        section: "Server Mechanics",
        flags: &["--pythonpath"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "paste",
        section: "Server Mechanics",
        flags: &["--paste", "--paster"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "on_starting",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "on_reload",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "when_ready",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "pre_fork",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "post_fork",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "post_worker_init",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "worker_int",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "worker_abort",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "pre_exec",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "pre_request",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "post_request",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "child_exit",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "worker_exit",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "nworkers_changed",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "on_exit",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "ssl_context",
        section: "Server Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Refused { reason: "a Python `ssl.SSLContext` cannot be used by this server's TLS (rustls): set the SSL settings instead", quiet: &[Plain::None] },
    },
    Gunicorn27Setting {
        name: "proxy_protocol",
        section: "Server Mechanics",
        flags: &["--proxy-protocol"],
        default: "'off'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "proxy_allow_ips",
        section: "Server Mechanics",
        flags: &["--proxy-allow-from"],
        default: "'127.0.0.1,::1'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "protocol",
        section: "Server Mechanics",
        flags: &["--protocol"],
        default: "'http'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "uwsgi_allow_ips",
        section: "Server Mechanics",
        flags: &["--uwsgi-allow-from"],
        default: "'127.0.0.1,::1'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "keyfile",
        section: "SSL",
        flags: &["--keyfile"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "certfile",
        section: "SSL",
        flags: &["--certfile"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "ssl_version",
        section: "SSL",
        flags: &["--ssl-version"],
        default: "ssl.PROTOCOL_TLS",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "cert_reqs",
        section: "SSL",
        flags: &["--cert-reqs"],
        default: "ssl.CERT_NONE",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "ca_certs",
        section: "SSL",
        flags: &["--ca-certs"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "suppress_ragged_eofs",
        section: "SSL",
        flags: &["--suppress-ragged-eofs"],
        default: "True",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "do_handshake_on_connect",
        section: "SSL",
        flags: &["--do-handshake-on-connect"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "ciphers",
        section: "SSL",
        flags: &["--ciphers"],
        default: "None",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http_protocols",
        section: "HTTP/2",
        flags: &["--http-protocols"],
        default: "'h1'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http2_cleartext",
        section: "HTTP/2",
        flags: &["--http2-cleartext"],
        default: "'off'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http2_max_concurrent_streams",
        section: "HTTP/2",
        flags: &["--http2-max-concurrent-streams"],
        default: "100",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http2_initial_window_size",
        section: "HTTP/2",
        flags: &["--http2-initial-window-size"],
        default: "65535",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http2_max_frame_size",
        section: "HTTP/2",
        flags: &["--http2-max-frame-size"],
        default: "16384",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http2_max_header_list_size",
        section: "HTTP/2",
        flags: &["--http2-max-header-list-size"],
        default: "65536",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "raw_paste_global_conf",
        section: "Server Mechanics",
        flags: &["--paste-global"],
        default: "[]",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "permit_obsolete_folding",
        section: "Server Mechanics",
        flags: &["--permit-obsolete-folding"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "strip_header_spaces",
        section: "Server Mechanics",
        flags: &["--strip-header-spaces"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "permit_unconventional_http_method",
        section: "Server Mechanics",
        flags: &["--permit-unconventional-http-method"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "permit_unconventional_http_version",
        section: "Server Mechanics",
        flags: &["--permit-unconventional-http-version"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "casefold_http_method",
        section: "Server Mechanics",
        flags: &["--casefold-http-method"],
        default: "False",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "forwarder_headers",
        section: "Server Mechanics",
        flags: &["--forwarder-headers"],
        default: "'SCRIPT_NAME,PATH_INFO'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "header_map",
        section: "Server Mechanics",
        flags: &["--header-map"],
        default: "'drop'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "asgi_loop",
        section: "Worker Processes",
        flags: &["--asgi-loop"],
        default: "'auto'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "asgi_lifespan",
        section: "Worker Processes",
        flags: &["--asgi-lifespan"],
        default: "'auto'",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "asgi_disconnect_grace_period",
        section: "Worker Processes",
        flags: &["--asgi-disconnect-grace-period"],
        default: "3",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "websocket_max_message_size",
        section: "Worker Processes",
        flags: &["--websocket-max-message-size"],
        default: "16777216",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "http_parser",
        section: "Worker Processes",
        flags: &["--http-parser"],
        default: "'auto'",
        here: Here::Refused { reason: "the HTTP parser is always this server's own (Rust); only `auto` is accepted", quiet: &[Plain::None, Plain::Str("auto")] },
    },
    Gunicorn27Setting {
        name: "root_path",
        section: "Server Mechanics",
        flags: &["--root-path"],
        default: "''",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "dirty_apps",
        section: "Dirty Arbiters",
        flags: &["--dirty-app"],
        default: "[]",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "dirty_workers",
        section: "Dirty Arbiters",
        flags: &["--dirty-workers"],
        default: "0",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "dirty_timeout",
        section: "Dirty Arbiters",
        flags: &["--dirty-timeout"],
        default: "300",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "dirty_threads",
        section: "Dirty Arbiters",
        flags: &["--dirty-threads"],
        default: "1",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "dirty_graceful_timeout",
        section: "Dirty Arbiters",
        flags: &["--dirty-graceful-timeout"],
        default: "30",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "on_dirty_starting",
        section: "Dirty Arbiter Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "dirty_post_fork",
        section: "Dirty Arbiter Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "dirty_worker_init",
        section: "Dirty Arbiter Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "dirty_worker_exit",
        section: "Dirty Arbiter Hooks",
        flags: &[],
        default: "no-op function",
        here: Here::Hook,
    },
    Gunicorn27Setting {
        name: "control_socket",
        section: "Control",
        flags: &["--control-socket"],
        default: "$XDG_RUNTIME_DIR/gunicorn.ctl or $HOME/.gunicorn/gunicorn.ctl",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "control_socket_mode",
        section: "Control",
        flags: &["--control-socket-mode"],
        default: "384",
        here: Here::Yes,
    },
    Gunicorn27Setting {
        name: "control_socket_disable",
        section: "Control",
        flags: &["--no-control-socket"],
        default: "False",
        here: Here::Yes,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SETTINGS;

    #[test]
    fn all_120_once_each() {
        assert_eq!(GUNICORN27_SETTINGS.len(), 120);
        let mut names: Vec<&str> = GUNICORN27_SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 120);
    }

    #[test]
    fn agrees_with_the_settings_table() {
        for s in SETTINGS {
            let g =
                lookup(s.name).unwrap_or_else(|| panic!("{} is not a gunicorn 27 setting", s.name));
            assert_eq!(
                g.here,
                Here::Yes,
                "{} is a setting here: mark it Here::Yes",
                s.name
            );
            for flag in g.flags {
                assert!(
                    s.flags.contains(flag),
                    "{}: gunicorn's flag {flag} is missing here",
                    s.name
                );
            }
        }
        for g in GUNICORN27_SETTINGS.iter().filter(|g| g.here == Here::Yes) {
            assert!(
                SETTINGS.iter().any(|s| s.name == g.name),
                "{} is marked Here::Yes but is not in SETTINGS",
                g.name
            );
        }
    }

    #[test]
    fn quiet_values() {
        let parser = lookup("http_parser").unwrap().here;
        assert!(parser.asks_nothing(&Value::Str("AUTO".into())));
        assert!(!parser.asks_nothing(&Value::Str("python".into())));
        assert!(!lookup("workers").unwrap().here.asks_nothing(&Value::Int(1)));
    }
}
