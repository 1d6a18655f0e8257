//! The gunicorn command as a library: `run()` lets a custom binary link extra worker crates.
