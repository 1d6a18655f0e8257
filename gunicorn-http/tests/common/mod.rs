//! Shared by the corpus test and the bounded fuzz tests: reading `tests/requests/` cases and
//! driving the sans-IO parser over a byte stream split into arbitrary pieces.
#![allow(dead_code)]

use gunicorn_http::{
    build_environ, AllowList, BodyDecoder, ConnInfo, HeaderMapPolicy, HttpConfig, HttpError,
    Limits, Local, Peer, ProxyMode, RequestParser,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The corpus root: `<workspace>/tests/requests`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/requests")
}

/// Decodes the escaped text of a `.http` file (format in tests/requests/README.md): literal
/// line breaks are layout only; `\r \n \t \0 \\ \xHH` are bytes; `\*N(c)` is `c` N times.
pub fn unescape(text: &str, ignore_newlines: bool) -> Result<Vec<u8>, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if ignore_newlines && (c == b'\n' || c == b'\r') {
            i += 1;
            continue;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let esc = *b.get(i + 1).ok_or("trailing backslash")?;
        i += 2;
        match esc {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = std::str::from_utf8(b.get(i..i + 2).ok_or("short \\x")?)
                    .map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| format!("bad \\x{hex}: {e}"))?);
                i += 2;
            }
            b'*' => {
                let open = b[i..]
                    .iter()
                    .position(|&x| x == b'(')
                    .ok_or("\\* without (")?
                    + i;
                let n: usize = std::str::from_utf8(&b[i..open])
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e| format!("bad count: {e}"))?;
                let ch = *b.get(open + 1).ok_or("\\*N( without char")?;
                if b.get(open + 2) != Some(&b')') {
                    return Err("\\*N(c) takes one character".into());
                }
                out.extend(std::iter::repeat_n(ch, n));
                i = open + 3;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    Ok(out)
}

/// One expectation block (a request), as ordered `key = value` pairs.
pub type Block = Vec<(String, String)>;

/// A corpus case: its name, input bytes, connection settings and one block per request.
pub struct Case {
    pub name: String,
    pub input: Vec<u8>,
    pub cfg: HttpConfig,
    pub conn: ConnInfo,
    pub blocks: Vec<Block>,
}

/// Parses a `.expect` file: `key = value` lines, `#` comments, `---` between requests.
/// `setting.*` keys (any block) configure the connection.
pub fn load_case(http: &Path) -> Result<Case, String> {
    let name = http
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_string();
    let text = std::fs::read_to_string(http).map_err(|e| format!("{name}: {e}"))?;
    let input = unescape(&text, true).map_err(|e| format!("{name}.http: {e}"))?;
    let exp_path = http.with_extension("expect");
    let exp = std::fs::read_to_string(&exp_path).map_err(|e| format!("{name}.expect: {e}"))?;
    let mut blocks: Vec<Block> = vec![Vec::new()];
    let mut cfg = HttpConfig::default();
    let mut conn = ConnInfo {
        peer: Peer::Tcp("127.0.0.1:45678".parse().unwrap()),
        local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        tls: None,
    };
    let (mut line_l, mut fields_l, mut size_l) = (4094u64, 100u64, 8190u64);
    for raw in exp.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "---" {
            blocks.push(Vec::new());
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{name}.expect: no '=' in {line:?}"))?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        let bad = |what: &str| format!("{name}.expect: bad {what} {v:?}");
        if let Some(setting) = k.strip_prefix("setting.") {
            let flag = || v == "true";
            let list = || {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            };
            match setting {
                "limit_request_line" => line_l = v.parse().map_err(|_| bad(setting))?,
                "limit_request_fields" => fields_l = v.parse().map_err(|_| bad(setting))?,
                "limit_request_field_size" => size_l = v.parse().map_err(|_| bad(setting))?,
                "permit_unconventional_http_method" => {
                    cfg.permit_unconventional_http_method = flag()
                }
                "permit_unconventional_http_version" => {
                    cfg.permit_unconventional_http_version = flag()
                }
                "casefold_http_method" => cfg.casefold_http_method = flag(),
                "permit_obsolete_folding" => cfg.permit_obsolete_folding = flag(),
                "strip_header_spaces" => cfg.strip_header_spaces = flag(),
                "is_ssl" => cfg.is_ssl = flag(),
                "header_map" => {
                    cfg.header_map = HeaderMapPolicy::parse(&v).ok_or_else(|| bad(setting))?
                }
                "forwarder_headers" => cfg.forwarder_headers = list(),
                "forwarded_allow_ips" => {
                    cfg.forwarded_allow_ips = AllowList::parse(&list()).map_err(|_| bad(setting))?
                }
                "proxy_allow_ips" => {
                    cfg.proxy_allow_ips = AllowList::parse(&list()).map_err(|_| bad(setting))?
                }
                "script_name" => cfg.script_name = v.clone(),
                "proxy_protocol" => {
                    cfg.proxy_protocol = match v.as_str() {
                        "off" => ProxyMode::Off,
                        "v1" => ProxyMode::V1,
                        "v2" => ProxyMode::V2,
                        "auto" => ProxyMode::Auto,
                        _ => return Err(bad(setting)),
                    }
                }
                "peer" => {
                    conn.peer = if v == "unix" {
                        Peer::Unix
                    } else {
                        Peer::Tcp(v.parse().map_err(|_| bad(setting))?)
                    }
                }
                "local" => {
                    conn.local = match v.strip_prefix("unix:") {
                        Some(p) => Local::Unix(p.to_string()),
                        None => Local::Tcp(v.parse().map_err(|_| bad(setting))?),
                    }
                }
                _ => return Err(format!("{name}.expect: unknown setting {setting}")),
            }
            continue;
        }
        blocks.last_mut().unwrap().push((k, v));
    }
    cfg.limits = Limits::from_settings(line_l, fields_l, size_l);
    blocks.retain(|b| !b.is_empty());
    Ok(Case {
        name,
        input,
        cfg,
        conn,
        blocks,
    })
}

/// All `.http` files of a corpus directory, sorted.
pub fn list_cases(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join(dir))
        .unwrap_or_else(|e| panic!("reading tests/requests/{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "http"))
        .collect();
    v.sort();
    v
}

/// What happened to one request of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A parsed request: its fields rendered as `key = value` pairs (see [`summarise`]).
    Request(Vec<(String, String)>),
    /// The stream failed at `stage` (`head`, `environ` or `body`).
    Error {
        stage: &'static str,
        error: HttpError,
    },
}

fn esc(bytes: &str) -> String {
    let mut s = String::new();
    for c in bytes.chars() {
        match c {
            '\r' => s.push_str("\\r"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s
}

fn esc_bytes(b: &[u8]) -> String {
    esc(&b.iter().map(|&c| c as char).collect::<String>())
}

/// Drives one connection over `input`, fed in pieces whose sizes `next_piece` picks
/// (0 = everything left). Stops after an error; at end of input an unfinished head or body
/// is reported as the error the caller would see at EOF.
pub fn drive(
    case_cfg: &HttpConfig,
    conn: &ConnInfo,
    input: &[u8],
    mut next_piece: impl FnMut() -> usize,
) -> Vec<Outcome> {
    let cfg = Arc::new(case_cfg.clone());
    let mut parser = RequestParser::new(cfg.clone(), conn.clone());
    let mut outcomes = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut feed = |buf: &mut Vec<u8>| -> bool {
        if fed >= input.len() {
            return false;
        }
        let n = match next_piece() {
            0 => input.len() - fed,
            n => n.min(input.len() - fed),
        };
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        true
    };
    loop {
        // Head.
        let (req, used) = loop {
            match parser.parse_head(&buf) {
                Ok(Some(x)) => break x,
                Ok(None) => {
                    if !feed(&mut buf) {
                        if !buf.is_empty() {
                            outcomes.push(Outcome::Error {
                                stage: "head",
                                error: HttpError::NoMoreData,
                            });
                        }
                        return outcomes;
                    }
                }
                Err(error) => {
                    outcomes.push(Outcome::Error {
                        stage: "head",
                        error,
                    });
                    return outcomes;
                }
            }
        };
        assert!(used <= buf.len(), "parse_head used more bytes than given");
        buf.drain(..used);
        let mut s = summarise(&req);
        match build_environ(&req, conn, parser.proxy_info(), &cfg) {
            Ok(env) => {
                for (k, v) in &env.vars {
                    s.push((format!("environ.{k}"), esc(v)));
                }
            }
            Err(error) => {
                outcomes.push(Outcome::Error {
                    stage: "environ",
                    error,
                });
                return outcomes;
            }
        }
        if let Some(p) = parser.proxy_info() {
            s.push(("proxy.protocol".into(), p.protocol.into()));
            if let Some(c) = p.client {
                s.push(("proxy.client".into(), c.to_string()));
            }
            if let Some(c) = p.proxy {
                s.push(("proxy.proxy".into(), c.to_string()));
            }
        }
        // Body.
        let mut dec = BodyDecoder::new(&req.body, cfg.clone());
        let mut body = Vec::new();
        while !dec.is_done() {
            match dec.decode(&buf, &mut body) {
                Ok(n) => {
                    assert!(n <= buf.len(), "decode consumed more bytes than given");
                    buf.drain(..n);
                    if dec.is_done() {
                        break;
                    }
                    assert!(buf.is_empty(), "decoder stopped early without finishing");
                    if !feed(&mut buf) {
                        if let Err(error) = dec.eof() {
                            outcomes.push(Outcome::Error {
                                stage: "body",
                                error,
                            });
                            return outcomes;
                        }
                        break;
                    }
                }
                Err(error) => {
                    outcomes.push(Outcome::Error {
                        stage: "body",
                        error,
                    });
                    return outcomes;
                }
            }
        }
        s.push(("body".into(), esc_bytes(&body)));
        for (n, v) in dec.trailers() {
            s.push((
                "trailer".into(),
                format!("{n}: {}", esc(v)).trim_end().to_string(),
            ));
        }
        outcomes.push(Outcome::Request(s));
        if req.should_close() {
            // The connection ends; any further bytes are never read.
            return outcomes;
        }
        if buf.is_empty() && !feed(&mut buf) {
            return outcomes;
        }
    }
}

/// A request's head fields as `key = value` pairs, the keys an `.expect` file may name.
pub fn summarise(r: &gunicorn_http::Request) -> Vec<(String, String)> {
    let mut s = vec![
        ("method".to_string(), esc(&r.method)),
        ("uri".into(), esc(&r.uri)),
        ("path".into(), esc(&r.path)),
        ("query".into(), esc(&r.query)),
        ("fragment".into(), esc(&r.fragment)),
        ("version".into(), format!("{}.{}", r.version.0, r.version.1)),
        ("scheme".into(), r.scheme.into()),
        ("expect_continue".into(), r.expect_continue.to_string()),
        ("should_close".into(), r.should_close().to_string()),
        (
            "body_kind".into(),
            match r.body {
                gunicorn_http::BodyKind::Length(n) => format!("length:{n}"),
                gunicorn_http::BodyKind::Chunked => "chunked".into(),
            },
        ),
    ];
    for (n, v) in &r.headers {
        s.push((
            "header".into(),
            format!("{n}: {}", esc(v)).trim_end().to_string(),
        ));
    }
    s
}

/// Small deterministic generator (xorshift64*), for piece sizes and mutations.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// A seed from a name (FNV-1a), so every case has its own fixed sequence.
pub fn seed_of(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h | 1
}
