//! End-to-end replay of the request corpus (`tests/requests/{valid,invalid}`, format in
//! `tests/requests/README.md`) through the real `gunicorn` binary, for the sync worker and the
//! gthread worker (`-k gthread --threads 2`).
//!
//! Cases are grouped by the server flags their `setting.*` lines need; one server runs per
//! group and worker class, serving `tests/apps/corpus_echo.py` (which reads the whole body,
//! then echoes every str environ value and the body). Each case's bytes go on a fresh
//! connection, whole and once split in two writes, and the client then half-closes.
//!
//! - Valid: every request's echoed environ must match its expectation block, the environ keys
//!   of the headers derived as gunicorn's reference (§8 "Using these vectors against a
//!   black-box server") says: `CONTENT-TYPE`/`CONTENT-LENGTH` become `CONTENT_*`, any other
//!   name `HTTP_` + name with `-` as `_`, repeats joined with `,`. gthread answers every
//!   pipelined request; sync answers the first and closes.
//! - Invalid: gunicorn's error page with the expected status and `Connection: close`, then a
//!   close, and an `Invalid request from ip=` warning; `NoMoreData` (EOF mid-request) gets no
//!   response. For the cases that frame a body (Content-Length / Transfer-Encoding), a second
//!   request appended after the bad one must never be answered (request smuggling).
//!
//! What a black box cannot observe is not checked: trailers, fragments, the body framing kind.
//! Settings that need a peer we cannot be (e.g. `203.0.113.50`) are emulated: the allow lists
//! are given so that our loopback peer gets the same trust decision as the case's peer, and
//! environ values naming the case's peer or listener are compared with ours instead.
//! Differences from the expectation are collected and reported together; none is tolerated.

#[path = "../../gunicorn-http/tests/common/mod.rs"]
mod common;
mod corpus_support;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{drive, list_cases, load_case, Block, Case, Outcome};
use corpus_support::{exchange, parse_echo, percent_decode, show, Reply, Seen, Target};
use gunicorn_http::{Local, Peer};
use support::{Gunicorn, Server, TempDir};

/// A request appended after a malformed one: it must never be answered.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: smuggled.example\r\n\r\n";
/// The warning every refused request (except a peer that went away) logs.
const INVALID_LOG: &str = "Invalid request from ip=";
/// How many servers of one worker class run at the same time.
const PARALLEL_SERVERS: usize = 6;
/// How many connections to one server are open at the same time.
const CLIENTS_PER_SERVER: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Sync,
    Gthread,
}

impl Class {
    fn args(self) -> &'static [&'static str] {
        match self {
            Class::Sync => &["-k", "sync", "-w", "2"],
            Class::Gthread => &["-k", "gthread", "--threads", "2", "-w", "1"],
        }
    }

    fn worker_processes(self) -> usize {
        match self {
            Class::Sync => 2,
            Class::Gthread => 1,
        }
    }

    /// How many split sends may be in flight at once while the server still reads each first
    /// piece as it arrives: sync blocks a process per connection (2 processes); gthread's
    /// poller reads every connection's head as bytes come, only the app needs a pool thread.
    fn paced_clients(self) -> usize {
        match self {
            Class::Sync => 2,
            Class::Gthread => 16,
        }
    }

    /// Whether the worker reads further requests of a connection (sync always closes after
    /// the first response, like gunicorn's sync worker).
    fn keeps_alive(self) -> bool {
        self == Class::Gthread
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bind {
    V4,
    V6,
    Unix,
}

/// What a server must be started with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    bind: Bind,
    flags: Vec<String>,
    script_name: Option<String>,
}

struct Plan {
    case: Case,
    valid: bool,
    group: Group,
    /// What gunicorn-http computes in process for the same bytes (the corpus test checks it
    /// against the expectation): the environ the worker must hand to the app, key for key.
    in_process: Vec<Outcome>,
}

/// The raw `setting.*` values of a case's `.expect` file (the shared loader already turned
/// them into an `HttpConfig`; the server needs them as command-line values).
fn raw_settings(http: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(http.with_extension("expect")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("setting."))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Our own peer address as the server sees it, for a listener of kind `bind`.
fn our_peer(bind: &Bind) -> Peer {
    match bind {
        Bind::V4 => Peer::Tcp("127.0.0.1:1".parse().unwrap()),
        Bind::V6 => Peer::Tcp("[::1]:1".parse().unwrap()),
        Bind::Unix => Peer::Unix,
    }
}

/// The server flags for a case, or why it cannot be replayed through a socket.
fn plan(http: &Path, valid: bool) -> Result<Plan, String> {
    let case = load_case(http)?;
    let raw = raw_settings(http);
    let bind = match (&case.conn.local, &case.conn.peer) {
        (Local::Unix(_), _) | (_, Peer::Unix) => Bind::Unix,
        (Local::Tcp(a), _) if a.is_ipv6() => Bind::V6,
        _ => Bind::V4,
    };
    let mut flags: Vec<String> = Vec::new();
    let mut script_name = None;
    for (key, value) in &raw {
        let mut push = |f: &str, v: Option<&str>| {
            flags.push(f.to_string());
            if let Some(v) = v {
                flags.push(v.to_string());
            }
        };
        let on = value == "true";
        match key.as_str() {
            "limit_request_line" => push("--limit-request-line", Some(value)),
            "limit_request_fields" => push("--limit-request-fields", Some(value)),
            "limit_request_field_size" => push("--limit-request-field_size", Some(value)),
            "permit_unconventional_http_method" if on => {
                push("--permit-unconventional-http-method", None)
            }
            "permit_unconventional_http_version" if on => {
                push("--permit-unconventional-http-version", None)
            }
            "casefold_http_method" if on => push("--casefold-http-method", None),
            "permit_obsolete_folding" if on => push("--permit-obsolete-folding", None),
            "strip_header_spaces" if on => push("--strip-header-spaces", None),
            "header_map" => push("--header-map", Some(value)),
            "forwarder_headers" => push("--forwarder-headers", Some(value)),
            "proxy_protocol" => push("--proxy-protocol", Some(value)),
            "script_name" => script_name = Some(value.clone()),
            "is_ssl" if on => {
                return Err("needs a TLS listener (the test client speaks plain TCP)".into())
            }
            // Handled below (trust emulation) or by the listener kind.
            "forwarded_allow_ips" | "proxy_allow_ips" | "peer" | "local" => {}
            _ if !on => {}
            other => return Err(format!("setting {other} has no server flag here")),
        }
    }
    // Trust: give each allow list so that our peer gets the case peer's decision.
    let ours = our_peer(&bind);
    for (list, key, flag) in [
        (
            &case.cfg.forwarded_allow_ips,
            "forwarded_allow_ips",
            "--forwarded-allow-ips",
        ),
        (
            &case.cfg.proxy_allow_ips,
            "proxy_allow_ips",
            "--proxy-allow-from",
        ),
    ] {
        let want = list.allows(&case.conn.peer);
        if want == list.allows(&ours) {
            if let Some(v) = raw.get(key) {
                flags.extend([flag.to_string(), v.clone()]);
            }
        } else if want {
            flags.extend([flag.to_string(), "*".to_string()]);
        } else if ours == Peer::Unix {
            return Err(format!("{key}: a unix peer is always trusted"));
        } else {
            // TEST-NET-1 (RFC 5737): never our loopback peer.
            flags.extend([flag.to_string(), "192.0.2.254".to_string()]);
        }
    }
    let in_process = drive(&case.cfg, &case.conn, &case.input, || 0);
    Ok(Plan {
        case,
        in_process,
        valid,
        group: Group {
            bind,
            flags,
            script_name,
        },
    })
}

/// A running server of one group.
struct Running {
    server: Server,
    target: Target,
    _dir: TempDir,
}

fn start(class: Class, group: &Group) -> Running {
    let dir = TempDir::new("corpus");
    let mut g = Gunicorn::new()
        .args(class.args())
        .args(&group.flags)
        .args(["--graceful-timeout", "5"]);
    let sock = dir.path().join("s.sock");
    g = match group.bind {
        Bind::V4 => g.args(["-b", "127.0.0.1:0"]),
        Bind::V6 => g.args(["-b", "[::1]:0"]),
        Bind::Unix => g.args(["-b", &format!("unix:{}", sock.display())]),
    };
    if let Some(s) = &group.script_name {
        g = g.env("SCRIPT_NAME", s);
    }
    let server = g.arg("corpus_echo:app").spawn();
    server.wait_booted(class.worker_processes());
    let target = match group.bind {
        Bind::Unix => Target::Unix(sock),
        _ => Target::Tcp(
            *server
                .listening_addrs()
                .first()
                .unwrap_or_else(|| panic!("no address; output:\n{}", server.output())),
        ),
    };
    Running {
        server,
        target,
        _dir: dir,
    }
}

/// The value of the first `key` line of a block.
fn get<'a>(block: &'a Block, key: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn unesc(v: &str) -> Vec<u8> {
    common::unescape(v, false).unwrap_or_else(|e| panic!("bad escape in {v:?}: {e}"))
}

/// The environ keys and values that a block's kept-header list implies.
fn header_environ(block: &Block) -> BTreeMap<String, Vec<u8>> {
    let mut env: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (_, line) in block.iter().filter(|(k, _)| k == "header") {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name = name.to_ascii_uppercase();
        let key = match name.as_str() {
            "CONTENT-TYPE" | "CONTENT-LENGTH" => name.replace('-', "_"),
            _ => format!("HTTP_{}", name.replace('-', "_")),
        };
        let value = unesc(value.strip_prefix(' ').unwrap_or(value));
        match env.get_mut(&key) {
            Some(v) => {
                v.push(b',');
                v.extend_from_slice(&value);
            }
            None => {
                env.insert(key, value);
            }
        }
    }
    env
}

/// Whether the environ `key` can be compared at all: a case whose peer is a unix socket but
/// whose listener is TCP (a combination no real socket has) is replayed on a unix listener,
/// so its SERVER_NAME/SERVER_PORT come from another rule.
fn comparable(key: &str, case: &Case, target: &Target) -> bool {
    let same_kind = matches!(
        (&case.conn.local, target),
        (Local::Tcp(_), Target::Tcp(_)) | (Local::Unix(_), Target::Unix(_))
    );
    same_kind || !matches!(key, "SERVER_NAME" | "SERVER_PORT")
}

/// An expected environ value that names the case's own peer or listener stands for ours.
fn localise(key: &str, want: Vec<u8>, case: &Case, seen: &Seen, target: &Target) -> Vec<u8> {
    let text = String::from_utf8_lossy(&want).into_owned();
    let ours: Option<String> = match (key, &case.conn.peer, &case.conn.local) {
        ("REMOTE_ADDR", Peer::Tcp(p), _) if text == p.ip().to_string() => {
            seen.client.map(|c| c.ip().to_string())
        }
        ("REMOTE_PORT", Peer::Tcp(p), _) if text == p.port().to_string() => {
            seen.client.map(|c| c.port().to_string())
        }
        ("SERVER_NAME", _, Local::Tcp(l)) if text == l.ip().to_string() => match target {
            Target::Tcp(a) => Some(a.ip().to_string()),
            Target::Unix(_) => None,
        },
        ("SERVER_PORT", _, Local::Tcp(l)) if text == l.port().to_string() => match target {
            Target::Tcp(a) => Some(a.port().to_string()),
            Target::Unix(_) => None,
        },
        ("SERVER_NAME", _, Local::Unix(path)) if &text == path => match target {
            Target::Unix(p) => Some(p.display().to_string()),
            Target::Tcp(_) => None,
        },
        _ => None,
    };
    ours.map_or(want, String::into_bytes)
}

/// Compares one echoed response with its request block.
fn check_reply(
    class: Class,
    reply: &Reply,
    block: &Block,
    last: bool,
    case: &Case,
    seen: &Seen,
    target: &Target,
) -> Vec<String> {
    let mut errs = Vec::new();
    if reply.status != 200 {
        return vec![format!(
            "status {:?}, want 200 (echo); body {:?}",
            reply.status_line,
            show(&reply.body)
        )];
    }
    let env = match parse_echo(&reply.body) {
        Ok(env) => env,
        Err(e) => return vec![format!("{e}; body {:?}", show(&reply.body))],
    };
    let mut expect = |key: &str, want: Option<Vec<u8>>, from: &str| {
        let got = env.get(key);
        if got != want.as_ref() {
            errs.push(format!(
                "{key} (from {from}): got {:?}, want {:?}",
                got.map(|g| show(g)),
                want.map(|w| show(&w))
            ));
        }
    };
    let mut headers_listed = false;
    for (k, v) in block {
        match k.as_str() {
            "method" => expect("REQUEST_METHOD", Some(unesc(v)), k),
            "uri" => expect("RAW_URI", Some(unesc(v)), k),
            "query" => expect("QUERY_STRING", Some(unesc(v)), k),
            "version" => expect("SERVER_PROTOCOL", Some(format!("HTTP/{v}").into_bytes()), k),
            "scheme" => expect("wsgi.url_scheme", Some(v.clone().into_bytes()), k),
            "path" => {
                let raw = unesc(v);
                let script = case.cfg.script_name.as_bytes();
                let rest = raw.strip_prefix(script).unwrap_or(&raw);
                expect("PATH_INFO", Some(percent_decode(rest)), k)
            }
            "header" => headers_listed = true,
            "headers" if v == "none" => headers_listed = true,
            "proxy.protocol" => expect("PROXY_PROTOCOL", Some(v.clone().into_bytes()), k),
            "proxy.client" | "proxy.proxy" => {
                let addr: SocketAddr = v.parse().expect("proxy address");
                let (a, p) = if k == "proxy.client" {
                    ("REMOTE_ADDR", "REMOTE_PORT")
                } else {
                    ("PROXY_ADDR", "PROXY_PORT")
                };
                expect(a, Some(addr.ip().to_string().into_bytes()), k);
                expect(p, Some(addr.port().to_string().into_bytes()), k);
            }
            _ => {
                if let Some(key) = k
                    .strip_prefix("environ.")
                    .filter(|key| comparable(key, case, target))
                {
                    let want =
                        (v != "!absent").then(|| localise(key, unesc(v), case, seen, target));
                    expect(key, want, k);
                }
                // fragment, trailer, body_kind: not observable through a socket.
            }
        }
    }
    expect(
        "wsgi.input",
        Some(get(block, "body").map(unesc).unwrap_or_default()),
        "body",
    );
    if headers_listed {
        let want = header_environ(block);
        let got: BTreeMap<String, Vec<u8>> = env
            .iter()
            .filter(|(k, _)| {
                k.starts_with("HTTP_") || *k == "CONTENT_TYPE" || *k == "CONTENT_LENGTH"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if got != want {
            let fmt = |m: &BTreeMap<String, Vec<u8>>| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", show(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            errs.push(format!(
                "header keys: got [{}], want [{}]",
                fmt(&got),
                fmt(&want)
            ));
        }
    }
    // Expect: 100-continue is answered before the app reads the body (HTTP/1.1 only).
    match get(block, "expect_continue") {
        Some("true") if reply.interim != [100] => {
            errs.push(format!("interim {:?}, want [100]", reply.interim))
        }
        Some("false") if !reply.interim.is_empty() => {
            errs.push(format!("interim {:?}, want none", reply.interim))
        }
        _ => {}
    }
    let conn = reply.header("Connection");
    let want_conn = match (class, get(block, "should_close")) {
        (Class::Sync, _) | (_, Some("true")) => Some("close"),
        // The server cannot know that the last request is the last one.
        (_, Some("false")) if !last => Some("keep-alive"),
        _ => None,
    };
    if want_conn.is_some() && conn.map(str::to_ascii_lowercase).as_deref() != want_conn {
        errs.push(format!("Connection: {conn:?}, want {want_conn:?}"));
    }
    errs
}

/// Compares the environ the app got with the one gunicorn-http builds in process for the same
/// request: every CGI key (values naming the case's peer or listener stand for ours), and no
/// `HTTP_*`/`CONTENT_*` key more or less.
fn check_in_process(
    reply: &Reply,
    fields: &[(String, String)],
    case: &Case,
    seen: &Seen,
    target: &Target,
) -> Vec<String> {
    let Ok(env) = parse_echo(&reply.body) else {
        return Vec::new(); // reported by check_reply
    };
    let mut errs = Vec::new();
    let mut want_keys = Vec::new();
    for (k, v) in fields {
        let Some(key) = k.strip_prefix("environ.") else {
            continue;
        };
        want_keys.push(key);
        if !comparable(key, case, target) {
            continue;
        }
        let want = localise(key, unesc(v), case, seen, target);
        if env.get(key) != Some(&want) {
            errs.push(format!(
                "{key}: app got {:?}, gunicorn-http builds {:?}",
                env.get(key).map(|g| show(g)),
                show(&want)
            ));
        }
    }
    for key in env.keys() {
        let header_key =
            key.starts_with("HTTP_") || key == "CONTENT_TYPE" || key == "CONTENT_LENGTH";
        if header_key && !want_keys.contains(&key.as_str()) {
            errs.push(format!(
                "{key}: app got it, gunicorn-http does not build it"
            ));
        }
    }
    errs
}

/// gunicorn's reason phrase for an error kind (reference §5; 501 and the SCRIPT_NAME 500
/// keep `Bad Request`; a malformed PROXY v2 header is a 400, see docs/http.md).
fn reason_of(kind: &str) -> &'static str {
    match kind {
        "LimitRequestLine" => "URI Too Long",
        "LimitRequestHeaders" => "Request Header Fields Too Large",
        "ExpectationFailed" => "Expectation Failed",
        "ForbiddenProxyRequest" => "Forbidden",
        _ => "Bad Request",
    }
}

/// Checks gunicorn's error page: `HTTP/1.1 <status> <reason>`, exactly `Connection: close`,
/// `Content-Type: text/html` and `Content-Length` (no Server or Date), and the html body.
fn check_error_page(reply: &Reply, status: &str, kind: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let reason = reason_of(kind);
    let want_line = format!("HTTP/1.1 {status} {reason}");
    if reply.status_line != want_line {
        errs.push(format!(
            "status line {:?}, want {want_line:?}; body {:?}",
            reply.status_line,
            show(&reply.body)
        ));
        return errs;
    }
    let names: Vec<String> = reply.headers.iter().map(|(k, _)| k.clone()).collect();
    if names != ["Connection", "Content-Type", "Content-Length"]
        || reply.header("Connection") != Some("close")
        || reply.header("Content-Type") != Some("text/html")
    {
        errs.push(format!("error page headers {:?}", reply.headers));
    }
    let prefix = format!(
        "<html>\n  <head>\n    <title>{reason}</title>\n  </head>\n  <body>\n    <h1><p>{reason}</p></h1>\n    "
    );
    if !reply.body.starts_with(prefix.as_bytes())
        || !reply.body.ends_with(b"\n  </body>\n</html>\n")
    {
        errs.push(format!("error page body {:?}", show(&reply.body)));
    }
    errs
}

/// The expected course of one connection.
struct Want<'a> {
    /// Request blocks that must be echoed, in order.
    echoed: Vec<&'a Block>,
    /// The error block answered after them (status, kind), when the server gets that far.
    error: Option<(&'a str, &'a str)>,
}

fn want_for<'a>(class: Class, plan: &'a Plan) -> Want<'a> {
    let blocks = &plan.case.blocks;
    let (requests, error) = match blocks.last() {
        Some(b) if !plan.valid => (
            &blocks[..blocks.len() - 1],
            Some((
                get(b, "status").unwrap_or("?"),
                get(b, "error").unwrap_or("?"),
            )),
        ),
        _ => (&blocks[..], None),
    };
    if !class.keeps_alive() && !requests.is_empty() {
        // sync answers the first request and closes: nothing after it is read.
        return Want {
            echoed: vec![&requests[0]],
            error: None,
        };
    }
    Want {
        echoed: requests.iter().collect(),
        error,
    }
}

/// Checks one connection; returns the mismatches and whether an `Invalid request` warning
/// must have been logged.
fn check_seen(class: Class, plan: &Plan, seen: &Seen, target: &Target) -> (Vec<String>, bool) {
    let want = want_for(class, plan);
    let mut errs = Vec::new();
    let page = matches!(want.error, Some((_, kind)) if kind != "NoMoreData");
    let n_want = want.echoed.len() + usize::from(page);
    if seen.replies.len() != n_want {
        errs.push(format!(
            "{} response(s) {:?}, want {n_want}",
            seen.replies.len(),
            seen.replies
                .iter()
                .map(|r| r.status_line.as_str())
                .collect::<Vec<_>>()
        ));
    }
    for (i, (reply, block)) in seen.replies.iter().zip(&want.echoed).enumerate() {
        let last = i + 1 == want.echoed.len() && want.error.is_none();
        for e in check_reply(class, reply, block, last, &plan.case, seen, target) {
            errs.push(format!("request {}: {e}", i + 1));
        }
        if let Some(Outcome::Request(fields)) = plan.in_process.get(i) {
            for e in check_in_process(reply, fields, &plan.case, seen, target) {
                errs.push(format!("request {} (vs in-process environ): {e}", i + 1));
            }
        }
    }
    if let (Some((status, kind)), Some(reply)) = (want.error, seen.replies.get(want.echoed.len())) {
        if page {
            errs.extend(check_error_page(reply, status, kind));
        }
    }
    if seen
        .replies
        .iter()
        .any(|r| r.body.windows(9).any(|w| w == b"/smuggled"))
    {
        errs.push("the request sent after the malformed one was answered (smuggling)".into());
    }
    if !seen.tail.is_empty() {
        errs.push(format!(
            "unparsable bytes after the responses: {:?}",
            show(&seen.tail)
        ));
    }
    if !seen.closed {
        errs.push("the server did not close the connection".into());
    }
    (errs, page)
}

/// Whether appending [`SMUGGLED`] keeps the case's outcome (the error comes from the bytes
/// before it, not from the end of input), so the appended request can be sent.
fn smuggle_eligible(plan: &Plan) -> bool {
    if plan.valid {
        return false;
    }
    let lower = plan.case.input.to_ascii_lowercase();
    let frames_body = [&b"content-length"[..], b"transfer-encoding"]
        .iter()
        .any(|n| lower.windows(n.len()).any(|w| w == *n));
    if !frames_body {
        return false;
    }
    let whole = || 0;
    let alone = drive(&plan.case.cfg, &plan.case.conn, &plan.case.input, whole);
    let mut longer = plan.case.input.clone();
    longer.extend_from_slice(SMUGGLED);
    let appended = drive(&plan.case.cfg, &plan.case.conn, &longer, whole);
    let is_error = |o: Option<&Outcome>| matches!(o, Some(Outcome::Error { error, .. }) if !matches!(error, gunicorn_http::HttpError::NoMoreData));
    alone.len() == appended.len() && is_error(alone.last()) && alone.last() == appended.last()
}

/// Replays every case of `plans` against one worker class; returns the failures.
fn replay(class: Class, plans: &[Plan]) -> Vec<String> {
    let mut groups: BTreeMap<&Group, Vec<&Plan>> = BTreeMap::new();
    for p in plans {
        groups.entry(&p.group).or_default().push(p);
    }
    let groups: Vec<(&Group, Vec<&Plan>)> = groups.into_iter().collect();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let exchanges = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_SERVERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((group, cases)) = groups.get(i) else {
                    break;
                };
                let fails = replay_group(class, group, cases, &exchanges);
                failures.lock().unwrap().extend(fails);
            });
        }
    });
    eprintln!(
        "{class:?}: {} cases in {} server groups, {} connections",
        plans.len(),
        groups.len(),
        exchanges.load(Ordering::Relaxed)
    );
    failures.into_inner().unwrap()
}

fn replay_group(
    class: Class,
    group: &Group,
    cases: &[&Plan],
    exchanges: &AtomicUsize,
) -> Vec<String> {
    let run = start(class, group);
    let mut jobs: Vec<(&Plan, &str, Vec<u8>, Option<usize>)> = Vec::new();
    let mut paced: Vec<(&Plan, &str, Vec<u8>, Option<usize>)> = Vec::new();
    for plan in cases {
        let input = &plan.case.input;
        jobs.push((plan, "whole", input.clone(), None));
        paced.push((plan, "split", input.clone(), Some(input.len() / 2)));
        if smuggle_eligible(plan) {
            let mut b = input.clone();
            b.extend_from_slice(SMUGGLED);
            jobs.push((plan, "smuggle", b, None));
        }
    }
    exchanges.fetch_add(jobs.len() + paced.len(), Ordering::Relaxed);
    let failures = Mutex::new(Vec::new());
    let logged_want = AtomicUsize::new(0);
    let with_log = Mutex::new(Vec::new());
    // Whole sends run many connections at once: a worker that waits for something on one
    // connection (e.g. a keep-alive timeout) does not serialise the run. Split sends run no
    // more connections than the server reads at once (`paced_clients`), so it is free to read
    // the first piece before the second arrives (with a full backlog both pieces would
    // already be queued when the connection is accepted).
    for (jobs, clients) in [(&jobs, CLIENTS_PER_SERVER), (&paced, class.paced_clients())] {
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..clients {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((plan, variant, bytes, split)) = jobs.get(i) else {
                        break;
                    };
                    let tag = format!(
                        "[{class:?}] {}/{} ({variant})",
                        if plan.valid { "valid" } else { "invalid" },
                        plan.case.name
                    );
                    let (errs, logs) = match exchange(&run.target, bytes, *split) {
                        Ok(seen) => check_seen(class, plan, &seen, &run.target),
                        Err(e) => (vec![e], false),
                    };
                    if logs {
                        logged_want.fetch_add(1, Ordering::Relaxed);
                        with_log.lock().unwrap().push(tag.clone());
                    }
                    let mut f = failures.lock().unwrap();
                    f.extend(errs.into_iter().map(|e| format!("{tag}: {e}")));
                });
            }
        });
    }
    let mut failures = failures.into_inner().unwrap();
    // Every refused request logs one warning (written before its connection closes; the
    // output pipe gets a bounded moment to deliver the lines).
    let want = logged_want.into_inner();
    if want > 0 {
        let _ = run
            .server
            .wait_for(INVALID_LOG, want, Duration::from_secs(10));
    }
    let lines: Vec<String> = run
        .server
        .output()
        .lines()
        .filter(|l| l.contains(INVALID_LOG))
        .map(str::to_string)
        .collect();
    if lines.len() != want {
        failures.push(format!(
            "[{class:?}] server {:?}: {} `{INVALID_LOG}` lines, want one per refused request \
             ({want}: {:?}); lines:\n  {}",
            group.flags,
            lines.len(),
            with_log.into_inner().unwrap(),
            lines.join("\n  ")
        ));
    }
    failures
}

/// Every replayable case; cases that cannot go through a socket are printed and skipped.
fn all_plans() -> Vec<Plan> {
    let mut plans = Vec::new();
    for (dir, valid) in [("valid", true), ("invalid", false)] {
        for path in list_cases(dir) {
            match plan(&path, valid) {
                Ok(p) => plans.push(p),
                Err(why) => eprintln!(
                    "not replayed: {dir}/{}: {why}",
                    path.file_stem().unwrap().to_string_lossy()
                ),
            }
        }
    }
    plans
}

fn run_class(class: Class) {
    let plans = all_plans();
    assert!(plans.len() > 300, "only {} corpus cases found", plans.len());
    let started = std::time::Instant::now();
    let failures = replay(class, &plans);
    // Printed, never asserted (timings are not test results).
    eprintln!("{class:?}: replay took {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} difference(s) from the corpus expectations:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_through_sync_worker() {
    run_class(Class::Sync);
}

#[test]
fn corpus_through_gthread_worker() {
    run_class(Class::Gthread);
}
