//! The TLS part of the harness: certificates made with the `openssl` command in a temp dir,
//! the https port of a server, and curl and Python as clients, each run bounded in time.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::cell::Cell;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{parse_listening, skip, Finished, Gunicorn, Server, TempDir, BOOT_TIMEOUT};

/// How long a client command (curl, python) may run before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The extensions of the certificates: a CA, a server for localhost/127.0.0.1, a client (X.509
/// v3 with `extendedKeyUsage=clientAuth`: webpki refuses v1 client certificates).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
";

/// The `openssl` command: /usr/bin/openssl when there is one, else the one on PATH.
pub fn openssl_binary() -> PathBuf {
    let usr = PathBuf::from("/usr/bin/openssl");
    if usr.exists() {
        usr
    } else {
        PathBuf::from("openssl")
    }
}

/// Whether `program ARG` runs and succeeds; prints a skip line when it does not.
fn have_command(program: impl AsRef<std::ffi::OsStr>, arg: &str, what: &str) -> bool {
    let found = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(&format!("the {what} command is not installed"));
    }
    found
}

/// Whether the `openssl` command runs; prints a skip line when it does not.
pub fn have_openssl() -> bool {
    have_command(openssl_binary(), "version", "openssl")
}

/// Whether the `curl` command runs; prints a skip line when it does not.
pub fn have_curl() -> bool {
    have_command("curl", "--version", "curl")
}

/// The Python the server runs with (the tests' virtualenv), else python3.
pub fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) => PathBuf::from(venv).join("bin/python"),
        None => PathBuf::from("python3"),
    }
}

/// Runs `cmd` to its end with no stdin, killed (and the test failed) after [`CLIENT_TIMEOUT`].
/// The output is collected while it runs (a client writing more than a pipe holds would
/// otherwise block forever).
pub fn run_bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(CLIENT_TIMEOUT) {
        Ok(out) => out.expect("client output"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            let out = rx.recv().expect("client killed").expect("client output");
            panic!(
                "{cmd:?} did not finish in {CLIENT_TIMEOUT:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The port of the `Listening at: https://127.0.0.1:PORT (PID)` line (waits for it).
pub fn https_port(server: &Server) -> u16 {
    let Some(lines) = server.wait_for("Listening at: ", 1, BOOT_TIMEOUT) else {
        panic!("no `Listening at:` line; output:\n{}", server.output());
    };
    assert!(
        lines[0].contains("Listening at: https://"),
        "not an https listener: {}",
        lines[0]
    );
    match parse_listening(&lines[0]).first() {
        Some(addr) => addr.port(),
        None => panic!("no address in {}", lines[0]),
    }
}

/// Binds `gunicorn` to a free port, starts it, waits for `workers` workers; the server and its
/// https port.
pub fn start_https(gunicorn: Gunicorn, workers: usize) -> (Server, u16) {
    let server = gunicorn.bind_free_port().spawn();
    server.wait_booted(workers);
    let port = https_port(&server);
    (server, port)
}

/// Runs `gunicorn -k WORKER ARGS APP` on a free port to its end (for settings that must stop
/// it before any worker).
pub fn run_to_end(worker: &str, args: &[&str], app: &str) -> Finished {
    Gunicorn::new()
        .args(["-k", worker])
        .args(args)
        .arg(app)
        .bind_free_port()
        .run()
}

/// What curl did: its exit status (0: the exchange completed), the HTTP status (0 when there
/// was none), the body and its stderr.
pub struct Curl {
    pub exit: i32,
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

impl Curl {
    pub fn ok(&self) -> bool {
        self.exit == 0
    }
}

/// A test PKI in a temp dir (`dir`, for the test's other files too): a CA (`ca.pem`,
/// `ca.key`) and whatever certificates and keys the test asks for, all made with the `openssl`
/// command (which must be installed: see [`have_openssl`] for tests that skip without it).
/// Keys are EC P-256.
pub struct Pki {
    pub dir: TempDir,
    serial: Cell<u32>,
}

impl Pki {
    /// A temp dir tagged `tag` with a CA of subject `ca_subject` (e.g. `/CN=Test CA`).
    pub fn new(tag: &str, ca_subject: &str) -> Pki {
        let pki = Pki {
            dir: TempDir::new(tag),
            serial: Cell::new(1),
        };
        pki.dir.write("openssl.cnf", OPENSSL_CNF);
        pki.openssl(
            "req -x509 -new -config openssl.cnf -extensions ca -newkey ec \
             -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30",
            &["-subj", ca_subject],
        );
        pki
    }

    /// `NAME.pem` and `NAME.key`: a server certificate for localhost and 127.0.0.1.
    pub fn server(self, name: &str, subject: &str) -> Pki {
        self.issue(name, "server", subject);
        self
    }

    /// `NAME.pem` and `NAME.key`: a client certificate (X.509 v3, clientAuth).
    pub fn client(self, name: &str, subject: &str) -> Pki {
        self.issue(name, "client", subject);
        self
    }

    /// `to`: the key `from` encrypted (AES-256) with the passphrase `pass`.
    pub fn encrypted_key(self, from: &str, to: &str, pass: &str) -> Pki {
        self.openssl(
            &format!("pkey -in {from} -aes256 -passout pass:{pass} -out {to}"),
            &[],
        );
        self
    }

    /// `name`: a key of no certificate.
    pub fn lone_key(self, name: &str) -> Pki {
        self.openssl(
            &format!("genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out {name}"),
            &[],
        );
        self
    }

    fn issue(&self, name: &str, kind: &str, subject: &str) {
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        self.openssl(
            &format!(
                "req -new -config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
                 -nodes -keyout {name}.key -out {name}.csr"
            ),
            &["-subj", subject],
        );
        self.openssl(
            &format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -set_serial {serial} \
                 -out {name}.pem -days 30 -extfile openssl.cnf -extensions {kind}"
            ),
            &[],
        );
    }

    /// Runs `openssl ARGS MORE` in the dir; panics with its stderr when it fails.
    fn openssl(&self, args: &str, more: &[&str]) {
        let out = Command::new(openssl_binary())
            .args(args.split_whitespace())
            .args(more)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("the openssl command (needed to make the test certificates)");
        assert!(
            out.status.success(),
            "openssl {args} {more:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The path of `name` in the dir.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// `--certfile NAME.pem --keyfile NAME.key`.
    pub fn tls_args(&self, name: &str) -> Vec<String> {
        vec![
            "--certfile".into(),
            self.path(&format!("{name}.pem")),
            "--keyfile".into(),
            self.path(&format!("{name}.key")),
        ]
    }

    /// Replaces `to` with a copy of `from` in one rename.
    pub fn replace(&self, from: &str, to: &str) {
        let tmp = self.dir.path().join(format!("{to}.tmp"));
        std::fs::copy(self.dir.path().join(from), &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join(to)).unwrap();
    }

    /// `curl -sS --max-time 30 --cacert ca.pem ARGS`, bounded.
    pub fn curl(&self, args: &[&str]) -> Output {
        run_bounded(
            Command::new("curl")
                .args(["-sS", "--max-time", "30", "--cacert", &self.path("ca.pem")])
                .args(args),
        )
    }

    /// One request to `url` with curl (`ARGS` first): the status and the body apart.
    pub fn curl_status(&self, args: &[&str], url: &str) -> Curl {
        let mut all = vec!["-w", "\n%{http_code}"];
        all.extend_from_slice(args);
        all.push(url);
        let out = self.curl(&all);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        Curl {
            exit: out.status.code().unwrap_or(-1),
            status: code.trim().parse().unwrap_or(0),
            body: body.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `python -c SCRIPT PORT CA_PEM`, bounded.
    pub fn python_script(&self, script: &str, port: u16) -> Output {
        run_bounded(Command::new(python()).args([
            "-c",
            script,
            &port.to_string(),
            &self.path("ca.pem"),
        ]))
    }
}
