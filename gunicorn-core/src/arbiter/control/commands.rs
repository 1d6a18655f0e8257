//! The arbiter's side of the control socket: starting and stopping the server, serving it from
//! the main loop's wait, and answering each command through the master's existing paths (the
//! wanted worker count as TTIN/TTOU change it, and signals to itself for reload, reopen and
//! shutdown, as gunicorn's `ctl/handlers.py` does).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpid, Pid};
use serde_json::{json, Map, Value as Json};

use super::protocol::{self, Command, CommandError, ShowTarget, ShutdownMode, HELP};
use super::server::ControlServer;
use crate::arbiter::sidecar::SidecarState;
use crate::arbiter::{Arbiter, SlotState};
use crate::config::Config;
use crate::listener::{Listener, LocalAddr};
use crate::{log_debug, log_error, log_info};

/// The most workers `worker add` may ask for in total: a typo of a few digits must not make the
/// master fork until the machine gives out.
pub const MAX_WORKERS: u64 = 10_000;

/// How long the master waits for the dirty arbiter's answer to `show dirty`, `show all`,
/// `dirty add` and `dirty remove`: short, since the master's loop waits meanwhile.
pub const DIRTY_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The settings `show config` answers with (gunicorn's list, in its order).
const CONFIG_KEYS: &[&str] = &[
    "bind",
    "workers",
    "worker_class",
    "threads",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_connections",
    "preload_app",
    "daemon",
    "pidfile",
    "proc_name",
    "reload",
    "dirty_workers",
    "dirty_apps",
    "dirty_timeout",
    "control_socket",
    "control_socket_disable",
];

/// The control socket's path: `control_socket`, relative to the current directory.
pub fn socket_path(cfg: &Config) -> PathBuf {
    let path = PathBuf::from(&cfg.control_socket);
    if path.is_absolute() {
        return path;
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(&path))
        .unwrap_or(path)
}

/// Python's `round(seconds, 2)`.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

/// A value as gunicorn's `show config` sends it, from Python's `str()` of the setting
/// ([`crate::config::Setting::show_py`]): `True`/`False`/`None`, numbers, lists of strings.
fn py_literal(text: &str) -> Json {
    match text {
        "True" => return Json::Bool(true),
        "False" => return Json::Bool(false),
        "None" => return Json::Null,
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if let Some(items) = py_str_list(inner) {
            return json!(items);
        }
    }
    if let Ok(f) = text.parse::<f64>() {
        return json!(f);
    }
    Json::String(text.to_string())
}

/// The items of the inside of a Python list of strings (`'a', "b"`), `None` if it is not one.
fn py_str_list(inner: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let quote = rest.chars().next().filter(|q| *q == '\'' || *q == '"')?;
        let mut item = String::new();
        let mut chars = rest[1..].char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => item.push(chars.next()?.1),
                (i, c) if c == quote => break i + 2,
                (_, c) => item.push(c),
            }
        };
        items.push(item);
        rest = rest[end..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return None,
        };
    }
    Some(items)
}

impl Arbiter {
    /// Starts the control socket unless `--no-control-socket` (gunicorn starts it once the
    /// first workers are up). A failure is logged and the server runs on without it.
    pub(in crate::arbiter) fn start_control(&mut self) {
        if self.cfg.control_socket_disable {
            log_debug!("Control socket disabled");
            return;
        }
        let path = socket_path(&self.cfg);
        match ControlServer::bind(&path, self.cfg.control_socket_mode.0) {
            Ok(server) => {
                log_info!("Control socket listening at {}", path.display());
                self.control.server = Some(server);
            }
            Err(e) => log_error!("Control server error: {e}"),
        }
    }

    /// Closes the control socket (at the start of a stop, as gunicorn's `halt` does first).
    pub(in crate::arbiter) fn close_control(&mut self) {
        if let Some(server) = self.control.server.take() {
            server.close();
        }
    }

    /// The main loop's wait: up to `timeout` for signals, serving the control socket meanwhile
    /// and answering its requests. Returns the signals queued.
    pub(in crate::arbiter) fn wait_for_events(&mut self, timeout: Duration) -> Vec<Signal> {
        let Some(queue) = &self.signals else {
            return Vec::new();
        };
        let Some(server) = self.control.server.as_mut() else {
            return queue.wait(timeout);
        };
        let requests = server.serve(std::os::fd::AsFd::as_fd(queue), timeout);
        for (client, request) in requests {
            let id = request.get("id").cloned().unwrap_or(json!(0));
            let answer = match protocol::parse_request(&request).and_then(|c| self.execute(c)) {
                Ok(data) => protocol::ok_response(&id, data),
                Err(e) => protocol::error_response(&id, &e.to_string()),
            };
            if let Some(server) = self.control.server.as_mut() {
                server.respond(client, &answer);
            }
        }
        self.signals.as_ref().map(|q| q.drain()).unwrap_or_default()
    }

    /// Runs one command and returns the answer's `data`.
    fn execute(&mut self, command: Command) -> Result<Json, CommandError> {
        Ok(match command {
            Command::Show(ShowTarget::Workers) => {
                let workers = self.worker_rows(false);
                let count = workers.len();
                json!({"workers": workers, "count": count})
            }
            Command::Show(ShowTarget::All) => self.show_all(),
            Command::Show(ShowTarget::Dirty) => self.show_dirty(),
            Command::Show(ShowTarget::Config) => self.show_config(),
            Command::Show(ShowTarget::Stats) => self.show_stats(),
            Command::Show(ShowTarget::Listeners) => self.show_listeners(),
            Command::WorkerAdd(n) => {
                let previous = self.num_workers;
                let total = previous.saturating_add(n);
                if total > MAX_WORKERS {
                    return Err(CommandError::Invalid(format!(
                        "worker add {n} would make {total} workers (at most {MAX_WORKERS})"
                    )));
                }
                self.set_num_workers(total);
                json!({"added": n, "previous": previous, "total": total})
            }
            Command::WorkerRemove(n) => {
                let previous = self.num_workers;
                let total = previous.saturating_sub(n).max(1);
                self.set_num_workers(total);
                json!({"removed": previous - total, "previous": previous, "total": total})
            }
            Command::WorkerKill(pid) => {
                let known = i32::try_from(pid)
                    .ok()
                    .filter(|p| self.workers.contains_key(p));
                match known {
                    None => json!({"success": false, "error": format!("Worker {pid} not found")}),
                    Some(p) => match kill(Pid::from_raw(p), Signal::SIGTERM) {
                        Ok(()) => {
                            self.control.stats.workers_killed += 1;
                            json!({"success": true, "killed": pid})
                        }
                        Err(e) => json!({"success": false, "error": e.desc()}),
                    },
                }
            }
            Command::DirtyAdd(n) => self.manage_dirty("add", n),
            Command::DirtyRemove(n) => self.manage_dirty("remove", n),
            Command::Reload => {
                self.signal_self(Signal::SIGHUP)?;
                json!({"status": "reloading"})
            }
            Command::Reopen => {
                self.signal_self(Signal::SIGUSR1)?;
                json!({"status": "reopening"})
            }
            Command::Shutdown(mode) => {
                let sig = match mode {
                    ShutdownMode::Graceful => Signal::SIGTERM,
                    ShutdownMode::Quick => Signal::SIGINT,
                };
                self.signal_self(sig)?;
                json!({"status": "shutting_down", "mode": mode.name()})
            }
            Command::Help => {
                let commands: Map<String, Json> = HELP
                    .iter()
                    .map(|(c, d)| (c.to_string(), json!(d)))
                    .collect();
                json!({ "commands": commands })
            }
        })
    }

    /// The pid of the running dirty arbiter (gunicorn's `dirty_arbiter_pid`), if any.
    fn dirty_arbiter_pid(&self) -> Option<i32> {
        self.sidecars
            .iter()
            .filter(|s| s.sidecar.name() == "Dirty arbiter")
            .find_map(|s| match s.state {
                SidecarState::Up(pid) => Some(pid),
                SidecarState::Down => None,
            })
    }

    /// `show dirty`: the dirty arbiter knows its workers and apps (gunicorn's shape, without the
    /// extra keys it may add).
    fn show_dirty(&self) -> Json {
        let Some(pid) = self.dirty_arbiter_pid() else {
            return json!({"enabled": false, "pid": null, "workers": [], "apps": []});
        };
        let status = self.ask_dirty(&json!({"type": "status", "id": "ctl-status"}));
        let part = |key: &str| {
            status
                .as_ref()
                .and_then(|s| s.get(key).cloned())
                .unwrap_or_else(|| json!([]))
        };
        json!({"enabled": true, "pid": pid, "workers": part("workers"), "apps": part("apps")})
    }

    /// `dirty add N` / `dirty remove N` (`op`), carried out by the dirty arbiter.
    fn manage_dirty(&self, op: &str, n: u64) -> Json {
        let Some(pid) = self.dirty_arbiter_pid() else {
            return json!({"success": false, "error": "Dirty arbiter not running"});
        };
        let request = json!({"type": "manage", "id": "ctl-manage", "op": op, "count": n});
        self.ask_dirty(&request).unwrap_or_else(|| {
            json!({"success": false, "error": format!(
                "the dirty arbiter (pid {pid}) did not answer within {} s",
                DIRTY_QUERY_TIMEOUT.as_secs()
            )})
        })
    }

    /// Asks the running dirty arbiter `request` on its socket (gunicorn's `status` and `manage`
    /// messages) and returns its `result`; `None` without an answer within
    /// [`DIRTY_QUERY_TIMEOUT`]. The master's loop waits meanwhile, as gunicorn's control thread
    /// does (2 s for status there, 10 s for manage).
    fn ask_dirty(&self, request: &Json) -> Option<Json> {
        self.sidecars
            .iter()
            .find(|s| s.sidecar.name() == "Dirty arbiter" && s.state != SidecarState::Down)
            .and_then(|s| s.sidecar.query(request, DIRTY_QUERY_TIMEOUT))
    }

    /// The master acts on its own signal as if sent from outside (its handler queues it and
    /// the loop logs `Handling signal: ...`).
    fn signal_self(&self, sig: Signal) -> Result<(), CommandError> {
        kill(getpid(), sig).map_err(|e| CommandError::Failed(e.to_string()))
    }

    /// The workers, oldest first. `booted`: the worker has proved itself alive since its fork
    /// (gunicorn's master always says false: the flag is only set in the worker's copy).
    fn worker_rows(&self, typed: bool) -> Vec<Json> {
        let now = Instant::now();
        let mut rows: Vec<(u64, Json)> = self
            .workers
            .iter()
            .map(|(pid, w)| {
                let silent = w.heartbeat.silent_for();
                let alive_for = now.saturating_duration_since(w.spawned);
                let booted = silent + Duration::from_millis(5) < alive_for;
                let row = if typed {
                    json!({"pid": pid, "type": "web", "age": w.age, "booted": booted,
                           "last_heartbeat": seconds(silent)})
                } else {
                    json!({"pid": pid, "age": w.age, "booted": booted,
                           "aborted": matches!(w.state, SlotState::Aborted { .. }),
                           "last_heartbeat": seconds(silent)})
                };
                (w.age, row)
            })
            .collect();
        rows.sort_by_key(|(age, _)| *age);
        rows.into_iter().map(|(_, r)| r).collect()
    }

    fn show_all(&self) -> Json {
        let web = self.worker_rows(true);
        let count = web.len();
        let dirty = self
            .dirty_arbiter_pid()
            .map(|pid| json!({"pid": pid, "type": "dirty_arbiter", "role": "dirty master"}));
        let dirty_workers = match dirty {
            Some(_) => self
                .ask_dirty(&json!({"type": "status", "id": "ctl-status"}))
                .and_then(|s| s.get("workers").cloned())
                .and_then(|w| w.as_array().cloned())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let dirty_count = dirty_workers.len();
        json!({
            "arbiter": {"pid": self.pid, "type": "arbiter", "role": "master"},
            "web_workers": web,
            "web_worker_count": count,
            "dirty_arbiter": dirty,
            "dirty_workers": dirty_workers,
            "dirty_worker_count": dirty_count,
        })
    }

    fn show_stats(&self) -> Json {
        let stats = &self.control.stats;
        let uptime = SystemTime::now()
            .duration_since(stats.start_time)
            .unwrap_or_default();
        json!({
            "uptime": seconds(uptime),
            "pid": self.pid,
            "workers_current": self.workers.len(),
            "workers_target": self.num_workers,
            "workers_spawned": stats.workers_spawned,
            "workers_killed": stats.workers_killed,
            "reloads": stats.reloads,
            "dirty_arbiter_pid": self.dirty_arbiter_pid(),
        })
    }

    fn show_listeners(&self) -> Json {
        use std::os::fd::{AsFd, AsRawFd};
        let rows: Vec<Json> = self
            .listeners
            .iter()
            .map(|l| {
                let kind = match (l, l.local_addr()) {
                    (Listener::Unix { .. }, _) => "unix",
                    (_, Ok(LocalAddr::Tcp(a))) if a.is_ipv6() => "tcp6",
                    (_, Ok(LocalAddr::Tcp(_))) => "tcp",
                    _ => "unknown",
                };
                json!({"address": l.url(), "fd": l.as_fd().as_raw_fd(), "type": kind})
            })
            .collect();
        let count = rows.len();
        json!({"listeners": rows, "count": count})
    }

    fn show_config(&self) -> Json {
        let cfg = &self.cfg;
        let mut out = Map::new();
        for key in CONFIG_KEYS {
            let value = match *key {
                "worker_class" => json!(self.class.name),
                "pidfile" => json!(cfg.pidfile),
                "proc_name" => json!(crate::process::proc_name(cfg)),
                "control_socket" => json!(socket_path(cfg).display().to_string()),
                name => match (Config::setting(name), crate::gunicorn27::lookup(name)) {
                    (Some(setting), _) => py_literal(&setting.show_py(cfg)),
                    // A gunicorn setting this server does not have: the config file may only
                    // leave it at gunicorn's default, so that is the value in effect.
                    (None, Some(theirs)) => py_literal(theirs.default),
                    (None, None) => continue,
                },
            };
            out.insert(key.to_string(), value);
        }
        Json::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_values_become_json() {
        let cases: &[(&str, Json)] = &[
            ("True", json!(true)),
            ("False", json!(false)),
            ("None", json!(null)),
            ("30", json!(30)),
            ("0.5", json!(0.5)),
            ("[]", json!([])),
            ("['127.0.0.1:8000']", json!(["127.0.0.1:8000"])),
            ("['a', \"b'c\", 'd\\'e']", json!(["a", "b'c", "d'e"])),
            ("[1, 2]", json!("[1, 2]")),
            ("sync", json!("sync")),
        ];
        for (text, want) in cases {
            assert_eq!(&py_literal(text), want, "{text}");
        }
    }

    #[test]
    fn relative_socket_paths_are_made_absolute() {
        let mut cfg = Config {
            control_socket: "run/g.ctl".into(),
            ..Config::default()
        };
        let path = socket_path(&cfg);
        assert!(path.is_absolute());
        assert!(path.ends_with("run/g.ctl"));
        cfg.control_socket = "/tmp/x.ctl".into();
        assert_eq!(socket_path(&cfg), PathBuf::from("/tmp/x.ctl"));
    }
}
