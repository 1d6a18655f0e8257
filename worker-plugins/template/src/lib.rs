//! A template worker for gunicorn-core. Copy this directory, rename the crate in `Cargo.toml`,
//! change [`NAME`], and put your protocol in [`TemplateWorker::handle`]. The loop around it is
//! what every worker owes the arbiter:
//!
//! - call `ctx.heartbeat.notify()` at least every `timeout / 2` seconds, or the master kills
//!   the worker (`WORKER TIMEOUT`);
//! - return from `run` once `ctx.shutdown.requested()` is set (TERM: finish the requests in
//!   flight; INT/QUIT: stop now) or the parent pid changed;
//! - return `Err(WorkerError::Boot(..))` for failures before serving (the master then exits 3)
//!   and `Err(WorkerError::AppLoad(..))` if the application cannot be loaded (exit 4).
//!
//! As written it answers every connection with a fixed `200 OK` and closes it.
#![deny(unsafe_code)]

use std::io::{self, Read, Write};

use gunicorn_core::listener::Stream;
use gunicorn_core::{
    log_error, register_worker, BuildError, Config, Worker, WorkerClass, WorkerContext, WorkerError,
};
use nix::poll::PollTimeout;

/// The `-k` name of this worker class.
pub const NAME: &str = "template";

register_worker!(WorkerClass::new(NAME, &[], build));

/// Builds a worker from the settings. Runs in the master before every fork, so refuse bad
/// settings here: the master reports the error before forking anything.
pub fn build(_cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    Ok(Box::new(TemplateWorker))
}

/// The worker.
#[derive(Debug)]
pub struct TemplateWorker;

impl Worker for TemplateWorker {
    fn run(self: Box<Self>, ctx: WorkerContext) -> Result<(), WorkerError> {
        let tick_ms = (ctx.config.timeout * 1000 / 2).clamp(100, 1000) as u16;
        loop {
            ctx.heartbeat.notify();
            if ctx.shutdown.requested().is_some() || nix::unistd::getppid().as_raw() != ctx.ppid {
                return Ok(());
            }
            let _ = ctx.wait_readable(PollTimeout::from(tick_ms));
            for l in &ctx.listeners {
                // The listeners are non-blocking: accept until WouldBlock.
                while let Ok((stream, _peer)) = l.accept() {
                    if let Err(e) = TemplateWorker::handle(stream) {
                        log_error!("{NAME}: {e}");
                    }
                }
            }
        }
    }
}

impl TemplateWorker {
    /// One connection. The stream is blocking.
    fn handle(mut stream: Stream) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf)?;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")?;
        stream.shutdown_write()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn registered() {
        assert!(gunicorn_core::registry::lookup(super::NAME).is_some());
    }
}
