//! The control socket's wire protocol and command grammar, sans-IO (gunicorn 25.1's
//! `gunicorn/ctl/protocol.py` and the dispatch of `ctl/server.py`), shared by the arbiter's
//! server and the `gunicornc` client.
//!
//! A message is a 4-byte big-endian length and that many bytes of UTF-8 JSON. A request is
//! `{"id": 1, "command": "worker add", "args": ["2"]}`; the answer carries the same `id` and
//! either `{"status": "ok", "data": {...}}` or `{"status": "error", "error": "message"}`.
//! gunicorn's own `gunicornc` drives this server, and ours drives gunicorn.

use serde_json::{json, Value as Json};

/// The largest request the server reads. gunicorn's limit is 16 MiB for both sides; no command
/// comes near 1 KiB, so the arbiter refuses more than 64 KiB instead of buffering it.
pub const MAX_REQUEST: u32 = 64 * 1024;

/// The largest answer the client reads (gunicorn's `MAX_MESSAGE_SIZE`).
pub const MAX_RESPONSE: u32 = 16 * 1024 * 1024;

/// A message that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The length prefix announces more than the reader accepts.
    #[error("Message too large: {0}")]
    TooLarge(u32),
    /// The payload is not UTF-8 JSON.
    #[error("Invalid JSON: {0}")]
    Json(String),
    /// The payload is JSON but not an object.
    #[error("Invalid request: not a JSON object")]
    NotAnObject,
}

/// Frames `message` for the wire: length prefix, then the JSON.
pub fn encode(message: &Json) -> Vec<u8> {
    let payload = message.to_string().into_bytes();
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Collects bytes from a stream and cuts them into messages, refusing any whose announced length
/// is over `max` before its payload is buffered.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: u32,
}

impl FrameDecoder {
    /// A decoder accepting payloads of at most `max` bytes.
    pub fn new(max: u32) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// True when part of a message is buffered (a peer that stops here is stalled mid-message).
    pub fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// How many more bytes the buffered message needs: the reader never reads past a message,
    /// so a peer cannot make it buffer more than one (4 while the prefix is incomplete).
    pub fn wanted(&self) -> usize {
        match self.announced() {
            Some(len) => (4 + len as usize).saturating_sub(self.buf.len()).max(1),
            None => 4 - self.buf.len(),
        }
    }

    fn announced(&self) -> Option<u32> {
        let prefix: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(prefix))
    }

    /// The next complete payload, `None` while one is incomplete.
    pub fn next_payload(&mut self) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(len) = self.announced() else {
            return Ok(None);
        };
        if len > self.max {
            return Err(ProtocolError::TooLarge(len));
        }
        let end = 4 + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[4..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(payload))
    }
}

/// Reads a payload as a JSON object.
pub fn decode(payload: &[u8]) -> Result<Json, ProtocolError> {
    let text = std::str::from_utf8(payload).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let value: Json = serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ProtocolError::NotAnObject)
    }
}

/// gunicorn's `make_request`.
pub fn request(id: u64, command: &str, args: &[String]) -> Json {
    json!({"id": id, "command": command, "args": args})
}

/// gunicorn's `make_response`.
pub fn ok_response(id: &Json, data: Json) -> Json {
    json!({"id": id, "status": "ok", "data": data})
}

/// gunicorn's `make_error_response`.
pub fn error_response(id: &Json, error: &str) -> Json {
    json!({"id": id, "status": "error", "error": error})
}

/// How `shutdown` stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// SIGTERM: workers finish their requests within `graceful_timeout`.
    Graceful,
    /// SIGINT: workers stop at once.
    Quick,
}

impl ShutdownMode {
    /// The name the answer carries (`"mode": "graceful"`).
    pub fn name(self) -> &'static str {
        match self {
            ShutdownMode::Graceful => "graceful",
            ShutdownMode::Quick => "quick",
        }
    }
}

/// What to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowTarget {
    /// `show all`: the master, the workers and the dirty arbiter.
    All,
    /// `show workers`.
    Workers,
    /// `show dirty`: the dirty arbiter and its workers.
    Dirty,
    /// `show config`.
    Config,
    /// `show stats`.
    Stats,
    /// `show listeners`.
    Listeners,
}

/// A command of gunicorn's control grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `show TARGET`.
    Show(ShowTarget),
    /// `worker add [N]`: N more workers (at least 1).
    WorkerAdd(u64),
    /// `worker remove [N]`: N fewer workers, never fewer than 1.
    WorkerRemove(u64),
    /// `worker kill PID`: SIGTERM to that worker (the master replaces it).
    WorkerKill(i64),
    /// `dirty add [N]`.
    DirtyAdd(u64),
    /// `dirty remove [N]`.
    DirtyRemove(u64),
    /// `reload`: as SIGHUP.
    Reload,
    /// `reopen`: as SIGUSR1.
    Reopen,
    /// `shutdown [graceful|quick]`: as SIGTERM or SIGINT.
    Shutdown(ShutdownMode),
    /// `help`.
    Help,
}

/// A request that names no valid command. The text is what the client prints after
/// `Error: `, gunicorn's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// An empty command.
    #[error("Empty command")]
    Empty,
    /// A malformed command or argument (gunicorn's `ValueError` path).
    #[error("Invalid argument: {0}")]
    Invalid(String),
    /// A valid command that could not be carried out.
    #[error("Command failed: {0}")]
    Failed(String),
}

fn invalid(msg: impl Into<String>) -> CommandError {
    CommandError::Invalid(msg.into())
}

/// The command and its argument list of a decoded request, as gunicorn's `_dispatch` takes them:
/// `command` is split like a shell line and `args` appended.
pub fn parse_request(request: &Json) -> Result<Command, CommandError> {
    let command = match request.get("command") {
        None | Some(Json::Null) => "",
        Some(Json::String(s)) => s.trim(),
        Some(_) => return Err(invalid("command must be a string")),
    };
    if command.is_empty() {
        return Err(CommandError::Empty);
    }
    let mut parts = split_words(command).map_err(invalid)?;
    match request.get("args") {
        None | Some(Json::Null) => {}
        Some(Json::Array(args)) => parts.extend(args.iter().map(python_str)),
        Some(_) => return Err(invalid("args must be a list")),
    }
    parse_command(&parts)
}

/// Python's `str()` of a JSON value, as gunicorn turns each of `args` into a word.
fn python_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Null => "None".into(),
        other => other.to_string(),
    }
}

/// The command of a list of words (gunicorn's `_execute_command`). Command words are
/// case-insensitive.
pub fn parse_command(parts: &[String]) -> Result<Command, CommandError> {
    let Some((first, rest)) = parts.split_first() else {
        return Err(CommandError::Empty);
    };
    let arg = |i: usize| rest.get(i).map(String::as_str);
    match first.to_lowercase().as_str() {
        "show" => {
            let target = arg(0).ok_or_else(|| {
                invalid("Missing show target (all|workers|dirty|config|stats|listeners)")
            })?;
            let target = match target.to_lowercase().as_str() {
                "all" => ShowTarget::All,
                "workers" => ShowTarget::Workers,
                "dirty" => ShowTarget::Dirty,
                "config" => ShowTarget::Config,
                "stats" => ShowTarget::Stats,
                "listeners" => ShowTarget::Listeners,
                _ => {
                    return Err(invalid(format!(
                        "Unknown show target: {}",
                        target.to_lowercase()
                    )))
                }
            };
            Ok(Command::Show(target))
        }
        "worker" => {
            let action =
                arg(0).ok_or_else(|| invalid("Missing worker action (add|remove|kill)"))?;
            match action.to_lowercase().as_str() {
                "add" => Ok(Command::WorkerAdd(count(arg(1))?)),
                "remove" => Ok(Command::WorkerRemove(count(arg(1))?)),
                "kill" => {
                    let pid = arg(1).ok_or_else(|| invalid("Missing PID for worker kill"))?;
                    Ok(Command::WorkerKill(python_int(pid)?))
                }
                other => Err(invalid(format!("Unknown worker action: {other}"))),
            }
        }
        "dirty" => {
            let action = arg(0).ok_or_else(|| invalid("Missing dirty action (add|remove)"))?;
            match action.to_lowercase().as_str() {
                "add" => Ok(Command::DirtyAdd(count(arg(1))?)),
                "remove" => Ok(Command::DirtyRemove(count(arg(1))?)),
                other => Err(invalid(format!("Unknown dirty action: {other}"))),
            }
        }
        "reload" => Ok(Command::Reload),
        "reopen" => Ok(Command::Reopen),
        "shutdown" => match arg(0).map(str::to_lowercase).as_deref() {
            None | Some("graceful") => Ok(Command::Shutdown(ShutdownMode::Graceful)),
            Some("quick") => Ok(Command::Shutdown(ShutdownMode::Quick)),
            // gunicorn takes any other word as graceful; a typo should not stop a server.
            Some(other) => Err(invalid(format!(
                "Unknown shutdown mode: {other} (graceful|quick)"
            ))),
        },
        "help" => Ok(Command::Help),
        other => Err(invalid(format!("Unknown command: {other}"))),
    }
}

/// A worker count argument: absent means 1, and less than 1 counts as 1 (gunicorn's
/// `max(1, int(count))`).
fn count(arg: Option<&str>) -> Result<u64, CommandError> {
    match arg {
        None => Ok(1),
        Some(text) => Ok(python_int(text)?.max(1) as u64),
    }
}

/// Python's `int(text)` for the integers a command takes: optional sign, decimal digits,
/// underscores between digits, surrounding spaces.
fn python_int(text: &str) -> Result<i64, CommandError> {
    let bad = || {
        invalid(format!(
            "invalid literal for int() with base 10: {}",
            crate::pyrepr::py_repr_str(text)
        ))
    };
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(bad());
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n: i64 = clean
        .parse()
        .map_err(|_| invalid(format!("number out of range: {t}")))?;
    Ok(if neg { -n } else { n })
}

/// Splits a command line into words as Python's `shlex.split` does (POSIX mode): blanks
/// separate words, single quotes keep everything, double quotes keep all but `\"` and `\\`,
/// a backslash outside quotes escapes the next character.
pub fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("No closing quotation"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("No closing quotation"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("No closing quotation"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("No escaped character"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The commands and their descriptions `help` answers with (gunicorn's list, in its order).
pub const HELP: &[(&str, &str)] = &[
    (
        "show all",
        "Show all processes (arbiter, web workers, dirty workers)",
    ),
    ("show workers", "List HTTP workers with their status"),
    ("show dirty", "List dirty workers and apps"),
    ("show config", "Show current effective configuration"),
    ("show stats", "Show server statistics"),
    ("show listeners", "Show bound sockets"),
    ("worker add [N]", "Spawn N workers (default 1)"),
    ("worker remove [N]", "Remove N workers (default 1)"),
    ("worker kill <PID>", "Gracefully terminate specific worker"),
    ("dirty add [N]", "Spawn N dirty workers (default 1)"),
    ("dirty remove [N]", "Remove N dirty workers (default 1)"),
    ("reload", "Graceful reload (HUP)"),
    ("reopen", "Reopen log files (USR1)"),
    ("shutdown [graceful|quick]", "Shutdown server (TERM/INT)"),
    ("help", "Show this help message"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn req(command: &str, args: Json) -> Json {
        json!({"id": 7, "command": command, "args": args})
    }

    #[test]
    fn commands_parse_as_gunicorn_dispatches_them() {
        use Command::*;
        let cases: &[(&str, Json, Result<Command, &str>)] = &[
            ("show workers", json!([]), Ok(Show(ShowTarget::Workers))),
            ("SHOW Stats", json!([]), Ok(Show(ShowTarget::Stats))),
            ("show all", json!([]), Ok(Show(ShowTarget::All))),
            ("show listeners", json!([]), Ok(Show(ShowTarget::Listeners))),
            ("worker add", json!([]), Ok(WorkerAdd(1))),
            ("worker add 3", json!([]), Ok(WorkerAdd(3))),
            ("worker add", json!(["2"]), Ok(WorkerAdd(2))),
            ("worker add", json!([4]), Ok(WorkerAdd(4))),
            ("worker add -5", json!([]), Ok(WorkerAdd(1))),
            ("worker add 0", json!([]), Ok(WorkerAdd(1))),
            ("worker remove 1_0", json!([]), Ok(WorkerRemove(10))),
            ("worker kill 1234", json!([]), Ok(WorkerKill(1234))),
            ("dirty add 2", json!([]), Ok(DirtyAdd(2))),
            ("reload", json!([]), Ok(Reload)),
            ("  reopen  ", json!(null), Ok(Reopen)),
            ("shutdown", json!([]), Ok(Shutdown(ShutdownMode::Graceful))),
            ("shutdown quick", json!([]), Ok(Shutdown(ShutdownMode::Quick))),
            ("help", json!([]), Ok(Help)),
            ("", json!([]), Err("Empty command")),
            ("   ", json!([]), Err("Empty command")),
            ("bogus", json!([]), Err("Invalid argument: Unknown command: bogus")),
            (
                "show",
                json!([]),
                Err("Invalid argument: Missing show target (all|workers|dirty|config|stats|listeners)"),
            ),
            ("show nope", json!([]), Err("Invalid argument: Unknown show target: nope")),
            (
                "worker",
                json!([]),
                Err("Invalid argument: Missing worker action (add|remove|kill)"),
            ),
            (
                "worker add x",
                json!([]),
                Err("Invalid argument: invalid literal for int() with base 10: 'x'"),
            ),
            ("worker kill", json!([]), Err("Invalid argument: Missing PID for worker kill")),
            ("worker jump", json!([]), Err("Invalid argument: Unknown worker action: jump")),
            ("dirty", json!([]), Err("Invalid argument: Missing dirty action (add|remove)")),
            ("show 'workers", json!([]), Err("Invalid argument: No closing quotation")),
            (
                "shutdown now",
                json!([]),
                Err("Invalid argument: Unknown shutdown mode: now (graceful|quick)"),
            ),
            (
                "worker add 99999999999999999999",
                json!([]),
                Err("Invalid argument: number out of range: 99999999999999999999"),
            ),
        ];
        for (command, args, want) in cases {
            let got = parse_request(&req(command, args.clone())).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{command:?} {args}");
        }
        let not_a_string = json!({"id": 1, "command": 5});
        assert!(parse_request(&not_a_string).is_err());
    }

    #[test]
    fn words_split_like_shlex() {
        let cases: &[(&str, Result<&[&str], &str>)] = &[
            ("worker add 2", Ok(&["worker", "add", "2"])),
            ("  show\tworkers ", Ok(&["show", "workers"])),
            ("a 'b c' \"d \\\" e\"", Ok(&["a", "b c", "d \" e"])),
            ("x\\ y", Ok(&["x y"])),
            ("''", Ok(&[""])),
            ("'open", Err("No closing quotation")),
            ("end\\", Err("No escaped character")),
        ];
        for (line, want) in cases {
            let got = split_words(line);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn frames_are_cut_and_bounded() {
        let msg = json!({"id": 1, "command": "help"});
        let wire = encode(&msg);
        assert_eq!(&wire[..4], &(wire.len() as u32 - 4).to_be_bytes());
        // Byte by byte, two messages back to back.
        let mut d = FrameDecoder::new(MAX_REQUEST);
        let mut got = Vec::new();
        for b in wire.iter().chain(wire.iter()) {
            assert!(d.wanted() >= 1);
            d.feed(&[*b]);
            while let Some(p) = d.next_payload().unwrap() {
                got.push(decode(&p).unwrap());
            }
        }
        assert_eq!(got, vec![msg.clone(), msg]);
        assert!(!d.is_partial());
        // A prefix announcing more than the bound is refused before any payload arrives.
        let mut big = FrameDecoder::new(MAX_REQUEST);
        big.feed(&(MAX_REQUEST + 1).to_be_bytes());
        assert_eq!(
            big.next_payload(),
            Err(ProtocolError::TooLarge(MAX_REQUEST + 1))
        );
        // The reader is never asked to read past the announced message.
        let mut d = FrameDecoder::new(MAX_REQUEST);
        d.feed(&10u32.to_be_bytes());
        d.feed(b"abc");
        assert_eq!(d.wanted(), 7);
    }

    #[test]
    fn payloads_must_be_json_objects() {
        assert!(matches!(decode(b"{nope"), Err(ProtocolError::Json(_))));
        assert!(matches!(decode(b"\xff"), Err(ProtocolError::Json(_))));
        assert_eq!(decode(b"[1]"), Err(ProtocolError::NotAnObject));
        assert_eq!(decode(b"{\"a\": 1}").unwrap(), json!({"a": 1}));
    }

    #[test]
    fn responses_have_gunicorns_shape() {
        let id = json!(3);
        assert_eq!(
            ok_response(&id, json!({"status": "reloading"})).to_string(),
            r#"{"id":3,"status":"ok","data":{"status":"reloading"}}"#
        );
        assert_eq!(
            error_response(&id, "Empty command").to_string(),
            r#"{"id":3,"status":"error","error":"Empty command"}"#
        );
        assert_eq!(
            request(1, "show workers", &[]).to_string(),
            r#"{"id":1,"command":"show workers","args":[]}"#
        );
    }
}
