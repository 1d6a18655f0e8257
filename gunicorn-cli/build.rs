// The `gunicorn` binary and this crate's test binaries embed CPython: link them with an rpath to
// the libpython this crate was built against, so they run without LD_LIBRARY_PATH.
//
// Built as the Python extension module (maturin sets PYO3_BUILD_EXTENSION_MODULE), nothing is
// linked to libpython and no path of the build machine is recorded: the module runs inside
// whatever interpreter imports it.
fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    if std::env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_some() {
        return;
    }
    let cfg = pyo3_build_config::get();
    if let Some(dir) = cfg.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
