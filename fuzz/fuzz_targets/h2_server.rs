//! cargo fuzz target `h2_server`: the serving layer's HTTP/2 server (gunicorn-serve `h2/`: the
//! reactor transport, the connection and stream tasks, a stream's head read as a request) fed
//! the client preface and then arbitrary bytes on a socket. Every stream a request comes out
//! of is answered by a dispatch thread that reads its body and replies. When the first byte is
//! odd the connection is one upgraded from HTTP/1.1 (`Upgrade: h2c`), its input rewritten by
//! the splice (`h2/upgrade.rs`). Checked: no panic, the connection ends once the input does
//! (bounded), and the server still takes connections.
#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use gunicorn_http::{ConnInfo, HttpConfig, Local, Peer, RequestParser};
use gunicorn_serve::h2::upgrade::request_frames;
use gunicorn_serve::h2::{Dispatch, H2Server, H2Settings, Incoming, StreamJob};

/// Answers every stream from a thread of its own, as a worker's pool would.
struct Answer(Mutex<mpsc::Sender<StreamJob>>);

impl Dispatch for Answer {
    fn dispatch(&self, job: StreamJob) {
        let _ = self.0.lock().unwrap().send(job);
    }
}

fn server() -> &'static H2Server {
    static SERVER: OnceLock<H2Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<StreamJob>();
        std::thread::spawn(move || {
            for mut job in rx {
                let mut body = Vec::new();
                let _ = (&mut job.body).take(1 << 20).read_to_end(&mut body);
                let _ = job.reply.whole(200, vec![("content-type".into(), "text/plain".into())], b"ok".to_vec());
            }
        });
        let settings = H2Settings {
            max_concurrent_streams: 16,
            initial_window_size: 65535,
            max_frame_size: 16384,
            max_header_list_size: Some(16384),
            stall: Some(Duration::from_millis(500)),
            idle: Duration::from_secs(1),
            graceful: Duration::from_secs(1),
        };
        H2Server::start(settings, &HttpConfig::default(), Arc::new(Answer(Mutex::new(tx))))
            .expect("the HTTP/2 thread starts")
    })
}

/// The frames of an upgraded `POST /up` with a 3-byte body.
fn upgraded_request(conn: &ConnInfo) -> Vec<u8> {
    let head = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nUpgrade: h2c\r\n\r\n";
    let mut parser = RequestParser::new(Arc::new(HttpConfig::default()), conn.clone());
    let (req, _) = parser.parse_head(head).unwrap().unwrap();
    request_frames(&req, b"abc", 16384).unwrap()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let upgrade = data.first().is_some_and(|b| b & 1 == 1);
    let data = if upgrade { &data[1..] } else { data };
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let conn = ConnInfo {
        peer: Peer::Tcp("127.0.0.1:5000".parse().unwrap()),
        local: Local::Tcp("127.0.0.1:8000".parse().unwrap()),
        tls: None,
    };
    let upgraded = upgrade.then(|| upgraded_request(&conn));
    let incoming = Incoming {
        io: Box::new(ours),
        prefix: Vec::new(),
        conn,
        upgraded,
    };
    assert!(server().serve(incoming).is_ok(), "the HTTP/2 thread stopped");
    let mut client = theirs;
    client.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    input.extend_from_slice(data);
    // The server may stop reading (a connection error): a write that fails ends the input.
    let reader = {
        let mut client = client.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut sink = [0u8; 65536];
            loop {
                match client.read(&mut sink) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
                }
            }
        })
    };
    let _ = client.write_all(&input);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let ended = reader.join().unwrap();
    assert!(ended, "the connection did not end within 5 s of its input's end");
});
