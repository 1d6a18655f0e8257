//! The gthread worker class (gunicorn's `ThreadWorker`), rebuilt around an event loop.
//!
//! The event loop ([`poller`]) owns the listeners and every connection waiting for a request:
//! it reads and parses request heads without the GIL, so a slow or idle client costs a
//! connection slot, never a Python thread. It is a baton passed between the `--threads` pool
//! threads ([`pool`]): an idle thread runs it until a request is complete, then runs that
//! request itself through the same PEP 3333 bridge as the sync worker, holding the GIL only
//! while Python runs. The main thread beats the heartbeat and takes the event loop up while a
//! slow request keeps every thread from it. After the response a keep-alive connection returns
//! to the event loop with whatever was read past the request, and a pipelined request already
//! in that buffer is answered at once. With `--certfile`/`--keyfile` every connection is a TLS
//! stream whose handshake the event loop drives, with a deadline, like a head. With `h2` in
//! `--http-protocols`, HTTP/2 connections (ALPN, or h2c from trusted peers) go to an HTTP/2
//! thread (`gunicorn_serve::h2`) that hands each stream to the pool as a job of its own, so the
//! streams of one connection run concurrently on `--threads` threads.
//!
//! The files, each depending only on those below it:
//! - `lib.rs`: the worker class, its settings, and the main thread (heartbeat, rescues).
//! - `pool.rs`: the pool threads: run a request, decide the connection's fate after it.
//! - `poller.rs`: the event loop: accepts, TLS handshakes, reads and parses heads, deadlines,
//!   shutdown.
//! - `handoff.rs`: what the threads share: the request queue, the baton (the event loop), the
//!   connections handed back, the `gunicorn.socket` objects to close with the GIL.
//! - `job.rs`: what passes between the event loop and a pool thread: a parsed request (`Job`),
//!   the connection coming back (`Done`), and the connection's `gunicorn.socket`.
//! - `conn.rs`: the connection policy, sans-IO (deadlines, keep-alive).
//! - `socket.rs`: client sockets (plain or TLS): non-blocking reads and writes, bounded waits.
#![deny(unsafe_code)]

pub mod conn;
mod handoff;
mod job;
mod poller;
mod pool;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use gunicorn_core::{
    register_worker, BuildError, Config, Worker, WorkerClass, WorkerContext, WorkerError,
};
use gunicorn_core::{Shutdown, StopKind};
use gunicorn_python::worker_boot;
use gunicorn_python::wsgi::BridgeOptions;
use gunicorn_serve::h2::{Dispatch, H2Server, H2Settings, StreamJob};
use gunicorn_serve::tls::Acceptor;
use gunicorn_serve::{Count, RequestBudget};

use crate::conn::Timeouts;
use crate::handoff::{Shared, Turn};
use crate::job::Work;
use crate::poller::{H2Hub, Poller, Serving, Settings, WAKER};

register_worker!(WorkerClass::new(
    "gthread",
    &[
        "egg:gunicorn#gthread",
        "gunicorn.workers.gthread.ThreadWorker"
    ],
    build
));

/// The gthread worker, built in the master before each fork.
#[derive(Debug)]
pub struct ThreadWorker {
    /// Requests to serve before restarting (`max_requests` + jitter); None = unlimited.
    max_requests: Option<u64>,
    /// The TLS configuration (`certfile`, `keyfile`, ...), None for plain HTTP. Its files are
    /// read here, in the master: a bad file stops the server before any fork, the worker reads
    /// no key after dropping privileges, and workers built after a HUP get the files as they
    /// are then (see `gunicorn_serve::tls::load`).
    tls: Option<Acceptor>,
    /// How HTTP/2 is served, if it is.
    h2: H2Mode,
}

/// Whether and how the worker serves HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum H2Mode {
    /// HTTP/1 only.
    Off,
    /// By ALPN over TLS.
    Alpn,
    /// Cleartext (h2c) from trusted peers.
    Cleartext {
        /// Connections opening with the preface are HTTP/2.
        prior_knowledge: bool,
        /// Requests with `Upgrade: h2c` switch to HTTP/2.
        upgrade: bool,
    },
}

fn build(cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    // Refuse bad HTTP settings (allow lists, header_map) before any fork.
    gunicorn_serve::http_config(cfg).map_err(|e| BuildError(e.to_string()))?;
    let mut tls = gunicorn_serve::tls::load(cfg).map_err(|e| BuildError(e.to_string()))?;
    let h2 = h2_mode(cfg);
    if h2 == H2Mode::Alpn {
        tls = tls.map(|t| t.offering_h2(&cfg.http_protocols));
    }
    Ok(Box::new(ThreadWorker {
        max_requests: gunicorn_core::worker::max_requests(cfg),
        tls,
        h2,
    }))
}

/// HTTP/2 as `http_protocols` and `http2_cleartext` ask: by ALPN with TLS (where
/// `http2_cleartext` is ignored, as gunicorn 27 ignores it), else h2c as `http2_cleartext`
/// says.
fn h2_mode(cfg: &Config) -> H2Mode {
    // gunicorn 27 offers HTTP/2 only to HTTP peers: behind `--protocol uwsgi` the proxy speaks
    // uWSGI packets, never HTTP/2.
    if !cfg.http_protocols.h2() || cfg.protocol != gunicorn_core::config::Protocol::Http {
        return H2Mode::Off;
    }
    if gunicorn_serve::tls::enabled(cfg) {
        return H2Mode::Alpn;
    }
    let mode = cfg.http2_cleartext;
    if mode == gunicorn_core::config::H2Cleartext::Off {
        return H2Mode::Off;
    }
    H2Mode::Cleartext {
        prior_knowledge: mode.prior_knowledge(),
        upgrade: mode.upgrade(),
    }
}

/// Hands each HTTP/2 stream to the pool, counting it in `max_requests`.
struct PoolDispatch {
    shared: Arc<Shared<Poller>>,
    budget: Arc<RequestBudget>,
    shutdown: Shutdown,
}

impl Dispatch for PoolDispatch {
    fn dispatch(&self, job: StreamJob) {
        if self.budget.count() == Count::Last {
            gunicorn_serve::log_autorestart();
            self.shutdown.request(StopKind::Graceful);
        }
        self.shared.submit_from_outside(Work::Stream(job));
    }

    fn flush(&self) {
        self.shared.wake_for_outside();
    }
}

/// How often the poller touches the heartbeat: gunicorn's gthread does it on every loop turn,
/// at least once a second; never less often than `timeout / 2`.
fn heartbeat_interval(timeout: u64) -> Duration {
    let second = Duration::from_secs(1);
    if timeout == 0 {
        second
    } else {
        second.min(Duration::from_millis(timeout.saturating_mul(500)))
    }
}

fn settings(cfg: &Config) -> Settings {
    let threads = usize::try_from(cfg.threads.max(1)).unwrap_or(usize::MAX);
    Settings {
        worker_connections: usize::try_from(cfg.worker_connections.max(1)).unwrap_or(usize::MAX),
        threads,
        keepalive_enabled: cfg.keepalive > 0,
        timeouts: Timeouts {
            keepalive: Duration::from_secs(cfg.keepalive),
            head: (cfg.timeout > 0).then(|| Duration::from_secs(cfg.timeout)),
        },
        graceful_timeout: Duration::from_secs(cfg.graceful_timeout),
        beat: heartbeat_interval(cfg.timeout),
        shared_listeners: cfg.workers > 1,
        fair_share: threads.saturating_mul(2).max(4),
    }
}

impl Worker for ThreadWorker {
    fn run(self: Box<Self>, mut ctx: WorkerContext) -> Result<(), WorkerError> {
        let cfg = Arc::clone(&ctx.config);
        // wsgi.multithread is True; responses may keep their connection.
        let opts = BridgeOptions::from_config(&cfg, true, false);
        let (bridge, http) = worker_boot::load_app_and_bridge(&cfg, opts)?;
        // SIGABRT (timeout): the worker_abort server hook, then exit 1, as gunicorn.
        gunicorn_core::worker::set_abort_handler(Box::new(
            gunicorn_python::server_hooks::abort_and_exit,
        ));
        let boot = |e: std::io::Error| WorkerError::Boot(e.to_string());
        let listeners = worker_boot::nonblocking_listeners(std::mem::take(&mut ctx.listeners))?;
        let settings = settings(&cfg);
        raise_open_files_limit(settings.worker_connections);
        let poll = mio::Poll::new().map_err(boot)?;
        let waker = mio::Waker::new(poll.registry(), WAKER).map_err(boot)?;
        let registry = poll.registry().try_clone().map_err(boot)?;
        let shared = Arc::new(Shared::new(waker, registry));
        let budget = Arc::new(RequestBudget::new(self.max_requests));
        let h2 = match self.h2 {
            H2Mode::Off => None,
            mode => {
                let dispatch = Arc::new(PoolDispatch {
                    shared: Arc::clone(&shared),
                    budget: Arc::clone(&budget),
                    shutdown: ctx.shutdown.clone(),
                });
                let server = H2Server::start(H2Settings::from_config(&cfg), &http, dispatch)
                    .map_err(boot)?;
                let (prior_knowledge, upgrade) = match mode {
                    H2Mode::Cleartext {
                        prior_knowledge,
                        upgrade,
                    } => (prior_knowledge, upgrade),
                    H2Mode::Off | H2Mode::Alpn => (false, false),
                };
                Some(H2Hub {
                    server: Arc::new(server),
                    prior_knowledge,
                    // gunicorn 27: with `prior-knowledge` alone a trusted peer must speak
                    // HTTP/2; with `both` an HTTP/1 request is how an upgrade begins.
                    preface_required: prior_knowledge && !upgrade,
                    upgrade,
                    max_frame: cfg.http2_max_frame_size.0 as usize,
                    first_window: cfg.http2_initial_window_size.0 as usize,
                })
            }
        };
        let h2_server = h2.as_ref().map(|h| Arc::clone(&h.server));
        // `--timeout` also bounds each wait of a pool thread on a stalled client: the
        // heartbeat runs in the poller, so the arbiter would never time such a thread out.
        let io_timeout = settings.timeouts.head;
        pool::start(
            settings.threads,
            Arc::clone(&shared),
            Arc::new(bridge),
            Arc::clone(&http),
            io_timeout,
        )
        .map_err(boot)?;
        let poller = Poller::new(
            poll,
            listeners,
            Arc::clone(&shared),
            http,
            settings,
            ctx.shutdown.clone(),
            Serving {
                tls: self.tls,
                h2,
                budget,
            },
        )
        .map_err(boot)?;
        shared.start(Box::new(poller));
        watch(&shared, &ctx, settings.beat);
        if let Some(server) = h2_server {
            // The event loop stopped: its graceful stop waited for the HTTP/2 connections, or
            // gave up at the graceful timeout. Whatever is left is closed now.
            server.stop(false);
            server.join();
        }
        Ok(())
    }
}

/// Descriptors a worker needs besides its connections: listeners, epoll, eventfd, pipes,
/// heartbeat file, logs, and what the app opens.
const SPARE_FDS: u64 = 256;

/// Raises the soft limit on open files to the hard limit, as the Go runtime does for every
/// program: each connection holds two descriptors (its socket, and the duplicate behind
/// `gunicorn.socket`), so `--worker-connections 1000` needs about 2 000, more than the usual
/// soft limit of 1 024. Warns when even the hard limit is short.
fn raise_open_files_limit(worker_connections: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let mut limit = soft;
    if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        limit = hard;
    }
    let needed = (worker_connections as u64)
        .saturating_mul(2)
        .saturating_add(SPARE_FDS);
    if limit < needed {
        gunicorn_core::log_warning!(
            "The open files limit ({limit}) is below what worker_connections {worker_connections} \
             may need ({needed}): raise it (ulimit -n) or lower worker_connections"
        );
    }
}

/// The main thread: proves the worker alive every `beat` whatever the requests do (gunicorn's
/// gthread notifies from its main loop, so a long request is not a dead worker), and runs the
/// event loop itself when no pool thread does (see `Shared::main_wait`). Returns when the
/// worker stops.
fn watch(shared: &Shared<Poller>, ctx: &WorkerContext, beat: Duration) {
    let mut next_beat = std::time::Instant::now();
    // Touches the heartbeat when it is due; returns the time.
    let beat_if_due = |next_beat: &mut std::time::Instant| {
        let now = std::time::Instant::now();
        if now >= *next_beat {
            ctx.heartbeat.notify();
            *next_beat = now + beat;
        }
        now
    };
    loop {
        beat_if_due(&mut next_beat);
        if shared.has_buried() {
            // Sockets of connections closed while no request ran (idle keep-alive timeouts,
            // clients gone): their duplicates are closed here at the latest.
            pyo3::Python::attach(|py| shared.collect(py));
        }
        if let Some(mut poller) = shared.main_wait(next_beat) {
            // A rescue: lead until a pool thread is free to, beating meanwhile.
            loop {
                let now = beat_if_due(&mut next_beat);
                let turn = poller.turn(next_beat.saturating_duration_since(now));
                match shared.main_after_turn(poller, turn == Turn::Stopped) {
                    Some(kept) => poller = kept,
                    None => break,
                }
            }
        }
        if shared.finished() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_at_least_every_half_timeout() {
        let cases = [(0, 1000), (1, 500), (2, 1000), (30, 1000)];
        for (timeout, ms) in cases {
            assert_eq!(
                heartbeat_interval(timeout),
                Duration::from_millis(ms),
                "{timeout}"
            );
        }
    }

    #[test]
    fn registered_under_gunicorns_names() {
        for name in [
            "gthread",
            "egg:gunicorn#gthread",
            "gunicorn.workers.gthread.ThreadWorker",
        ] {
            let class = gunicorn_core::registry::lookup(name).expect(name);
            assert_eq!(class.name, "gthread");
        }
    }
}
