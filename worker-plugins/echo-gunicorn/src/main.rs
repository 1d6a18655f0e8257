//! `gunicorn-echo`: the full `gunicorn` command (every flag, config files, Python workers) with
//! one more worker class linked in. `gunicorn-echo -k echo -b 127.0.0.1:8000 any:app` serves the
//! pure-Rust echo worker; `-k sync app:application` still serves a WSGI app.

fn main() {
    // Referencing the crate keeps its `register_worker!` registration linked in.
    let _ = gunicorn_worker_echo::class();
    std::process::exit(gunicorn_cli::run());
}
