// The `gunicorn` binary and this crate's test binaries embed CPython: link them with an rpath to
// the libpython this crate was built against, so they run without LD_LIBRARY_PATH.
//
// Built as the Python extension module (maturin sets PYO3_BUILD_EXTENSION_MODULE), nothing is
// linked to libpython and no path of the build machine is recorded: the module runs inside
// whatever interpreter imports it.
fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    // Segments laid out so that an address and its file offset agree modulo 64 KiB. Linux maps
    // a file's code in fault-around windows of 64 KiB of address space, and the kernel measured
    // (6.18) maps in full every page-cache folio (64 KiB here) that such a window touches: with
    // the linker's 4 KiB alignment each window straddled two folios, so every worker mapped
    // about twice the code it runs (an idle pip-installed worker: 2.2 of 3.5 MiB of the
    // extension's text resident, 1.7 with this; docs/benchmarks.md, "Memory"). The padding is
    // in addresses only: the file does not grow.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,-z,max-page-size=0x10000");
        hot_text_first();
    }
    if std::env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_some() {
        return;
    }
    let cfg = pyo3_build_config::get();
    if let Some(dir) = cfg.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}

/// The functions a worker runs, placed first in the code by a linker script
/// (`link/hot-text.ld`, written by `scripts/link-order` from profiles of workers). Each 64 KiB
/// block of code a worker touches is resident in it, so a worker's share of the server's code
/// follows the number of blocks its functions are spread over (31 left to the linker, 8 with
/// this: docs/benchmarks.md, "Memory"). Release builds of the binary and the extension only.
///
/// Only where the linker is LLD, the default of rustc 1.90 and later for x86_64 Linux: LLD puts
/// the script's functions first in the one `.text` section, as tools that look for that
/// section by name expect (valgrind reads no symbol outside it). GNU ld would make a second
/// `.text`, so older toolchains, and any linker chosen in RUSTFLAGS or Cargo's configuration,
/// link as before.
fn hot_text_first() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("fuse-ld")
        || flags.contains("linker");
    if !release
        || target != "x86_64-unknown-linux-gnu"
        || own_linker
        || !rustc_links_with_lld()
        || !script.exists()
    {
        return;
    }
    for kind in ["bins", "cdylib"] {
        println!("cargo:rustc-link-arg-{kind}=-Wl,-T,{}", script.display());
    }
}

/// Whether this rustc is a stable or beta release of 1.90 or later, whose x86_64 Linux target
/// links with its own LLD unless told otherwise.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(release) = text.lines().find_map(|l| l.strip_prefix("release: ")) else {
        return false;
    };
    if release.contains("nightly") || release.contains("dev") {
        return false;
    }
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
