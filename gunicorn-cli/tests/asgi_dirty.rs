//! Dirty arbiters from the asgi worker: an ASGI app (`tests/apps/dirty_asgi.py`) calls the
//! dirty apps of `tests/apps/dirty_tasks.py` with `gunicorn.dirty.get_dirty_client_async()`
//! (`execute_async`, `stream_async`) without blocking its event loop.

mod support;

use std::time::{Duration, Instant};

use support::Gunicorn;

#[test]
fn an_asgi_app_calls_dirty_apps_with_the_async_client() {
    let server = Gunicorn::new()
        .bind_free_port()
        .args(["-k", "asgi", "-w", "1", "--dirty-workers", "1"])
        .args(["--dirty-app", "dirty_tasks:Counter"])
        .arg("dirty_asgi:app")
        .spawn();
    server.wait_booted(1);
    // The dirty worker may still be loading: the first calls can fail until it is up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let resp = server.get("/incr");
        if resp.status == 200 || Instant::now() >= deadline {
            break resp;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(first.status, 200, "{}\n{}", first.text(), server.output());
    assert!(first.text().contains("\"count\": 2"), "{}", first.text());
    let second = server.get("/incr");
    assert!(second.text().contains("\"count\": 4"), "{}", second.text());
    let tokens = server.get("/tokens");
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    assert!(
        tokens.text().starts_with("{\"result\": ["),
        "{}",
        tokens.text()
    );
}
