//! The control socket client (gunicorn's `ctl/client.py`): one connection, one request at a
//! time, each answered before the next is sent.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gunicorn_core::arbiter::control::protocol::{self, FrameDecoder, MAX_RESPONSE};
use serde_json::Value as Json;

/// How long a request may wait for its answer (gunicorn's client default).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to the server; the text is what `gunicornc` prints after `Error: `.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection.
    #[error("Failed to connect to {}: {}", path.display(), python_errno(source))]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The connection broke or the answer is unreadable.
    #[error("Communication error: {0}")]
    Communication(String),
    /// The server answered with an error.
    #[error("{0}")]
    Server(String),
}

/// An OS error as Python shows it (`[Errno 2] No such file or directory`).
fn python_errno(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let suffix = format!(" (os error {code})");
            format!(
                "[Errno {code}] {}",
                text.strip_suffix(&suffix).unwrap_or(&text)
            )
        }
        None => e.to_string(),
    }
}

/// A connection to a control socket.
#[derive(Debug)]
pub struct ControlClient {
    path: PathBuf,
    stream: Option<UnixStream>,
    next_id: u64,
}

impl ControlClient {
    /// A client of the socket at `path` (not connected yet).
    pub fn new(path: &Path) -> ControlClient {
        ControlClient {
            path: path.to_path_buf(),
            stream: None,
            next_id: 0,
        }
    }

    /// Connects, unless connected.
    pub fn connect(&mut self) -> Result<(), ClientError> {
        if self.stream.is_some() {
            return Ok(());
        }
        let connect_err = |source| ClientError::Connect {
            path: self.path.clone(),
            source,
        };
        let stream = UnixStream::connect(&self.path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(connect_err)?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(connect_err)?;
        self.stream = Some(stream);
        Ok(())
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Sends `command` and returns the answer's `data`.
    pub fn send_command(&mut self, command: &str) -> Result<Json, ClientError> {
        self.connect()?;
        self.next_id += 1;
        let request = protocol::request(self.next_id, command, &[]);
        let answer = match self.exchange(&request) {
            Ok(a) => a,
            Err(e) => {
                self.close();
                return Err(e);
            }
        };
        if answer.get("status").and_then(Json::as_str) == Some("error") {
            let message = match answer.get("error") {
                Some(Json::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "Unknown error".into(),
            };
            return Err(ClientError::Server(message));
        }
        Ok(answer
            .get("data")
            .cloned()
            .unwrap_or_else(|| Json::Object(Default::default())))
    }

    fn exchange(&mut self, request: &Json) -> Result<Json, ClientError> {
        let comm = |e: io::Error| ClientError::Communication(io_text(&e));
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClientError::Communication("not connected".into()));
        };
        stream.write_all(&protocol::encode(request)).map_err(comm)?;
        let mut decoder = FrameDecoder::new(MAX_RESPONSE);
        let mut buf = vec![0u8; 64 * 1024];
        let mut first = true;
        loop {
            match decoder.next_payload() {
                Ok(Some(payload)) => {
                    return protocol::decode(&payload)
                        .map_err(|e| ClientError::Communication(e.to_string()))
                }
                Ok(None) => {}
                Err(e) => return Err(ClientError::Communication(e.to_string())),
            }
            let want = decoder.wanted().min(buf.len());
            let n = stream.read(&mut buf[..want]).map_err(comm)?;
            if n == 0 {
                let what = if first {
                    "Connection closed"
                } else {
                    "Incomplete payload"
                };
                return Err(ClientError::Communication(what.into()));
            }
            first = false;
            decoder.feed(&buf[..n]);
        }
    }
}

/// A read or write failure in Python's words where they differ (`timed out`).
fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".into(),
        _ => python_errno(e),
    }
}

/// Splits a typed line into the command words and the arguments (gunicorn's client
/// `parse_command`): words up to the first number or `-...` word are the command.
pub fn parse_line(line: &str) -> Result<(String, Vec<String>), &'static str> {
    let mut command = Vec::new();
    let mut args = Vec::new();
    for part in protocol::split_words(line)? {
        let numeric = !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
        if args.is_empty() && !numeric && !part.starts_with('-') {
            command.push(part);
        } else {
            args.push(part);
        }
    }
    Ok((command.join(" "), args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_command_and_args() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("show workers", "show workers", &[]),
            ("worker add 2", "worker add", &["2"]),
            ("worker remove -1 x", "worker remove", &["-1", "x"]),
            ("worker add x", "worker add x", &[]),
            ("", "", &[]),
        ];
        for (line, cmd, args) in cases {
            let (c, a) = parse_line(line).unwrap();
            assert_eq!(c, *cmd, "{line}");
            assert_eq!(a, *args, "{line}");
        }
        assert!(parse_line("show 'x").is_err());
    }

    #[test]
    fn os_errors_read_like_pythons() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(python_errno(&e), "[Errno 2] No such file or directory");
    }
}
