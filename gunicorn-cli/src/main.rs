//! The `gunicorn` binary: everything is in the library's `run()`.
fn main() {
    std::process::exit(gunicorn_cli::run());
}
