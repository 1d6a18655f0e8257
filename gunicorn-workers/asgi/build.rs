// The test binaries link libpython (through gunicorn-python): give them an rpath to the
// libpython pyo3 was configured with, so they run without LD_LIBRARY_PATH.
fn main() {
    if let Some(dir) = pyo3_build_config::get().lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
