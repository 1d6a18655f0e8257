//! `echo`: a pure-Rust worker class for gunicorn-core.
//!
//! It follows gunicorn's sync model: one connection at a time, one request per connection
//! (`Connection: close`). Requests are parsed with gunicorn-http, so the same limits and
//! strictness apply as for the Python workers; the answer is `200 OK` with a `text/plain` body
//! holding `METHOD TARGET`, a newline, and the request body.
//!
//! Linking this crate registers the class under the name `echo` (`-k echo`).
#![deny(unsafe_code)]

use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use gunicorn_core::listener::Stream;
use gunicorn_core::{
    log_error, log_info, register_worker, BuildError, Config, Worker, WorkerClass, WorkerContext,
    WorkerError,
};
use gunicorn_http::{
    error_page, BodyDecoder, ConnInfo, HttpConfig, Local, ReqMeta, RequestParser, Response,
};
use gunicorn_serve::accept::{accept_batch, BatchEnd};
use gunicorn_serve::deadline::DeadlineStream;
use gunicorn_serve::tls::Acceptor;
use gunicorn_serve::{read_head, reject, HeadRead, HeadReader, Transport};
use nix::poll::PollTimeout;

/// The name this worker class is registered under.
pub const NAME: &str = "echo";

/// The largest request body echoed back; a larger one gets 413.
pub const MAX_BODY: usize = 1 << 20;

/// How long a client may take to send its request (this demo never waits forever).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

register_worker!(WorkerClass::new(
    NAME,
    &["egg:gunicorn-worker-echo#echo"],
    build
));

/// The registered class. Calling it from `main` also guarantees the linker keeps the
/// registration above.
pub fn class() -> &'static WorkerClass {
    gunicorn_core::registry::lookup(NAME).expect("the echo worker registers itself")
}

/// Builds one worker from the settings (in the master, before each fork).
pub fn build(cfg: &Config) -> Result<Box<dyn Worker>, BuildError> {
    if cfg.threads > 1 {
        return Err(BuildError(
            "the echo worker is single-threaded; --threads must be 1".into(),
        ));
    }
    // Every HTTP setting of gunicorn's (limits, header policy, forwarders, PROXY protocol...),
    // mapped exactly as for the Python worker classes.
    let http = gunicorn_serve::http_config(cfg).map_err(|e| BuildError(e.to_string()))?;
    Ok(Box::new(EchoWorker {
        http: Arc::new(http),
        // gunicorn's max_requests + randint(0, jitter); unlimited when 0.
        budget: gunicorn_serve::RequestBudget::from_config(cfg),
        tls: gunicorn_serve::tls::load(cfg).map_err(|e| BuildError(e.to_string()))?,
    }))
}

/// The worker built by [`build`].
#[derive(Debug)]
pub struct EchoWorker {
    http: Arc<HttpConfig>,
    budget: gunicorn_serve::RequestBudget,
    /// TLS (`--certfile`...), loaded in the master.
    tls: Option<Acceptor>,
}

impl Worker for EchoWorker {
    fn run(self: Box<Self>, ctx: WorkerContext) -> Result<(), WorkerError> {
        for l in &ctx.listeners {
            l.set_nonblocking(true)
                .map_err(|e| WorkerError::Boot(e.to_string()))?;
        }
        // Heartbeat at least every timeout / 2, as gunicorn's workers do; wake at least once a
        // second to notice a stop request or a new parent.
        let tick_ms = (ctx.config.timeout * 1000 / 2).clamp(100, 1000) as u16;
        // Each listener's address as the environ would report it.
        let locals: Vec<Local> = ctx
            .listeners
            .iter()
            .map(|l| {
                l.local_addr()
                    .map_or(Local::Unix(String::new()), gunicorn_serve::addr::local)
            })
            .collect();
        loop {
            ctx.heartbeat.notify();
            if ctx.shutdown.requested().is_some() {
                return Ok(());
            }
            if nix::unistd::getppid().as_raw() != ctx.ppid {
                log_info!("Parent changed, shutting down: echo worker");
                return Ok(());
            }
            match ctx.wait_readable(PollTimeout::from(tick_ms)) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(WorkerError::Runtime(format!("poll: {e}"))),
            }
            for (l, local) in ctx.listeners.iter().zip(&locals) {
                // Accept until the queue is empty (another worker may win the race: EAGAIN).
                let end = accept_batch(l, local, usize::MAX, |stream, info| {
                    if let Err(e) = self.handle(stream, info) {
                        log_error!("echo: {e}");
                    }
                    ctx.heartbeat.notify();
                    if self.budget.count().is_final() {
                        gunicorn_serve::log_autorestart();
                        return ControlFlow::Break(());
                    }
                    if ctx.shutdown.requested().is_some() {
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                });
                if end == BatchEnd::Stopped {
                    return Ok(());
                }
            }
        }
    }
}

/// One `read`, retried when a signal interrupts it. With a read timeout set (SO_RCVTIMEO),
/// Linux does not restart an interrupted socket read even under SA_RESTART (signal(7)): the
/// TERM of a graceful stop would otherwise cut the request being served short.
fn read_some(stream: &mut dyn Transport, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl EchoWorker {
    /// Reads one request, answers it and closes the connection.
    fn handle(&self, stream: Stream, mut info: ConnInfo) -> io::Result<()> {
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let mut stream: Box<dyn Transport> = match &self.tls {
            None => Box::new(stream),
            Some(acceptor) => {
                // The whole handshake within CLIENT_TIMEOUT, however the client paces its bytes.
                let deadline = Some(std::time::Instant::now() + CLIENT_TIMEOUT);
                let mut tls = acceptor.accept(DeadlineStream::new(stream, deadline))?;
                if let Err(e) = tls.handshake() {
                    gunicorn_serve::tls::handshake_failed(&info, &e);
                    return Ok(());
                }
                // Then each read and write again within CLIENT_TIMEOUT, as without TLS.
                tls.get_ref().clear()?;
                let plain = tls.get_ref().get_ref();
                plain.set_read_timeout(Some(CLIENT_TIMEOUT))?;
                plain.set_write_timeout(Some(CLIENT_TIMEOUT))?;
                info.tls = tls.tls_info();
                Box::new(tls)
            }
        };
        let mut reader = HeadReader::new(RequestParser::new(self.http.clone(), info.clone()));
        let (req, mut rest) = match read_head(&mut reader, Vec::new(), |buf, _| stream.read(buf)) {
            HeadRead::Ready { req, after_head } => (req, after_head),
            // The client went away (or stalled past CLIENT_TIMEOUT) before a request.
            HeadRead::Closed => return Ok(()),
            HeadRead::Invalid(e) => {
                reject::answer(stream.as_mut(), &info, &e);
                return Ok(());
            }
        };
        let mut chunk = [0u8; 8192];
        let mut body = Vec::new();
        let mut decoder = BodyDecoder::new(&req.body, self.http.clone());
        if req.expect_continue {
            stream.write_all(gunicorn_http::CONTINUE_100)?;
        }
        while !decoder.is_done() {
            if rest.is_empty() {
                let n = read_some(stream.as_mut(), &mut chunk)?;
                if n == 0 {
                    if let Err(e) = decoder.eof() {
                        reject::answer(stream.as_mut(), &info, &e);
                        return Ok(());
                    }
                    break;
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            match decoder.decode(&rest, &mut body) {
                Ok(n) => {
                    rest.drain(..n);
                }
                Err(e) => {
                    reject::answer(stream.as_mut(), &info, &e);
                    return Ok(());
                }
            }
            if body.len() > MAX_BODY {
                let page = error_page(413, "Request Entity Too Large", "body too large");
                stream.write_all(&page)?;
                return stream.shutdown_write();
            }
        }
        let mut payload = format!("{} {}\n", req.method, req.uri).into_bytes();
        payload.extend_from_slice(&body);
        let meta = ReqMeta {
            version: req.version,
            is_head: req.method == "HEAD",
            should_close: true,
            protocol: self.http.protocol,
        };
        let headers = vec![
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Content-Length".to_string(), payload.len().to_string()),
        ];
        let mut resp = Response::new(&meta, "200 OK", headers)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        // gunicorn's sync model: one request per connection.
        resp.force_close();
        let mut out = Vec::with_capacity(256 + payload.len());
        resp.encode_head(&mut out);
        resp.encode_body(&payload, &mut out);
        resp.finish(&mut out);
        stream.write_all(&out)?;
        stream.shutdown_write()
    }
}

/// Why [`apply_args`] refused the command line.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// No setting has this flag.
    #[error("unrecognized argument: {0}")]
    Unrecognized(String),
    /// The setting exists but only a config file may set it.
    #[error("{0} is not a command-line flag")]
    FileOnly(String),
    /// The flag was last, without its value.
    #[error("{0} expects a value")]
    MissingValue(String),
    /// The settings table refused the value.
    #[error("{0}")]
    Invalid(#[from] gunicorn_core::ConfigError),
}

/// Applies command-line style arguments to `cfg` using the settings table: `--bind X`, `-w 2`,
/// `--reuse-port`, ... Every setting's flags are understood; unknown flags are an error. This
/// lets a small program built on gunicorn-core accept gunicorn's flags without its own parser.
pub fn apply_args(cfg: &mut Config, args: &[String]) -> Result<(), ArgsError> {
    use gunicorn_core::config::{Kind, SETTINGS};
    use gunicorn_core::Value;
    let mut bind_given = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let setting = SETTINGS
            .iter()
            .find(|s| s.flags.contains(&flag))
            .ok_or_else(|| ArgsError::Unrecognized(arg.clone()))?;
        let value = match setting.kind {
            Kind::Flag => Value::Bool(true),
            Kind::FlagFalse => Value::Bool(false),
            Kind::FileOnly => return Err(ArgsError::FileOnly(flag.to_string())),
            _ => match inline {
                Some(v) => Value::Str(v),
                None => {
                    i += 1;
                    Value::Str(
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| ArgsError::MissingValue(flag.to_string()))?,
                    )
                }
            },
        };
        // Repeatable flags accumulate; the first `--bind` replaces the default address.
        match (setting.name, value) {
            ("bind", Value::Str(v)) => {
                if !bind_given {
                    cfg.bind.clear();
                    bind_given = true;
                }
                cfg.bind.push(v);
            }
            ("raw_env", Value::Str(v)) => cfg.raw_env.push(v),
            (_, value) => setting.apply(cfg, value)?,
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_map_onto_the_settings_table() {
        let parse = |args: &[&str]| {
            let mut cfg = Config::default();
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            apply_args(&mut cfg, &args).map(|_| cfg)
        };
        assert_eq!(parse(&["-w", "3"]).unwrap().workers, 3);
        assert_eq!(parse(&["--workers=4"]).unwrap().workers, 4);
        assert!(parse(&["--reuse-port"]).unwrap().reuse_port);
        assert_eq!(parse(&["--timeout", "0"]).unwrap().timeout, 0);
        assert_eq!(
            parse(&["-b", "127.0.0.1:1", "-b", "unix:/tmp/x"])
                .unwrap()
                .bind,
            vec!["127.0.0.1:1".to_string(), "unix:/tmp/x".to_string()]
        );
        let bad: &[(&[&str], &str)] = &[
            (&["--nope"], "unrecognized argument: --nope"),
            (&["-w"], "-w expects a value"),
            (
                &["-w", "-1"],
                "invalid value for workers: -1: must be a positive integer",
            ),
            (&["positional"], "unrecognized argument: positional"),
        ];
        for (args, want) in bad {
            let err = parse(args).unwrap_err();
            assert_eq!(err.to_string(), *want, "{args:?}");
        }
    }

    #[test]
    fn the_class_is_registered() {
        assert_eq!(class().name, "echo");
        assert!(gunicorn_core::registry::lookup("egg:gunicorn-worker-echo#echo").is_some());
        let cfg = Config {
            threads: 2,
            ..Config::default()
        };
        assert!(build(&cfg).is_err());
    }
}
