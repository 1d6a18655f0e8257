//! A connection's [`Transport`] as tokio's `AsyncRead`/`AsyncWrite`, which the h2 crate runs
//! on: each operation is the transport's non-blocking `try_` form, and a would-block waits for
//! the descriptor's readiness in the runtime's reactor. Bytes the worker read before handing
//! the connection over (the HTTP/2 preface, read while looking for a request head) are read
//! first. A connection upgraded from HTTP/1.1 (`Upgrade: h2c`) has its input rewritten on the
//! way by a [`Splice`].

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::upgrade::Splice;
use crate::sys::{register, Registered};
use crate::transport::Transport;

/// A transport driven by the tokio reactor.
pub struct AsyncTransport {
    io: AsyncFd<Registered>,
    prefix: Vec<u8>,
    prefix_pos: usize,
    /// An upgraded connection's rewriting, until it lets everything through.
    splice: Option<Splice>,
    /// Rewritten input not given out yet.
    spliced: Vec<u8>,
    spliced_pos: usize,
}

impl AsyncTransport {
    /// Registers `io`'s descriptor with the current runtime's reactor. Must run inside the
    /// runtime.
    pub fn new(
        io: Box<dyn Transport>,
        prefix: Vec<u8>,
        splice: Option<Splice>,
    ) -> io::Result<AsyncTransport> {
        Ok(AsyncTransport {
            io: register(io)?,
            prefix,
            prefix_pos: 0,
            splice,
            spliced: Vec::new(),
            spliced_pos: 0,
        })
    }

    /// Reads through the splice of an upgraded connection: its own bytes first, then rewritten
    /// input. None once it lets everything through (read the raw input then).
    fn poll_spliced(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Option<Poll<io::Result<()>>> {
        loop {
            if self.spliced_pos < self.spliced.len() {
                let n = (self.spliced.len() - self.spliced_pos).min(buf.remaining());
                buf.put_slice(&self.spliced[self.spliced_pos..self.spliced_pos + n]);
                self.spliced_pos += n;
                return Some(Poll::Ready(Ok(())));
            }
            self.spliced.clear();
            self.spliced_pos = 0;
            let splice = self.splice.as_mut()?;
            if splice.has_output() {
                let ours = splice.produce(buf.remaining());
                buf.put_slice(ours);
                return Some(Poll::Ready(Ok(())));
            }
            if splice.is_through() {
                self.splice = None;
                return None;
            }
            let mut raw = [0u8; 4096];
            let mut raw_buf = ReadBuf::new(&mut raw);
            match self.poll_raw(cx, &mut raw_buf) {
                Poll::Pending => return Some(Poll::Pending),
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                // The end of input: the h2 connection sees it as such.
                Poll::Ready(Ok(())) if raw_buf.filled().is_empty() => {
                    return Some(Poll::Ready(Ok(())))
                }
                Poll::Ready(Ok(())) => {
                    let splice = self.splice.as_mut()?;
                    if let Err(e) = splice.consume(raw_buf.filled(), &mut self.spliced) {
                        return Some(Poll::Ready(Err(e)));
                    }
                }
            }
        }
    }
}

/// Maps a `try_` result to the `WouldBlock` error `AsyncFdReadyGuard::try_io` expects.
fn would_block<T>(r: io::Result<Option<T>>) -> io::Result<T> {
    match r {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

impl AsyncRead for AsyncTransport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.splice.is_some() || this.spliced_pos < this.spliced.len() {
            if let Some(done) = this.poll_spliced(cx, buf) {
                return done;
            }
        }
        this.poll_raw(cx, buf)
    }
}

impl AsyncTransport {
    /// The input as the client sent it: the bytes read before the hand-over, then the socket.
    fn poll_raw(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self;
        if this.prefix_pos < this.prefix.len() {
            let rest = &this.prefix[this.prefix_pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.prefix_pos += n;
            if this.prefix_pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.prefix_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        loop {
            // Decrypted TLS records may wait with no new byte on the socket: no readiness
            // event would announce them.
            if this.io.get_ref().0.has_buffered_input() {
                let n = would_block(this.io.get_mut().0.try_read(buf.initialize_unfilled()));
                match n {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let mut guard = ready!(this.io.poll_read_ready_mut(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|io| would_block(io.get_mut().0.try_read(unfilled))) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for AsyncTransport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.io.poll_write_ready_mut(cx))?;
            match guard.try_io(|io| would_block(io.get_mut().0.try_write(data))) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.io.poll_write_ready_mut(cx))?;
            let flushed = guard.try_io(|io| match io.get_mut().0.try_flush() {
                Ok(true) => Ok(()),
                Ok(false) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(e),
            });
            match flushed {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        // Over TLS this sends close_notify first (RFC 8446 §6.1). A peer that already closed
        // (ENOTCONN) leaves nothing to shut down.
        match self.get_mut().io.get_mut().0.shutdown_write() {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            r => Poll::Ready(r),
        }
    }
}
