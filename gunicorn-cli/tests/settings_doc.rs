//! docs/settings.md is generated from the settings table; this fails when it is stale.
//! `GUNICORN_UPDATE_DOCS=1 cargo test -p gunicorn-cli --test settings_doc` rewrites it.

mod support;

use std::path::Path;

use support::Gunicorn;

#[test]
fn docs_settings_md_is_up_to_date() {
    // The defaults of bind, workers and forwarded_allow_ips read PORT, WEB_CONCURRENCY and
    // FORWARDED_ALLOW_IPS; the harness clears them so the page shows the plain defaults.
    let out = Gunicorn::new().arg("--print-settings-doc").run();
    assert_eq!(out.code(), Some(0), "{out:?}");
    let generated = format!("{}\n", out.stdout.trim_end());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/settings.md");
    if std::env::var_os("GUNICORN_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/settings.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/settings.md is stale: run `GUNICORN_UPDATE_DOCS=1 cargo test -p gunicorn-cli --test settings_doc`"
    );
}
