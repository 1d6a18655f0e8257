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

/// The table of gunicorn 27's settings cannot drift: every setting here is one of gunicorn's and
/// marked "yes", every gunicorn setting marked "yes" is a setting here, and the page has a row
/// for each of the 120.
#[test]
fn gunicorn27_table_matches_the_settings() {
    use gunicorn_core::config::SETTINGS;
    use gunicorn_core::gunicorn27::{lookup, Here, GUNICORN27_SETTINGS};
    assert_eq!(GUNICORN27_SETTINGS.len(), 120);
    for s in SETTINGS {
        let g = lookup(s.name).unwrap_or_else(|| {
            panic!(
                "{} is not in gunicorn-core/src/gunicorn27.rs: not a gunicorn 27 setting?",
                s.name
            )
        });
        assert_eq!(
            g.here,
            Here::Yes,
            "{} is a setting here: mark it Here::Yes in gunicorn27.rs",
            s.name
        );
    }
    for g in GUNICORN27_SETTINGS.iter().filter(|g| g.here == Here::Yes) {
        assert!(
            SETTINGS.iter().any(|s| s.name == g.name),
            "{} is marked Here::Yes in gunicorn27.rs but is not a setting here",
            g.name
        );
    }
    let page = gunicorn_cli::settings_doc::markdown();
    for g in GUNICORN27_SETTINGS {
        assert!(page.contains(&format!("| `{}` |", g.name)), "{}", g.name);
    }
}
