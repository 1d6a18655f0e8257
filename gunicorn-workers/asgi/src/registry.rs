//! The open connections of a worker: the heartbeat closes the idle ones, the graceful stop
//! waits for none to be left. Weak references: a connection lives as long as its protocol.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use gunicorn_http::ConnInfo;

use crate::connection::Connection;
use crate::shared::Shared;

#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<u64, Weak<Connection>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// A connection accepted with `info`, registered; None when its TLS session cannot be set
    /// up (out of memory in rustls), and the caller closes it.
    pub(crate) fn open(&self, shared: &Arc<Shared>, info: ConnInfo) -> Option<Arc<Connection>> {
        let tls = match &shared.tls {
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
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::downgrade(&conn));
        Some(conn)
    }

    /// The connection closed (`connection_lost`).
    pub(crate) fn close(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn open_connections(&self) -> Vec<Arc<Connection>> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }
}
