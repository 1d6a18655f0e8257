// Tell the crate which CPython it was built against, so the embedded interpreter is that one:
// - an rpath to its libpython for this crate's test binaries (the `gunicorn` binary gets its own
//   from gunicorn-cli's build script), so they run without LD_LIBRARY_PATH;
// - the interpreter's executable path and version, read by `interpreter.rs` to point CPython's
//   path calculation (getpath) at the right prefix and standard library.
fn main() {
    let cfg = pyo3_build_config::get();
    if let Some(dir) = cfg.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!(
        "cargo:rustc-env=GUNICORN_PYTHON_EXECUTABLE={}",
        cfg.executable().unwrap_or("")
    );
    println!(
        "cargo:rustc-env=GUNICORN_PYTHON_VERSION={}.{}",
        cfg.version().major,
        cfg.version().minor
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYO3_CONFIG_FILE");
}
