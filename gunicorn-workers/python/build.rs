// Tell the crate which CPython it was built against, so the embedded interpreter is that one:
// - an rpath to its libpython for this crate's test binaries (the `gunicorn` binary gets its own
//   from gunicorn-cli's build script), so they run without LD_LIBRARY_PATH;
// - the interpreter's executable path and version, read by `interpreter.rs` to point CPython's
//   path calculation (getpath) at the right prefix and standard library.
//
// Built as part of the Python extension module (maturin sets PYO3_BUILD_EXTENSION_MODULE), the
// interpreter is the one that imports the module: no build path is recorded.
fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    let cfg = pyo3_build_config::get();
    // `#[cfg(Py_LIMITED_API)]`: the stable-ABI (abi3) build of the extension module.
    pyo3_build_config::print_expected_cfgs();
    pyo3_build_config::use_pyo3_cfgs();
    if std::env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_some() {
        println!("cargo:rustc-env=GUNICORN_PYTHON_EXECUTABLE=");
        println!(
            "cargo:rustc-env=GUNICORN_PYTHON_VERSION={}.{}",
            cfg.version().major,
            cfg.version().minor
        );
        return;
    }
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
