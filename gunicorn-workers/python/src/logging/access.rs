//! The access-log record of one WSGI request, handed to gunicorn-core as plain data.

use std::time::Duration;

use gunicorn_core::access_log::{self, AccessRecord, AccessSource};
use gunicorn_core::log::LocalTime;
use gunicorn_http::{Environ, Request, Response};

/// The response headers the access format's `%({name}o)s` reads: a WSGI response's own, or a
/// list of pairs (the ASGI worker's).
pub trait ResponseHeaders {
    /// The value of the last header named `name`, in any case (gunicorn builds a dict from the
    /// list, so a repeated name keeps its last value).
    fn last_value(&self, name: &str) -> Option<&str>;
}

impl ResponseHeaders for Vec<(String, String)> {
    fn last_value(&self, name: &str) -> Option<&str> {
        last(self.iter().map(|(k, v)| (k.as_str(), v.as_str())), name)
    }
}

/// A WSGI exchange's response, if the app started one.
impl ResponseHeaders for Option<Response> {
    fn last_value(&self, name: &str) -> Option<&str> {
        last(self.as_ref()?.headers(), name)
    }
}

/// The request and response fields the access format can refer to.
struct View<'a> {
    req: &'a Request,
    environ: &'a Environ,
    response_headers: &'a dyn ResponseHeaders,
}

/// The last pair whose name matches `name` case-insensitively (gunicorn builds dicts from
/// these lists, so a repeated name keeps its last value).
fn last<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, name: &str) -> Option<&'a str> {
    pairs
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .last()
        .map(|(_, v)| v)
}

impl AccessSource for View<'_> {
    fn environ(&self, name: &str) -> Option<&str> {
        // The one non-CGI key people log; the rest of `wsgi.*` is Python objects.
        if name.eq_ignore_ascii_case("wsgi.url_scheme") {
            return Some(self.req.scheme);
        }
        last(
            self.environ
                .vars
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_str())),
            name,
        )
    }

    fn request_header(&self, name: &str) -> Option<&str> {
        last(self.req.headers.iter(), name)
    }

    fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.last_value(name)
    }
}

/// Whether a finished request needs [`record`] (an access log, syslog access lines or StatsD).
pub fn wanted() -> bool {
    access_log::wanted()
}

/// Writes the access line and the metrics of one request. Runs without Python.
pub fn record(
    req: &Request,
    environ: &Environ,
    response_headers: &dyn ResponseHeaders,
    status: u16,
    sent: u64,
    duration: Duration,
) {
    let view = View {
        req,
        environ,
        response_headers,
    };
    access_log::record(&AccessRecord {
        source: &view,
        status,
        sent: Some(sent),
        duration,
        pid: std::process::id(),
        time: LocalTime::now(),
    });
}
