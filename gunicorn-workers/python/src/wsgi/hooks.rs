//! The request hooks around the application: gunicorn's `pre_request` (whose default logs
//! `METHOD PATH` at debug level) and `post_request`, which sees the environ and what was sent.

use gunicorn_core::log_debug;
use gunicorn_http::Request;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::exchange::{Exchange, Outcome, Reply};

/// Whether the configuration defines `pre_request` and `post_request` (known since the
/// config was loaded).
pub(crate) fn wanted() -> (bool, bool) {
    crate::server_hooks::request_hooks()
}

/// Runs `pre_request`, or logs its default line; returns the request object the hook was
/// given (`post_request` gets the same one). A raising hook is handled like an app error.
pub(crate) fn pre_request<'py>(
    py: Python<'py>,
    req: &Request,
    hooked: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if hooked {
        crate::server_hooks::pre_request(py, req).map(Some)
    } else {
        log_debug!("{} {}", req.method, req.path);
        Ok(None)
    }
}

/// Runs the `post_request` server hook with what was sent.
pub(crate) fn post_request(
    py: Python<'_>,
    req: &Request,
    req_obj: Option<&Bound<'_, PyAny>>,
    environ: Option<&Bound<'_, PyDict>>,
    exchange: &Exchange,
    outcome: &Outcome,
) {
    let (status, headers) = {
        let st = exchange.lock();
        let status = match (st.reply, &st.response) {
            (Reply::ErrorPage(code), _) => Some(crate::server_hooks::error_status_text(code)),
            (Reply::HeadSent, Some(r)) => Some(r.status_line().to_string()),
            _ => None,
        };
        let headers = match (&st.response, st.reply) {
            (Some(r), Reply::Unsent | Reply::HeadSent) => r.header_pairs(),
            _ => Vec::new(),
        };
        (status, headers)
    };
    let resp = crate::server_hooks::ResponseInfo {
        status,
        headers: &headers,
        sent: outcome.body_bytes,
    };
    crate::server_hooks::post_request(py, req, req_obj, environ, resp);
}
