//! `gunicornc`, the control socket client (gunicorn 25.1's command of the same name, with the
//! same options, output and exit statuses): one command with `-c`, else an interactive prompt.
//! It talks gunicorn's wire protocol, so it drives gunicorn 27 as well as this server. See
//! `docs/control.md`.

mod client;
mod format;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Arg, ArgAction};

pub use client::{ClientError, ControlClient};

/// Exit status when a command fails (gunicorn's `gunicornc`).
const EXIT_ERROR: i32 = 1;

fn command() -> clap::Command {
    clap::Command::new("gunicornc")
        .about("Gunicorn control interface")
        .disable_version_flag(true)
        .after_help(
            "Examples:\n  \
             gunicornc                      # Interactive mode (default socket)\n  \
             gunicornc -s /tmp/myapp.ctl    # Interactive mode with custom socket\n  \
             gunicornc -c \"show workers\"    # Single command mode\n  \
             gunicornc -c \"worker add 2\"    # Add 2 workers\n  \
             gunicornc -c \"show stats\" -j   # Output stats as JSON",
        )
        .arg(
            Arg::new("socket")
                .short('s')
                .long("socket")
                .value_name("SOCKET")
                .value_parser(clap::value_parser!(PathBuf))
                .help(
                    "Control socket path (default: auto-detected based on XDG_RUNTIME_DIR or \
                     ~/.gunicorn/)",
                ),
        )
        .arg(
            Arg::new("command")
                .short('c')
                .long("command")
                .value_name("COMMAND")
                .help("Execute single command and exit"),
        )
        .arg(
            Arg::new("json")
                .short('j')
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Output raw JSON (for scripting)"),
        )
        .arg(
            Arg::new("version")
                .short('v')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Show version and exit"),
        )
}

/// Runs `gunicornc` with `argv` (without the program name) and returns the exit status.
pub fn main_with(argv: Vec<OsString>) -> i32 {
    let words = std::iter::once(OsString::from("gunicornc")).chain(argv);
    let matches = match command().try_get_matches_from(words) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    if matches.get_flag("version") {
        println!("gunicornc (gunicorn {})", gunicorn_core::VERSION);
        return 0;
    }
    let socket = matches
        .get_one::<PathBuf>("socket")
        .cloned()
        .unwrap_or_else(|| PathBuf::from(gunicorn_core::config::default_control_socket()));
    let socket = if socket.is_absolute() {
        socket
    } else {
        std::env::current_dir()
            .map(|d| d.join(&socket))
            .unwrap_or(socket)
    };
    let json = matches.get_flag("json");
    match matches.get_one::<String>("command") {
        Some(line) => run_command(&socket, line, json),
        None => run_interactive(&socket, json),
    }
}

/// Sends one typed line and returns what to print.
fn send_line(client: &mut ControlClient, line: &str, json: bool) -> Result<String, ClientError> {
    let (command, args) =
        client::parse_line(line).map_err(|e| ClientError::Communication(e.to_string()))?;
    let full = if args.is_empty() {
        command.clone()
    } else {
        format!("{command} {}", args.join(" ")).trim().to_string()
    };
    let data = client.send_command(&full)?;
    Ok(if json {
        format::json_text(&data)
    } else {
        format::response(&command, &data)
    })
}

fn run_command(socket: &std::path::Path, line: &str, json: bool) -> i32 {
    let mut client = ControlClient::new(socket);
    match client
        .connect()
        .and_then(|()| send_line(&mut client, line, json))
    {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            EXIT_ERROR
        }
    }
}

/// The prompt loop (gunicorn's interactive mode, without its readline history).
fn run_interactive(socket: &std::path::Path, json: bool) -> i32 {
    let mut client = ControlClient::new(socket);
    if let Err(e) = client.connect() {
        eprintln!("Error: {e}");
        return EXIT_ERROR;
    }
    println!("Connected to {}", socket.display());
    println!("Type 'help' for available commands, 'quit' to exit.");
    println!();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        print!("gunicorn> ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!();
                return 0;
            }
            Ok(_) => {}
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if matches!(line.to_lowercase().as_str(), "quit" | "exit" | "q") {
            return 0;
        }
        match send_line(&mut client, line, json) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                println!("Error: {e}");
                client.close();
                if client.connect().is_err() {
                    println!("Connection lost. Exiting.");
                    return EXIT_ERROR;
                }
            }
        }
        println!();
    }
}
