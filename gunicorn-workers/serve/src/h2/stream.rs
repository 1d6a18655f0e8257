//! One HTTP/2 stream as a worker thread sees it: a blocking request body ([`StreamBody`]) and
//! a blocking response sender ([`StreamReply`]), both over bounded channels to the stream's
//! task in the HTTP/2 thread, which alone touches the connection. A thread running the app
//! blocks on them (without the GIL), never the connection: a slow app stalls its own stream,
//! and the stream's task bounds every wait of the client (see `server.rs`). A greenlet waits
//! on them through a [`Park`] instead, switching to its hub ([`StreamJob::park_with`]).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gunicorn_http::{ConnInfo, Request};
use tokio::sync::{mpsc, oneshot};

use super::park::{wait_on, Park};

/// How many messages wait in a stream's channel each way: enough to keep the connection busy
/// while the app produces the next piece, few enough that a stream's memory stays a few
/// frames (the app blocks when the client reads slowly).
pub(super) const CHANNEL_DEPTH: usize = 4;

/// From the stream's task to [`StreamBody`].
#[derive(Debug)]
pub(super) enum BodyMsg {
    Data(Bytes),
    /// END_STREAM: the body is complete.
    End,
    /// The stream was reset, the client stalled past the timeout, or the connection failed.
    Failed(io::ErrorKind, &'static str),
}

/// From [`StreamReply`] to the stream's task.
#[derive(Debug)]
pub enum ReplyMsg {
    /// An informational response (103 Early Hints), fields as the app gave them.
    Informational(u16, Vec<(String, String)>),
    /// The response head; body pieces follow (a response without them is [`ReplyMsg::Whole`]).
    Head {
        status: u16,
        fields: Vec<(String, String)>,
    },
    /// Body bytes; `end` with the last of them.
    Data { data: Bytes, end: bool },
    /// The head and the whole body.
    Whole {
        status: u16,
        fields: Vec<(String, String)>,
        body: Bytes,
    },
}

/// A stream's request body, read up to END_STREAM.
pub struct StreamBody {
    /// None when the request came with END_STREAM on its head: no body, no channel.
    rx: Option<mpsc::Receiver<BodyMsg>>,
    chunk: Bytes,
    state: BodyState,
    /// How a read waits for DATA: blocking the thread (None), or a greenlet's park.
    park: Option<Arc<dyn Park>>,
}

#[derive(Debug, Clone, Copy)]
enum BodyState {
    Open,
    Ended,
    Failed(io::ErrorKind, &'static str),
}

impl StreamBody {
    pub(super) fn new(rx: mpsc::Receiver<BodyMsg>) -> StreamBody {
        StreamBody {
            rx: Some(rx),
            chunk: Bytes::new(),
            state: BodyState::Open,
            park: None,
        }
    }

    /// The body of a request that has none (END_STREAM came with its head).
    pub(super) fn empty() -> StreamBody {
        StreamBody {
            rx: None,
            chunk: Bytes::new(),
            state: BodyState::Ended,
            park: None,
        }
    }
}

impl Read for StreamBody {
    /// Waits until DATA arrives (the stream's task bounds the wait with `--timeout`): blocks
    /// the thread, or parks the greenlet.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&self.chunk.split_to(n));
                return Ok(n);
            }
            match self.state {
                BodyState::Ended => return Ok(0),
                BodyState::Failed(kind, what) => return Err(io::Error::new(kind, what)),
                BodyState::Open => {}
            }
            let Some(rx) = self.rx.as_mut() else {
                return Ok(0);
            };
            let next = match &self.park {
                None => rx.blocking_recv(),
                // A failed park (the greenlet is being killed) leaves the body as it was.
                Some(park) => wait_on(rx.recv(), park.as_ref())?,
            };
            self.state = match next {
                Some(BodyMsg::Data(data)) => {
                    self.chunk = data;
                    BodyState::Open
                }
                Some(BodyMsg::End) => BodyState::Ended,
                Some(BodyMsg::Failed(kind, what)) => BodyState::Failed(kind, what),
                None => {
                    BodyState::Failed(io::ErrorKind::ConnectionAborted, "the HTTP/2 stream ended")
                }
            };
        }
    }
}

/// A stream's response, sent from a worker thread. Its first message goes through a oneshot
/// channel, and carries the receiver of a bounded channel for the messages after it only when
/// there are any: the usual response, head and body at once, costs one small allocation.
pub struct StreamReply {
    first: Option<oneshot::Sender<Opening>>,
    rest: Option<mpsc::Sender<ReplyMsg>>,
    cancelled: Arc<AtomicBool>,
    doorbell: Arc<Doorbell>,
    /// How a send waits for room: blocking the thread (None), or a greenlet's park.
    park: Option<Arc<dyn Park>>,
}

/// How first messages reach the HTTP/2 thread: queued here, and the thread is woken only if
/// it sleeps (and was not woken already). Sending each one straight to its stream's task woke
/// the thread for every response (an eventfd write each), and each wake-up ended in a socket
/// write of one response; queued, the responses that come while the thread runs go out
/// together, in fewer writes.
#[derive(Default)]
pub(super) struct Doorbell {
    queue: std::sync::Mutex<Vec<(oneshot::Sender<Opening>, Opening)>>,
    /// The HTTP/2 thread is about to sleep, or sleeps.
    parked: AtomicBool,
    /// Someone woke it since it parked.
    rung: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Doorbell {
    fn push(&self, to: oneshot::Sender<Opening>, opening: Opening) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((to, opening));
        // Sequentially consistent with `before_park`: either this sees the thread parked, or
        // the thread sees the message queued.
        if self.parked.load(Ordering::SeqCst) && !self.rung.swap(true, Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }

    /// The HTTP/2 thread is about to sleep: it must not if messages wait.
    pub(super) fn before_park(&self) {
        self.parked.store(true, Ordering::SeqCst);
        let waiting = !self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if waiting {
            self.notify.notify_one();
        }
    }

    /// The HTTP/2 thread runs again.
    pub(super) fn after_unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
        self.rung.store(false, Ordering::SeqCst);
    }

    /// The task that hands the queued messages to their streams (in the HTTP/2 thread, where
    /// waking a stream's task costs no system call).
    pub(super) async fn deliver(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.notify.notified().await;
            std::mem::swap(
                &mut batch,
                &mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()),
            );
            for (to, opening) in batch.drain(..) {
                // A stream reset meanwhile has dropped its receiver: nothing to do.
                let _ = to.send(opening);
            }
        }
    }
}

/// A response's first message, and where the next ones come from.
#[derive(Debug)]
pub(super) struct Opening {
    pub(super) msg: ReplyMsg,
    pub(super) rest: Option<mpsc::Receiver<ReplyMsg>>,
}

impl StreamReply {
    pub(super) fn new(
        first: oneshot::Sender<Opening>,
        cancelled: Arc<AtomicBool>,
        doorbell: Arc<Doorbell>,
    ) -> StreamReply {
        StreamReply {
            first: Some(first),
            rest: None,
            cancelled,
            doorbell,
            park: None,
        }
    }

    /// Sends `msg`, waiting while the client's flow-control window and the channel are full
    /// (the stream's task resets a stream stalled past `--timeout`, which ends the wait).
    /// Err when the stream is gone: reset by the client, stalled, or its connection lost.
    pub fn send(&mut self, msg: ReplyMsg) -> io::Result<()> {
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the HTTP/2 stream was reset");
        if let Some(first) = self.first.take() {
            let last = matches!(msg, ReplyMsg::Whole { .. });
            let rest = if last {
                None
            } else {
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                self.rest = Some(tx);
                Some(rx)
            };
            if self.cancelled.load(Ordering::Acquire) {
                return Err(gone());
            }
            self.doorbell.push(first, Opening { msg, rest });
            return Ok(());
        }
        let Some(rest) = &self.rest else {
            return Err(gone());
        };
        match &self.park {
            None => rest.blocking_send(msg).map_err(|_| gone()),
            Some(park) => wait_on(rest.send(msg), park.as_ref())?.map_err(|_| gone()),
        }
    }

    /// Sends an informational response (103 Early Hints).
    pub fn informational(&mut self, status: u16, fields: Vec<(String, String)>) -> io::Result<()> {
        self.send(ReplyMsg::Informational(status, fields))
    }

    /// Sends the response head; its body follows with [`StreamReply::data`].
    pub fn head(&mut self, status: u16, fields: Vec<(String, String)>) -> io::Result<()> {
        self.send(ReplyMsg::Head { status, fields })
    }

    /// Sends the head and the whole body at once (one message, one wake-up of the HTTP/2
    /// thread).
    pub fn whole(
        &mut self,
        status: u16,
        fields: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> io::Result<()> {
        self.send(ReplyMsg::Whole {
            status,
            fields,
            body: Bytes::from(body),
        })
    }

    /// Sends body bytes; `end` with the last of them.
    pub fn data(&mut self, data: Vec<u8>, end: bool) -> io::Result<()> {
        self.send(ReplyMsg::Data {
            data: Bytes::from(data),
            end,
        })
    }

    /// The client reset the stream (or the connection is gone) before the app ran: the
    /// worker skips it rather than run the app for nobody (rapid reset, CVE-2023-44487).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// A stream's request, for a worker to run the app on.
pub struct StreamJob {
    /// The request head, read by the HTTP/1 rules ([`super::request::to_request`]).
    pub req: Request,
    /// The connection's peer, local address and TLS state.
    pub conn: ConnInfo,
    pub body: StreamBody,
    pub reply: StreamReply,
}

impl StreamJob {
    /// Makes the body's reads and the reply's sends wait with `park` instead of blocking the
    /// thread (a greenlet worker, whose thread is the hub's).
    pub fn park_with(&mut self, park: Arc<dyn Park>) {
        self.body.park = Some(Arc::clone(&park));
        self.reply.park = Some(park);
    }
}

/// What serves the streams of HTTP/2 connections: the worker class hands each stream to a
/// thread (gthread's pool) or a greenlet.
pub trait Dispatch: Send + Sync + 'static {
    /// Queues a stream's request. It need not wake anyone: [`Dispatch::flush`] follows.
    fn dispatch(&self, job: StreamJob);
    /// Called when the HTTP/2 thread has nothing left to do and is about to wait: wake what
    /// runs the requests queued since the last flush. Waking once per batch rather than once
    /// per stream saves a thread switch per request when many streams arrive together.
    fn flush(&self) {}
}

/// Fields that belong to one HTTP/1 connection, never sent on HTTP/2 (RFC 9113 §8.2.2).
pub(super) const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

/// A response page split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    /// Lower-case names.
    pub fields: Vec<(String, String)>,
    pub body: Bytes,
}

/// Splits one of this server's own HTTP/1 pages (an error page, 103 Early Hints, both built
/// as bytes for HTTP/1 connections) into status, fields and body, to send as HTTP/2 frames.
/// Connection-specific fields are dropped (RFC 9113 §8.2.2). None for anything else.
pub fn split_page(page: &[u8]) -> Option<Page> {
    let end = page.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&page[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")?
        .get(2..5)?
        .parse()
        .ok()?;
    let mut fields = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let lower = name.trim().to_ascii_lowercase();
        if CONNECTION_SPECIFIC.contains(&lower.as_str()) {
            continue;
        }
        fields.push((lower, value.trim().to_string()));
    }
    Some(Page {
        status,
        fields,
        body: Bytes::copy_from_slice(&page[end + 4..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_into_status_fields_and_body() {
        let page = gunicorn_http::error_page(400, "Bad Request", "Invalid HTTP Version");
        let Page {
            status,
            fields,
            body,
        } = split_page(&page).unwrap();
        assert_eq!(status, 400);
        assert!(fields.iter().all(|(n, _)| n != "connection"));
        assert!(fields.contains(&("content-type".into(), "text/html".into())));
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .contains("Invalid HTTP Version"));
        let hints = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
        let Page {
            status,
            fields,
            body,
        } = split_page(hints).unwrap();
        assert_eq!((status, body.len()), (103, 0));
        assert_eq!(
            fields,
            [("link".to_string(), "</s.css>; rel=preload".to_string())]
        );
        assert!(split_page(b"garbage").is_none());
    }

    /// A park for a plain thread: the waker unparks it; each park is counted.
    struct ThreadPark {
        thread: std::thread::Thread,
        parks: std::sync::atomic::AtomicUsize,
    }

    impl std::task::Wake for ThreadPark {
        fn wake(self: Arc<Self>) {
            self.thread.unpark();
        }
    }

    struct Parked(Arc<ThreadPark>);

    impl Park for Parked {
        fn waker(&self) -> std::task::Waker {
            std::task::Waker::from(Arc::clone(&self.0))
        }

        fn park(&self) -> io::Result<()> {
            self.0.parks.fetch_add(1, Ordering::Relaxed);
            std::thread::park_timeout(std::time::Duration::from_secs(1));
            Ok(())
        }
    }

    fn parked() -> (Arc<ThreadPark>, Arc<dyn Park>) {
        let inner = Arc::new(ThreadPark {
            thread: std::thread::current(),
            parks: std::sync::atomic::AtomicUsize::new(0),
        });
        (Arc::clone(&inner), Arc::new(Parked(inner)))
    }

    #[test]
    fn parked_sends_wait_for_room_and_parked_reads_for_data() {
        // A response of 20 pieces through a channel of CHANNEL_DEPTH, drained slowly by
        // another thread: the sends park while it is full, and every piece arrives in order.
        let doorbell = Arc::new(Doorbell::default());
        let (first_tx, _first_rx) = oneshot::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut reply = StreamReply::new(first_tx, cancelled, Arc::clone(&doorbell));
        let (counter, park) = parked();
        reply.park = Some(park);
        reply.head(200, Vec::new()).unwrap();
        let (_to, opening) = doorbell.queue.lock().unwrap().pop().unwrap();
        assert!(matches!(opening.msg, ReplyMsg::Head { status: 200, .. }));
        let mut rest = opening.rest.unwrap();
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(ReplyMsg::Data { data, end }) = rest.blocking_recv() {
                std::thread::sleep(std::time::Duration::from_millis(2));
                got.push(data[0]);
                if end {
                    break;
                }
            }
            got
        });
        for i in 0..20u8 {
            reply.data(vec![i; 8], i == 19).unwrap();
        }
        assert_eq!(consumer.join().unwrap(), (0..20).collect::<Vec<u8>>());
        assert!(counter.parks.load(Ordering::Relaxed) > 0, "never parked");
        // A body read parks until DATA comes from another thread, then reads to the end.
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let mut body = StreamBody::new(rx);
        let (counter, park) = parked();
        body.park = Some(park);
        let producer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            tx.blocking_send(BodyMsg::Data(Bytes::from_static(b"late")))
                .unwrap();
            tx.blocking_send(BodyMsg::End).unwrap();
        });
        let mut all = String::new();
        body.read_to_string(&mut all).unwrap();
        producer.join().unwrap();
        assert_eq!(all, "late");
        assert!(counter.parks.load(Ordering::Relaxed) > 0, "never parked");
    }

    #[test]
    fn the_body_reads_to_its_end_or_its_failure() {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let mut body = StreamBody::new(rx);
        tx.try_send(BodyMsg::Data(Bytes::from_static(b"hello ")))
            .unwrap();
        tx.try_send(BodyMsg::Data(Bytes::from_static(b"world")))
            .unwrap();
        tx.try_send(BodyMsg::End).unwrap();
        let mut all = String::new();
        body.read_to_string(&mut all).unwrap();
        assert_eq!(all, "hello world");
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let mut body = StreamBody::new(rx);
        tx.try_send(BodyMsg::Data(Bytes::from_static(b"x")))
            .unwrap();
        drop(tx);
        let mut all = Vec::new();
        assert!(body.read_to_end(&mut all).is_err());
    }
}
