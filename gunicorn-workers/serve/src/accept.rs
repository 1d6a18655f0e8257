//! Taking connections off a listener, in batches, through core's `Listener` (which hands out
//! blocking, close-on-exec streams): one loop, one treatment of `accept(2)`'s errors, for
//! every worker class that accepts itself. (The greenlet classes accept in Python's hub.)

use std::io;
use std::ops::ControlFlow;

use gunicorn_core::{log_error, Listener, Stream};
use gunicorn_http::{ConnInfo, Local};

/// Why a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEnd {
    /// The listener has no connection waiting (or `accept` failed, which is logged).
    Empty,
    /// `limit` connections were taken; more may be waiting.
    Limit,
    /// The caller said stop.
    Stopped,
}

/// Accepts up to `limit` connections from a non-blocking `listener` (whose address the
/// environ reports as `local`), handing each to `serve`.
///
/// `EINTR` and `ECONNABORTED` (a client that gave up while queued) are retried; another
/// worker winning the race shows as `EAGAIN` and ends the batch; other errors (`EMFILE`...)
/// are logged as gunicorn logs them and end the batch.
pub fn accept_batch(
    listener: &Listener,
    local: &Local,
    limit: usize,
    mut serve: impl FnMut(Stream, ConnInfo) -> ControlFlow<()>,
) -> BatchEnd {
    let mut taken = 0;
    while taken < limit {
        match listener.accept() {
            Ok((stream, peer)) => {
                taken += 1;
                let conn = crate::addr::conn_info(peer, local.clone());
                if serve(stream, conn).is_break() {
                    return BatchEnd::Stopped;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return BatchEnd::Empty,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                log_error!("Error accepting a connection: {e}");
                return BatchEnd::Empty;
            }
        }
    }
    BatchEnd::Limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn batches_end_empty_at_the_limit_or_when_told() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        tcp.set_nonblocking(true).unwrap();
        let listener = Listener::Tcp(tcp);
        let local = Local::Tcp(addr);
        let clients: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut peers = Vec::new();
        let mut take = |limit, stop_after| {
            let mut n = 0;
            accept_batch(&listener, &local, limit, |_, conn| {
                peers.push(conn.peer);
                n += 1;
                if n == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        };
        assert_eq!(take(2, 0), BatchEnd::Limit);
        assert_eq!(take(10, 1), BatchEnd::Stopped);
        assert_eq!(take(10, 0), BatchEnd::Empty);
        assert_eq!(take(10, 0), BatchEnd::Empty);
        assert_eq!(peers.len(), clients.len());
        assert!(peers
            .iter()
            .all(|p| matches!(p, gunicorn_http::Peer::Tcp(a) if a.ip() == addr.ip())));
    }
}
