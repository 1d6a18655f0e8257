//! End-to-end tests of TLS on the sync worker (issue 14) through the real binary, with
//! certificates made by the `openssl` command in a temp dir and curl and Python's `ssl` as
//! clients: the environ, large uploads, client certificates, bad input at startup, plain HTTP
//! and stalled handshakes on the TLS port, and certificate rotation by HUP under load.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::tls::{have_curl, python, run_bounded, run_to_end, start_https, Curl, Pki};
use support::{Gunicorn, Server};

const LOG_TIMEOUT: Duration = Duration::from_secs(20);

/// Python's `ssl` and `http.client` as the client: `post PORT CA SIZE` (prints the response
/// body), `subject PORT CA` (the organization of the server certificate), `loop PORT CA STOP
/// PROGRESS MAX_REQUESTS MAX_SECONDS` (requests one after the other until the STOP file
/// exists or a bound is reached, the count written to PROGRESS after each; prints a summary),
/// `held PORT CA GO` (shakes hands, prints the organization, sends its request once the GO
/// file exists, prints the status).
const CLIENT_PY: &str = r#"
import http.client, json, os, ssl, sys, time

def connection(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("localhost", int(port), context=ctx, timeout=10)
    conn.connect()
    subject = dict(item[0] for item in conn.sock.getpeercert()["subject"])
    return conn, subject.get("organizationName")

mode, port, ca = sys.argv[1:4]
if mode == "post":
    conn, _ = connection(port, ca)
    conn.request("POST", "/upload", body=b"x" * int(sys.argv[4]))
    response = conn.getresponse()
    print(response.status)
    print(response.read().decode())
elif mode == "subject":
    conn, org = connection(port, ca)
    print(org)
elif mode == "held":
    go = sys.argv[4]
    conn, org = connection(port, ca)
    print(org, flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.request("GET", "/held")
    response = conn.getresponse()
    response.read()
    print(response.status)
elif mode == "loop":
    stop, progress, max_requests, max_seconds = sys.argv[4:8]
    deadline = time.monotonic() + float(max_seconds)
    ok, failed, errors, subjects = 0, 0, [], {}
    while ok + failed < int(max_requests) and time.monotonic() < deadline:
        if os.path.exists(stop):
            break
        try:
            conn, org = connection(port, ca)
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError("status %d" % response.status)
            ok += 1
            subjects[org] = subjects.get(org, 0) + 1
        except Exception as e:
            failed += 1
            errors.append(repr(e))
        with open(progress + ".tmp", "w") as f:
            f.write(str(ok + failed))
        os.replace(progress + ".tmp", progress)
        time.sleep(0.01)
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5], "subjects": subjects}))
"#;

/// A CA (`/CN=Test CA`), two server certificates for localhost/127.0.0.1 (`a`: `O=Server A`,
/// `b`: `O=Server B`), a client certificate (`client`, `O=Clients, CN=client one`), an
/// encrypted copy of a's key and a key of no certificate, with `client.py`, under a temp dir.
fn test_pki(tag: &str) -> Pki {
    let pki = Pki::new(tag, "/CN=Test CA")
        .server("a", "/O=Server A/CN=localhost")
        .server("b", "/O=Server B/CN=localhost")
        .client("client", "/O=Clients/CN=client one")
        .encrypted_key("a.key", "encrypted.key", "secret")
        .lone_key("other.key");
    pki.dir.write("client.py", CLIENT_PY);
    pki
}

/// Runs `client.py ARGS` with Python (its `ssl` module and http.client), bounded.
fn client(pki: &Pki, args: &[&str]) -> Output {
    run_bounded(Command::new(python()).arg(pki.path("client.py")).args(args))
}

/// A TLS server of `tls_environ:app` with the sync worker.
fn start(pki: &Pki, extra: &[&str]) -> (Server, u16) {
    let gunicorn = Gunicorn::new()
        .args(["-k", "sync", "--log-level", "debug"])
        .args(pki.tls_args("a"))
        .args(extra)
        .arg("tls_environ:app");
    start_https(gunicorn, 1)
}

/// `curl https://localhost:PORT/ --cacert ca.pem ARGS`, bounded.
fn curl(pki: &Pki, port: u16, args: &[&str]) -> Curl {
    pki.curl_status(args, &format!("https://localhost:{port}/"))
}

fn assert_ok(r: &Curl, wanted: &[&str]) {
    assert_eq!((r.exit, r.status), (0, 200), "{}{}", r.body, r.stderr);
    for want in wanted {
        assert!(r.body.contains(want), "{want} not in {}", r.body);
    }
}

#[test]
fn curl_sees_https_and_the_tls_environ() {
    if !have_curl() {
        return;
    }
    let pki = test_pki("tls-curl");
    let (server, port) = start(&pki, &[]);
    let r = curl(&pki, port, &[]);
    assert_ok(
        &r,
        &[
            r#""wsgi.url_scheme": "https""#,
            r#""HTTPS": "on""#,
            r#""SSL_PROTOCOL": "TLSv1.3""#,
            r#""SSL_CIPHER": "TLS_"#,
            r#""SSL_CLIENT_VERIFY": "NONE""#,
        ],
    );
    assert!(!r.body.contains("SSL_CLIENT_CERT"), "{}", r.body);
    // TLS 1.2: the cipher suite by its OpenSSL name, as Apache's SSL_CIPHER.
    let r = curl(&pki, port, &["--tlsv1.2", "--tls-max", "1.2"]);
    assert_ok(
        &r,
        &[
            r#""SSL_PROTOCOL": "TLSv1.2""#,
            r#""SSL_CIPHER": "ECDHE-ECDSA-"#,
        ],
    );
    // curl offering only HTTP/1.0 by ALPN is served too.
    assert_ok(&curl(&pki, port, &["--http1.0"]), &[r#""HTTPS": "on""#]);
    // Without the CA, curl refuses the server.
    let r = curl(&pki, port, &["--cacert", "/dev/null"]);
    assert_ne!(r.exit, 0, "{}", r.body);
    drop(server);
}

#[test]
fn python_ssl_client_posts_one_mib() {
    let pki = test_pki("tls-python");
    let (_server, port) = start(&pki, &[]);
    let size = 1 << 20;
    let out = client(
        &pki,
        &[
            "post",
            &port.to_string(),
            &pki.path("ca.pem"),
            &size.to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = Command::new(python())
        .args([
            "-c",
            "import hashlib; print(hashlib.sha256(b'x' * (1 << 20)).hexdigest())",
        ])
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
    assert!(stdout.starts_with("200\n"), "{stdout}");
    assert!(stdout.contains(r#""body_length": 1048576"#), "{stdout}");
    assert!(
        stdout.contains(&format!(r#""body_sha256": "{hash}""#)),
        "{stdout}"
    );
}

#[test]
fn client_certificates_required_and_optional() {
    if !have_curl() {
        return;
    }
    let pki = test_pki("tls-mtls");
    let ca = pki.path("ca.pem");
    let with_cert = [
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client.key"),
    ]
    .map(String::from);
    let with_cert: Vec<&str> = with_cert.iter().map(String::as_str).collect();
    let verified = [
        r#""SSL_CLIENT_VERIFY": "SUCCESS""#,
        r#""SSL_CLIENT_S_DN": "O=Clients, CN=client one""#,
        r#""SSL_CLIENT_I_DN": "CN=Test CA""#,
        r#""SSL_CLIENT_CERT": "-----BEGIN CERTIFICATE-----\n"#,
    ];

    // Required: refused without a certificate, served with one.
    let (server, port) = start(&pki, &["--cert-reqs", "2", "--ca-certs", &ca]);
    let r = curl(&pki, port, &[]);
    assert_ne!(r.exit, 0, "served without a client certificate: {}", r.body);
    assert_ok(&curl(&pki, port, &with_cert), &verified);
    drop(server);

    // Optional: both served, verified only with one.
    let (_server, port) = start(&pki, &["--cert-reqs", "1", "--ca-certs", &ca]);
    let r = curl(&pki, port, &[]);
    assert_ok(&r, &[r#""SSL_CLIENT_VERIFY": "NONE""#]);
    assert!(!r.body.contains("SSL_CLIENT_S_DN"), "{}", r.body);
    assert_ok(&curl(&pki, port, &with_cert), &verified);
}

/// Each bad TLS setting or file: one line naming the setting and the file, exit 1, no worker.
#[test]
fn bad_tls_input_stops_the_server_before_any_worker() {
    let pki = test_pki("tls-bad");
    let (a_pem, a_key) = (pki.path("a.pem"), pki.path("a.key"));
    let missing = pki.path("missing.pem");
    let encrypted = pki.path("encrypted.key");
    let other = pki.path("other.key");
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["--certfile", &missing, "--keyfile", &a_key],
            vec![format!("certfile {missing}: No such file")],
        ),
        (
            vec!["--certfile", &a_pem, "--keyfile", &other],
            vec![format!("keyfile {other} does not match certfile {a_pem}")],
        ),
        (
            vec!["--certfile", &a_pem, "--keyfile", &encrypted],
            vec![
                format!("keyfile {encrypted}: the private key is encrypted"),
                "openssl pkey".into(),
            ],
        ),
        (
            vec![
                "--certfile",
                &a_pem,
                "--keyfile",
                &a_key,
                "--cert-reqs",
                "2",
            ],
            vec!["cert_reqs 2 needs ca_certs".into()],
        ),
        (
            vec![
                "--certfile",
                &a_pem,
                "--keyfile",
                &a_key,
                "--ciphers",
                "HIGH",
            ],
            vec![r#"ciphers "HIGH": "HIGH" is not a cipher suite"#.into()],
        ),
        (
            vec![
                "--certfile",
                &a_pem,
                "--keyfile",
                &a_key,
                "--ssl-version",
                "TLSv1",
            ],
            vec!["ssl_version".into(), "TLS 1.2 or later".into()],
        ),
    ];
    for (args, wanted) in cases {
        let done = run_to_end("sync", &args, "tls_environ:app");
        let output = format!("{}\n{}", done.stdout, done.stderr);
        assert_eq!(done.code(), Some(1), "{args:?}: {output}");
        assert!(!output.contains("Booting worker"), "{args:?}: {output}");
        let line = output
            .lines()
            .find(|l| l.contains(wanted[0].as_str()))
            .unwrap_or_else(|| panic!("{args:?}: no line with {:?}: {output}", wanted[0]));
        for want in &wanted {
            assert!(line.contains(want.as_str()), "{args:?}: {line}");
        }
    }
}

/// Plain HTTP sent to the TLS port gets a TLS alert and the connection closed at once; the
/// server goes on serving.
#[test]
fn plain_http_to_the_tls_port_is_closed() {
    let pki = test_pki("tls-plain");
    let (server, port) = start(&pki, &[]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(support::get_request("/").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got)
        .expect("the connection closed, not left hanging");
    assert_eq!(got.first(), Some(&0x15), "a TLS alert record: {got:?}");
    assert!(server
        .wait_for("TLS handshake failed from ip=127.0.0.1", 1, LOG_TIMEOUT)
        .is_some());
    let out = client(&pki, &["subject", &port.to_string(), &pki.path("ca.pem")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Server A");
}

/// A client that stalls (or trickles) in the middle of its handshake holds the sync worker for
/// at most half the timeout: another client is served before the master's timeout would have
/// killed it.
#[test]
fn a_stalled_handshake_does_not_keep_the_worker() {
    let pki = test_pki("tls-stall");
    let (server, port) = start(&pki, &["--timeout", "4"]);
    // A TLS record header promising a ClientHello that never comes.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let out = client(&pki, &["subject", &port.to_string(), &pki.path("ca.pem")]);
    let waited = started.elapsed();
    eprintln!("served after {waited:?} behind a stalled handshake");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Server A",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        waited < Duration::from_secs(4),
        "served after {waited:?}: {}",
        server.output()
    );
    // The stalled client was closed; the worker was never killed or replaced.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(
        !server.output().contains("WORKER TIMEOUT"),
        "{}",
        server.output()
    );
    assert_eq!(server.worker_pids().len(), 1, "{}", server.output());

    // A client trickling its ClientHello a byte every 0.5 s (each read well within any
    // per-read timeout) is closed at the same bound: the deadline is the whole handshake's.
    let mut trickling = TcpStream::connect(("127.0.0.1", port)).unwrap();
    trickling.set_nodelay(true).unwrap();
    let started = Instant::now();
    let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
    let mut closed_after = None;
    for byte in hello.iter().chain([0x03u8; 40].iter()) {
        if trickling.write_all(&[*byte]).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let closed_after = closed_after.expect("the trickling client was never closed");
    assert!(closed_after < Duration::from_secs(8), "{closed_after:?}");
    assert!(server
        .wait_for("TLS handshake failed", 2, LOG_TIMEOUT)
        .is_some());
    assert!(
        !server.output().contains("WORKER TIMEOUT"),
        "{}",
        server.output()
    );
    assert_eq!(server.worker_pids().len(), 1, "{}", server.output());
}

/// The summary line of `client.py loop`.
struct LoopSummary {
    ok: usize,
    failed: usize,
    text: String,
}

impl LoopSummary {
    fn from(out: &Output) -> LoopSummary {
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let number = |key: &str| -> usize {
            let after = text
                .split(&format!("\"{key}\": "))
                .nth(1)
                .unwrap_or_else(|| panic!("no {key} in {text:?}"));
            after
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        LoopSummary {
            ok: number("ok"),
            failed: number("failed"),
            text,
        }
    }
}

/// A bounded request loop in a thread (`client.py loop`), stopped by a file.
struct RequestLoop {
    stop: String,
    progress: String,
    thread: std::thread::JoinHandle<Output>,
}

impl RequestLoop {
    fn start(pki: &Pki, port: u16, tag: &str) -> RequestLoop {
        let (stop, progress) = (pki.path(&format!("{tag}.stop")), pki.path(tag));
        let args: Vec<String> = vec![
            "loop".into(),
            port.to_string(),
            pki.path("ca.pem"),
            stop.clone(),
            progress.clone(),
            "1000".into(),
            "30".into(),
        ];
        let script = pki.path("client.py");
        let thread =
            std::thread::spawn(move || run_bounded(Command::new(python()).arg(script).args(args)));
        RequestLoop {
            stop,
            progress,
            thread,
        }
    }

    fn done(&self) -> usize {
        std::fs::read_to_string(&self.progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `more` requests past the current count were made (or the loop ended).
    fn wait_for_more(&self, more: usize) {
        let target = self.done() + more;
        support::eventually(Duration::from_secs(30), || {
            self.done() >= target || self.thread.is_finished()
        });
    }

    fn stop(self) -> LoopSummary {
        std::fs::write(&self.stop, "").unwrap();
        LoopSummary::from(&self.thread.join().unwrap())
    }
}

/// HUP with new certificate files: requests in flight never fail, new connections get the new
/// certificate; a broken file at the next HUP keeps the certificate loaded before, with one
/// error line.
#[test]
fn certificate_rotation_by_hup() {
    let pki = test_pki("tls-rotation");
    pki.replace("a.pem", "cert.pem");
    pki.replace("a.key", "key.pem");
    let gunicorn = Gunicorn::new()
        .args(["-k", "sync", "-w", "2", "--log-level", "debug"])
        .args(["--certfile", &pki.path("cert.pem")])
        .args(["--keyfile", &pki.path("key.pem")])
        .arg("tls_environ:app");
    let (server, port) = start_https(gunicorn, 2);
    let subject = || {
        let out = client(&pki, &["subject", &port.to_string(), &pki.path("ca.pem")]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };

    // A connection that shook hands with certificate A and sends its request only after the
    // HUP: the old worker serving it finishes it.
    let go = pki.path("held.go");
    let mut held = Command::new(python())
        .args([
            &pki.path("client.py"),
            "held",
            &port.to_string(),
            &pki.path("ca.pem"),
            &go,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut held_out = std::io::BufReader::new(held.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut held_out, &mut line).unwrap();
    assert_eq!(line.trim(), "Server A");

    let requests = RequestLoop::start(&pki, port, "rotation");
    requests.wait_for_more(10);
    pki.replace("b.key", "key.pem");
    pki.replace("b.pem", "cert.pem");
    server.signal(Signal::SIGHUP);
    server.wait_booted(4);
    // The old generation stops once the new one is up (the worker holding the connection
    // once its request is answered); keep requesting past that.
    assert!(
        server.wait_for("Worker exiting", 1, LOG_TIMEOUT).is_some(),
        "{}",
        server.output()
    );
    std::fs::write(&go, "").unwrap();
    let mut status = String::new();
    held_out.read_to_string(&mut status).unwrap();
    assert_eq!(status.trim(), "200", "the request on the old connection");
    assert!(held.wait().unwrap().success());
    assert!(
        server.wait_for("Worker exiting", 2, LOG_TIMEOUT).is_some(),
        "{}",
        server.output()
    );
    requests.wait_for_more(20);
    let summary = requests.stop();
    eprintln!("across the rotation: {}", summary.text);
    assert_eq!(summary.failed, 0, "{}", summary.text);
    assert!(summary.ok >= 30, "{}", summary.text);
    assert!(summary.text.contains("\"Server A\""), "{}", summary.text);
    assert!(summary.text.contains("\"Server B\""), "{}", summary.text);
    assert_eq!(subject(), "Server B");

    // A broken certificate file at the next HUP: B stays, and one error line says so.
    std::fs::write(pki.path("cert.pem"), "not a certificate\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_booted(6);
    let requests = RequestLoop::start(&pki, port, "broken");
    requests.wait_for_more(20);
    let summary = requests.stop();
    eprintln!("after the broken file: {}", summary.text);
    assert_eq!(summary.failed, 0, "{}", summary.text);
    assert!(!summary.text.contains("\"Server A\""), "{}", summary.text);
    assert_eq!(subject(), "Server B");
    let kept = "the certificate loaded before stays in use";
    let lines = server.wait_for(kept, 1, LOG_TIMEOUT).unwrap();
    assert!(
        lines[0].contains(&format!("certfile {}", pki.path("cert.pem"))),
        "{}",
        lines[0]
    );
    std::thread::sleep(Duration::from_millis(500));
    let count = server.output().lines().filter(|l| l.contains(kept)).count();
    assert_eq!(count, 1, "{}", server.output());
}

/// A HUP whose new TLS settings do not load (here `cert_reqs = 2` without `ca_certs`) is
/// refused as a whole, with one line: the configuration in force stays, clients without a
/// certificate are still served, and the certificate is not "kept" under the new settings.
#[test]
fn a_reload_to_tls_settings_that_do_not_load_is_refused() {
    let pki = test_pki("tls-reload-settings");
    let settings = format!(
        "certfile = {:?}\nkeyfile = {:?}\n",
        pki.path("a.pem"),
        pki.path("a.key")
    );
    let conf = pki.dir.write("gunicorn.conf.py", &settings);
    let gunicorn = Gunicorn::new()
        .args(["-k", "sync", "-c", &conf.to_string_lossy()])
        .arg("tls_environ:app");
    let (server, port) = start_https(gunicorn, 1);
    let request = || {
        let out = client(&pki, &["post", &port.to_string(), &pki.path("ca.pem"), "0"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(request().starts_with("200\n"));

    pki.dir
        .write("gunicorn.conf.py", &format!("{settings}cert_reqs = 2\n"));
    server.signal(Signal::SIGHUP);
    let refused = server
        .wait_for("Error reloading the configuration", 1, LOG_TIMEOUT)
        .unwrap_or_else(|| panic!("{}", server.output()));
    assert!(
        refused[0].contains("cert_reqs 2 needs ca_certs"),
        "{}",
        refused[0]
    );
    server.wait_booted(2);
    let served = request();
    assert!(served.starts_with("200\n"), "{served}");
    assert!(
        served.contains(r#""SSL_CLIENT_VERIFY": "NONE""#),
        "{served}"
    );
    assert!(
        !server.output().contains("stays in use"),
        "{}",
        server.output()
    );
}
