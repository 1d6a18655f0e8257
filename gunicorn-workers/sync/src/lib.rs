//! The sync worker class (gunicorn's `SyncWorker`): one connection at a time, exactly one
//! request per connection, every response with `Connection: close`.
//!
//! The loop follows gunicorn: the listeners are non-blocking; accept until every listener says
//! EAGAIN, then `poll` the listeners and the shutdown pipe for `timeout / 2`, proving the worker
//! alive on each turn. A graceful stop (TERM), `max_requests` or a new parent pid end the loop
//! between requests, so the current request always finishes.
#![deny(unsafe_code)]

use std::io::{self, Read};
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gunicorn_core::{
    log_info, register_worker, BuildError, Config, Listener, Shutdown, StopKind, Stream, Worker,
    WorkerClass, WorkerContext, WorkerError,
};
use gunicorn_http::{ConnInfo, HttpConfig, Local, RequestParser};
use gunicorn_python::worker_boot;
use gunicorn_python::wsgi::{Bridge, BridgeOptions, Exchange};
use gunicorn_serve::accept::{accept_batch, BatchEnd};
use gunicorn_serve::linger::close_graceful;
use gunicorn_serve::tls::Acceptor;

use gunicorn_serve::deadline::DeadlineStream;
use gunicorn_serve::transport::has_unread_input;
use gunicorn_serve::{read_head, HeadRead, HeadReader, RequestBudget, Transport};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pyo3::Python;

register_worker!(WorkerClass::new(
    "sync",
    &["egg:gunicorn#sync", "gunicorn.workers.sync.SyncWorker"],
    build
));

/// The heartbeat is touched at most this often while requests keep coming: the master counts
/// `timeout` in whole seconds, and one `futimens` per request was a measurable share of a
/// hello-world request.
const BEAT_INTERVAL: Duration = Duration::from_millis(100);

/// The request being served, for the SIGABRT (timeout) handler.
static CURRENT: Mutex<Option<Exchange>> = Mutex::new(None);

/// gunicorn's answer to the master's `WORKER TIMEOUT` SIGABRT: the request in progress is
/// abandoned, with a 500 page if its response had not started (also while the app is blocked
/// reading a slow request body), and the worker exits. (Runs on the worker's signal helper
/// thread, not in signal context.) gunicorn's SystemExit from its abort handler is caught by
/// the request's error handling, so a worker aborted in a request exits with status 0 (the
/// master logs only `WORKER TIMEOUT`); outside a request it exits with 1.
fn abort_current_request() {
    gunicorn_python::server_hooks::worker_abort();
    // Held until the exit: the serving thread needs it before it takes the connection's
    // transport, which keeps the descriptor open while the page is written.
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    let status = match current.as_ref() {
        Some(exchange) => {
            let page = gunicorn_http::error_page(500, "Internal Server Error", "");
            exchange.abort_with_error_page(&page);
            0
        }
        None => 1,
    };
    // gunicorn's worker logs this on every way out, the abort included.
    log_info!("Worker exiting (pid: {})", std::process::id());
    gunicorn_python::server_hooks::worker_exit();
    std::process::exit(status);
}

/// gunicorn's worker exits at once on INT/QUIT (its handler raises `SystemExit` inside the
/// request). Between requests the serving loop sees the stop itself; this thread covers a
/// request in progress: after gunicorn's 0.1 s grace it ends the process with status 0. It
/// holds `CURRENT` while exiting so the serving thread cannot finish and log a second
/// `Worker exiting` line meanwhile.
fn spawn_quick_stop_watcher(shutdown: Shutdown) -> io::Result<()> {
    std::thread::Builder::new()
        .name("gunicorn-quick-stop".into())
        .spawn(move || loop {
            match shutdown.requested() {
                Some(StopKind::Quick) => {
                    std::thread::sleep(Duration::from_millis(100));
                    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
                    if current.is_some() {
                        log_info!("Worker exiting (pid: {})", std::process::id());
                        gunicorn_python::server_hooks::worker_exit();
                        std::process::exit(0);
                    }
                    return;
                }
                // The wake pipe stays readable once a graceful stop was asked for: from then
                // on, look every 100 ms for the quick stop that may follow.
                Some(StopKind::Graceful) => std::thread::sleep(Duration::from_millis(100)),
                None => {
                    let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
            }
        })?;
    Ok(())
}

/// The sync worker, built in the master before each fork.
#[derive(Debug)]
pub struct SyncWorker {
    /// Requests to serve before restarting (`max_requests` + jitter); None = unlimited.
    max_requests: Option<u64>,
    /// TLS (`--certfile`...), loaded in the master.
    tls: Option<Acceptor>,
}

fn build(cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    // Refuse bad HTTP settings (allow lists, header_map) before any fork.
    gunicorn_serve::http_config(cfg).map_err(|e| BuildError(e.to_string()))?;
    Ok(Box::new(SyncWorker {
        max_requests: gunicorn_core::worker::max_requests(cfg),
        tls: gunicorn_serve::tls::load(cfg).map_err(|e| BuildError(e.to_string()))?,
    }))
}

/// The worker's state while running in its child process.
struct Running {
    bridge: Bridge,
    http: Arc<HttpConfig>,
    /// Each listener with the address the environ reports for it.
    listeners: Vec<(Listener, Local)>,
    ctx: WorkerContext,
    poll_timeout: PollTimeout,
    /// `max_requests`: the worker stops after the request that reaches it.
    budget: RequestBudget,
    tls: Option<Acceptor>,
    /// When the heartbeat was last touched.
    last_beat: Instant,
}

impl Worker for SyncWorker {
    fn run(self: Box<Self>, mut ctx: WorkerContext) -> Result<(), WorkerError> {
        let cfg = Arc::clone(&ctx.config);
        gunicorn_serve::h2::warn_unsupported(&cfg, "sync");
        let opts = BridgeOptions::from_config(&cfg, false, true);
        let (bridge, http) = worker_boot::load_app_and_bridge(&cfg, opts)?;
        gunicorn_core::worker::set_abort_handler(Box::new(abort_current_request));
        spawn_quick_stop_watcher(ctx.shutdown.clone())
            .map_err(|e| WorkerError::Boot(e.to_string()))?;
        let listeners = worker_boot::nonblocking_listeners(std::mem::take(&mut ctx.listeners))?;
        // gunicorn waits `timeout / 2` between accept rounds; with the timeout disabled (0)
        // it still wakes up every second to check its parent.
        let wait_ms = if cfg.timeout == 0 {
            1000
        } else {
            (cfg.timeout.saturating_mul(500)).min(i32::MAX as u64) as i32
        };
        let mut running = Running {
            bridge,
            http,
            listeners,
            poll_timeout: PollTimeout::try_from(wait_ms).unwrap_or(PollTimeout::NONE),
            ctx,
            budget: RequestBudget::new(self.max_requests),
            tls: self.tls,
            last_beat: Instant::now(),
        };
        running.serve();
        Ok(())
    }
}

impl Running {
    fn alive(&self) -> bool {
        self.ctx.shutdown.requested().is_none()
    }

    /// Proves the worker alive (rate-limited to `BEAT_INTERVAL`).
    fn beat(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_beat) >= BEAT_INTERVAL {
            self.ctx.heartbeat.notify();
            self.last_beat = now;
        }
    }

    fn serve(&mut self) {
        while self.alive() {
            self.beat();
            if !self.accept_round() {
                return;
            }
            if !self.parent_alive() {
                return;
            }
            if !self.alive() {
                return;
            }
            self.wait();
        }
    }

    /// Accepts and serves connections until every listener would block. False when the
    /// worker must stop (max_requests reached, stop requested).
    fn accept_round(&mut self) -> bool {
        let listeners = std::mem::take(&mut self.listeners);
        let mut go_on = true;
        for (listener, local) in &listeners {
            let end = accept_batch(listener, local, usize::MAX, |stream, conn| {
                self.handle_connection(stream, conn);
                self.beat();
                let last = self.budget.count().is_final();
                if last {
                    gunicorn_serve::log_autorestart();
                }
                if last || !self.alive() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            if end == BatchEnd::Stopped {
                go_on = false;
                break;
            }
        }
        self.listeners = listeners;
        go_on
    }

    /// gunicorn's `is_parent_alive`. (The worker's signal helper thread in gunicorn-core also
    /// watches the parent and requests a graceful stop; whichever notices first logs.)
    fn parent_alive(&self) -> bool {
        let ppid = nix::unistd::getppid().as_raw();
        if ppid != self.ctx.ppid {
            if self.alive() {
                log_info!(
                    "Parent changed, shutting down: worker (pid: {})",
                    std::process::id()
                );
            }
            return false;
        }
        true
    }

    /// Sleeps until a listener is readable, a stop is requested, or the timeout passes.
    fn wait(&self) {
        let mut fds: Vec<PollFd<'_>> = self
            .listeners
            .iter()
            .map(|(l, _)| PollFd::new(l.as_fd(), PollFlags::POLLIN))
            .collect();
        fds.push(PollFd::new(self.ctx.shutdown.wake_fd(), PollFlags::POLLIN));
        // EINTR (a signal) just ends the wait early.
        let _ = poll(&mut fds, self.poll_timeout);
    }

    /// The connection's transport: the stream itself, or TLS over it once its handshake is
    /// done (None when the handshake failed, which is reported).
    fn transport(&self, stream: Stream, conn: &mut ConnInfo) -> Option<Box<dyn Transport>> {
        let Some(acceptor) = &self.tls else {
            return Some(Box::new(stream));
        };
        // One deadline for the whole handshake, half the timeout as the worker's other waits:
        // a client that stalls or trickles its handshake costs this worker at most that long,
        // never its life (the master kills a worker silent for `--timeout`).
        let deadline = acceptor
            .handshake_timeout()
            .map(|t| Instant::now() + (t / 2).max(Duration::from_secs(1)));
        let handshake = acceptor
            .accept(DeadlineStream::new(stream, deadline))
            .and_then(|mut tls| tls.handshake().map(|()| tls));
        let tls = match handshake {
            Ok(tls) => tls,
            Err(e) => {
                gunicorn_serve::tls::handshake_failed(conn, &e);
                return None;
            }
        };
        // The request itself may take as long as the client needs, as without TLS.
        if tls.get_ref().clear().is_err() {
            return None;
        }
        conn.tls = tls.tls_info();
        Some(Box::new(tls))
    }

    /// Reads one request, runs the app, closes the connection.
    fn handle_connection(&self, stream: Stream, mut conn: ConnInfo) {
        let Some(mut io) = self.transport(stream, &mut conn) else {
            return;
        };
        let mut reader = HeadReader::new(RequestParser::new(Arc::clone(&self.http), conn.clone()));
        // The head may take as long as the client needs: gunicorn's sync worker has no
        // timeout on it either (the master's `--timeout` ends a worker stuck in it).
        let (req, after_head) = match read_head(&mut reader, Vec::new(), |buf, _| io.read(buf)) {
            HeadRead::Ready { req, after_head } => (req, after_head),
            HeadRead::Closed => return,
            HeadRead::Invalid(e) => {
                gunicorn_serve::reject::answer(io.as_mut(), &conn, &e);
                return;
            }
        };
        let exchange =
            Exchange::new(io, after_head, &req, Arc::clone(&self.http), true).abortable();
        // The connection is closed right after the bridge returns (below).
        exchange.set_closing_after();
        set_current(Some(exchange.clone()));
        // The environ goes straight from the parsed request into the dict (no `Environ` of
        // owned strings unless the access log asks for one).
        let handled = Python::attach(|py| {
            let proxy = reader.proxy_info();
            self.bridge
                .handle_request(py, &req, &conn, proxy, &self.http, &exchange)
        });
        set_current(None);
        if let Err(e) = handled {
            // No environ for this request (a path outside SCRIPT_NAME): the app never ran.
            if let Some((mut io, _)) = exchange.take_transport() {
                gunicorn_serve::reject::answer(io.as_mut(), &conn, &e);
            }
            return;
        }
        let fully_read = exchange.request_fully_read();
        if let Some((mut io, _)) = exchange.take_transport() {
            if fully_read && !has_unread_input(io.as_mut()) {
                // Nothing more to read from this client: a plain close sends FIN (see
                // close_graceful for when lingering is needed); over TLS, after close_notify,
                // so a strict client (suppress_ragged_eofs off) sees a clean end.
                if !io.passthrough() {
                    let _ = io.shutdown_write();
                }
                return;
            }
            close_graceful(io.as_mut());
        }
    }
}

fn set_current(exchange: Option<Exchange>) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = exchange;
}

// Closing: gunicorn's `close_graceful` (gunicorn-serve's `linger`) lingers after every
// request; like nginx's `lingering_close on`, we linger only when unread data is possible: the
// app left part of the body unread, bytes beyond the request were buffered, or more bytes are
// already waiting. Otherwise the worker closes at once instead of waiting a round trip for the
// client's FIN.

#[cfg(test)]
mod tests {
    #[test]
    fn registered_under_gunicorns_names() {
        for name in [
            "sync",
            "egg:gunicorn#sync",
            "gunicorn.workers.sync.SyncWorker",
        ] {
            let class = gunicorn_core::registry::lookup(name).expect(name);
            assert_eq!(class.name, "sync");
        }
    }
}
