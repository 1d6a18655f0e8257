//! What an exception from the application (or while sending its response) becomes: gunicorn's
//! 500 page and `Error handling request` log line with the traceback, or, when the request body
//! was the problem, the answer a parse error gets; nothing but a log line once the head went out.

use gunicorn_core::{log_debug, log_exception, log_warning};
use gunicorn_http::{error_page, ConnInfo, HttpError, Request};
use gunicorn_serve::reject::peer_ip;
use pyo3::prelude::*;

use super::exchange::Exchange;
use super::respond::log_client_gone;
use crate::pyerr::format_exception;

/// An exception from the app or while sending its response.
pub(crate) fn app_error(
    py: Python<'_>,
    req: &Request,
    conn: &ConnInfo,
    exchange: &Exchange,
    err: PyErr,
) {
    let (head_sent, write_failed, body_error) = {
        let st = exchange.lock();
        (st.reply.started(), st.write_failed, st.body_error.clone())
    };
    if write_failed {
        log_debug!("Ignoring EPIPE");
        return;
    }
    if let Some(body_error) = body_error {
        // The request body was malformed or cut short and the app did not catch it:
        // answered like a parse error (gunicorn's handle_error), or just closed when the
        // client went away mid-body.
        if matches!(body_error, HttpError::NoMoreData) {
            log_debug!(
                "Ignoring premature end of request body from ip={}",
                peer_ip(conn)
            );
            return;
        }
        log_warning!("Invalid request from ip={}: {}", peer_ip(conn), body_error);
        if body_error.sends_response() && !head_sent {
            let page = error_page(
                body_error.status(),
                body_error.reason(),
                &body_error.message(),
            );
            write_error_page(py, exchange, body_error.status(), &page);
        }
        return;
    }
    let traceback = format_exception(py, &err);
    if head_sent {
        // Too late for an error page: log it, the worker closes the connection.
        log_exception!("Error handling request\n{}", traceback.trim_end());
        return;
    }
    log_exception!(
        "Error handling request {}\n{}",
        req.uri,
        traceback.trim_end()
    );
    let page = error_page(500, "Internal Server Error", "");
    write_error_page(py, exchange, 500, &page);
}

fn write_error_page(py: Python<'_>, exchange: &Exchange, status: u16, page: &[u8]) {
    let r = exchange.blocking_io(py, || {
        let mut st = exchange.lock();
        st.mark_error_page(status);
        st.write_raw(page)
    });
    if let Err(e) = r {
        log_client_gone(&e);
    }
}
