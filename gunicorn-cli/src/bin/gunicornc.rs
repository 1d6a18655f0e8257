//! The `gunicornc` binary: the control socket client, all in the library's `ctl` module.
fn main() {
    std::process::exit(gunicorn_cli::ctl::main_with(
        std::env::args_os().skip(1).collect(),
    ));
}
