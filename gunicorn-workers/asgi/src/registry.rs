//! The open connections of a worker: the heartbeat closes the idle ones, the graceful stop
//! waits for none to be left, and `--worker-connections` bounds how many are served at once.
//! Weak references: a connection lives as long as its protocol.
//!
//! The event loop accepts every connection the kernel hands it (asyncio has no way to pause a
//! server's accepts); past `--worker-connections` a connection waits unread (reading paused),
//! in arrival order, until a served one closes, as connections wait in the listen backlog of a
//! gthread or gevent worker at its limit. gunicorn 27's asgi worker does not bound them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use gunicorn_http::ConnInfo;

use crate::connection::Connection;
use crate::shared::Shared;

pub struct Registry {
    conns: Mutex<Slots>,
    next_id: AtomicU64,
    /// `--worker-connections`.
    limit: usize,
}

/// The connections, and which of them are served.
#[derive(Default)]
struct Slots {
    /// Every open connection; true when it is served (holds one of `limit` slots).
    all: HashMap<u64, (Weak<Connection>, bool)>,
    /// Connections waiting for a slot, oldest first.
    waiting: VecDeque<u64>,
    served: usize,
}

impl Slots {
    /// Serves waiting connections, oldest first, while fewer than `limit` are served; returns
    /// them (the caller lets them read).
    fn admit_while_under(&mut self, limit: usize) -> Vec<Arc<Connection>> {
        let mut admitted = Vec::new();
        while self.served < limit {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            let Some(entry) = self.all.get_mut(&next) else {
                continue;
            };
            let Some(conn) = entry.0.upgrade() else {
                continue;
            };
            entry.1 = true;
            self.served += 1;
            admitted.push(conn);
        }
        admitted
    }
}

/// Whether a new connection is served now or waits for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Served,
    Waiting,
}

impl Registry {
    pub fn new(limit: usize) -> Registry {
        Registry {
            conns: Mutex::new(Slots::default()),
            next_id: AtomicU64::new(0),
            limit: limit.max(1),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection accepted with `info`, registered, served at once or waiting for a slot;
    /// None when its TLS session cannot be set up (out of memory in rustls), and the caller
    /// closes it.
    pub(crate) fn open(
        &self,
        shared: &Arc<Shared>,
        info: ConnInfo,
    ) -> Option<(Arc<Connection>, Admission)> {
        let tls = match &shared.s.tls {
            None => None,
            Some(acceptor) => match acceptor.session() {
                Ok(session) => Some(Box::new(session)),
                Err(e) => {
                    gunicorn_serve::tls::handshake_failed(&info, &e);
                    return None;
                }
            },
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection::new(id, Arc::clone(shared), info, tls));
        let mut slots = self.slots();
        let admission = if slots.served < self.limit {
            slots.served += 1;
            Admission::Served
        } else {
            slots.waiting.push_back(id);
            Admission::Waiting
        };
        let served = admission == Admission::Served;
        slots.all.insert(id, (Arc::downgrade(&conn), served));
        Some((conn, admission))
    }

    /// The connection closed (`connection_lost`). Returns the waiting connections that take
    /// the slot it freed (the caller lets them read).
    pub(crate) fn close(&self, id: u64) -> Vec<Arc<Connection>> {
        let mut slots = self.slots();
        match slots.all.remove(&id) {
            Some((_, true)) => slots.served -= 1,
            Some((_, false)) => slots.waiting.retain(|w| *w != id),
            None => {}
        }
        slots.admit_while_under(self.limit)
    }

    /// A graceful stop: every waiting connection is served now (its request answered with
    /// `Connection: close`) rather than dropped with the worker, past the limit for the time
    /// the stop takes.
    pub(crate) fn admit_all(&self) -> Vec<Arc<Connection>> {
        self.slots().admit_while_under(usize::MAX)
    }

    pub(crate) fn open_connections(&self) -> Vec<Arc<Connection>> {
        self.slots()
            .all
            .values()
            .filter_map(|(w, _)| w.upgrade())
            .collect()
    }
}
