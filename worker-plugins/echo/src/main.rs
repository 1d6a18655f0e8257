//! `echo-server`: a Rust program that runs gunicorn-core's arbiter with the `echo` worker and no
//! Python linked. It accepts gunicorn's flags for every setting in the table:
//!
//! ```text
//! echo-server -b 127.0.0.1:8000 -w 4 --timeout 10 --pid /tmp/echo.pid
//! ```
//!
//! Signals work as with gunicorn: TERM/INT/QUIT stop it, HUP re-reads this command line and
//! replaces the workers, TTIN/TTOU add or remove a worker, USR1 reopens the log, USR2 upgrades
//! the binary in place.

use gunicorn_core::{log_error, registry, Arbiter, Config, NoHooks};
use gunicorn_worker_echo::ArgsError;

fn config_from(args: &[String]) -> Result<Config, ArgsError> {
    let mut cfg = Config {
        worker_class: gunicorn_worker_echo::NAME.into(),
        ..Config::default()
    };
    gunicorn_worker_echo::apply_args(&mut cfg, args)?;
    Ok(cfg)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: echo-server [gunicorn settings flags, e.g. -b ADDRESS -w N -t SECONDS]");
        return;
    }
    // Referencing the crate keeps its worker registration linked in.
    let _ = gunicorn_worker_echo::class();
    let cfg = match config_from(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo-server: error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = gunicorn_core::log::init(&cfg.loglevel, &cfg.errorlog) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let Some(class) = registry::lookup(&cfg.worker_class) else {
        let known: Vec<&str> = registry::all().iter().map(|c| c.name).collect();
        log_error!(
            "Invalid worker class: {} (known: {})",
            cfg.worker_class,
            known.join(", ")
        );
        std::process::exit(1);
    };
    let mut arbiter = match Arbiter::new(cfg, class, Box::new(NoHooks)) {
        Ok(a) => a,
        Err(e) => {
            log_error!("{e}");
            std::process::exit(e.exit_status());
        }
    };
    // HUP: read the same command line again (a real program would re-read its config file).
    arbiter.on_reload(Box::new(move || Ok(config_from(&args)?)));
    std::process::exit(arbiter.run());
}
