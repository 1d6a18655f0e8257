//! End-to-end: large chunked request bodies through `wsgi.input` (sync and gthread workers),
//! read whole with `read()`, in pieces with `read(n)`, and line by line; the app echoes what it
//! read and the test compares it byte for byte with what was sent.

mod support;

use support::{Gunicorn, TempDir};

const APP: &str = r#"
def app(environ, start_response):
    body = environ["wsgi.input"]
    mode = environ.get("QUERY_STRING", "")
    if mode == "pieces":
        parts = []
        while True:
            part = body.read(7000)
            if not part:
                break
            parts.append(part)
        data = b"".join(parts)
    elif mode == "lines":
        data = b"".join(iter(body.readline, b""))
    elif mode == "mixed":
        head = body.readline()
        some = body.read(100000)
        data = head + some + body.read()
    else:
        data = body.read()
    start_response("200 OK", [("Content-Length", str(len(data)))])
    return [data]
"#;

/// A body of `len` bytes with lines of varying length and every byte value.
fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 997 == 0 {
                b'\n'
            } else {
                (i * 31 % 251) as u8
            }
        })
        .collect()
}

/// `body` as a chunked request, in chunks whose sizes cycle through small and large ones.
fn chunked_request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let sizes = [1usize, 65536, 100, 70000, 4096, 131072, 3];
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= body.len() {
            break;
        }
        let piece = &body[at..(at + size).min(body.len())];
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
        at += piece.len();
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

#[test]
fn chunked_bodies_read_whole_in_pieces_and_by_lines() {
    let dir = TempDir::new("chunked-upload");
    dir.write("upload_echo.py", APP);
    let workers: [&[&str]; 2] = [&[], &["-k", "gthread", "--threads", "2"]];
    for worker in workers {
        let server = Gunicorn::new()
            .cwd(dir.path())
            .args(worker.iter().copied())
            .arg("upload_echo:app")
            .bind_free_port()
            .spawn();
        server.wait_booted(1);
        for len in [0usize, 1, 5000, 3 << 20] {
            let sent = body(len);
            for mode in ["all", "pieces", "lines", "mixed"] {
                let r = server.send(&chunked_request(&format!("/?{mode}"), &sent));
                assert_eq!(r.status, 200, "{worker:?} {mode} {len}");
                assert!(
                    r.body == sent,
                    "{worker:?} {mode} {len}: got {} bytes",
                    r.body.len()
                );
            }
        }
    }
}
