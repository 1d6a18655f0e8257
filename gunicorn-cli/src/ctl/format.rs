//! `gunicornc`'s human-readable output for each command (the layout of gunicorn's
//! `ctl/cli.py`), from the answer's JSON.

use serde_json::Value as Json;

/// Python's `str()` of a JSON value as gunicorn's client holds it (`True`, `None`, `2.0`).
pub fn py_str(v: &Json) -> String {
    match v {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                format!("{f:.1}")
            }
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Json::String(s) => s.clone(),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Json::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", gunicorn_core::pyrepr::py_repr_str(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn py_repr(v: &Json) -> String {
    match v {
        Json::String(s) => gunicorn_core::pyrepr::py_repr_str(s),
        other => py_str(other),
    }
}

fn get<'a>(data: &'a Json, key: &str) -> Option<&'a Json> {
    data.get(key).filter(|v| !v.is_null())
}

/// `data.get(key, default)` shown with `str()`.
fn field(data: &Json, key: &str, default: &str) -> String {
    data.get(key).map(py_str).unwrap_or_else(|| default.into())
}

fn list<'a>(data: &'a Json, key: &str) -> &'a [Json] {
    data.get(key)
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn heartbeat(w: &Json) -> String {
    match get(w, "last_heartbeat") {
        Some(hb) => format!("{}s ago", py_str(hb)),
        None => "n/a".into(),
    }
}

fn booted(w: &Json) -> &'static str {
    let truthy = match w.get("booted") {
        Some(Json::Bool(b)) => *b,
        Some(Json::Null) | None => false,
        Some(_) => true,
    };
    if truthy {
        "yes"
    } else {
        "no"
    }
}

fn workers(data: &Json) -> String {
    let rows = list(data, "workers");
    if rows.is_empty() {
        return "No workers running".into();
    }
    let mut lines = vec![
        format!("{:<10} {:<6} {:<8} LAST_BEAT", "PID", "AGE", "BOOTED"),
        "-".repeat(40),
    ];
    for w in rows {
        lines.push(format!(
            "{:<10} {:<6} {:<8} {}",
            field(w, "pid", "?"),
            field(w, "age", "?"),
            booted(w),
            heartbeat(w)
        ));
    }
    lines.push(String::new());
    let count = data
        .get("count")
        .map(py_str)
        .unwrap_or_else(|| rows.len().to_string());
    lines.push(format!("Total: {count} workers"));
    lines.join("\n")
}

fn dirty(data: &Json) -> String {
    if !matches!(data.get("enabled"), Some(Json::Bool(true))) {
        return "Dirty arbiter not running".into();
    }
    let mut lines = vec![
        format!("Dirty arbiter PID: {}", field(data, "pid", "None")),
        String::new(),
    ];
    let rows = list(data, "workers");
    if !rows.is_empty() {
        lines.push("DIRTY WORKERS:".into());
        lines.push(format!(
            "{:<10} {:<6} {:<30} LAST_BEAT",
            "PID", "AGE", "APPS"
        ));
        lines.push("-".repeat(60));
        for w in rows {
            let apps: Vec<String> = list(w, "apps").iter().map(py_str).collect();
            let apps: String = apps.join(", ").chars().take(30).collect();
            lines.push(format!(
                "{:<10} {:<6} {:<30} {}",
                field(w, "pid", "?"),
                field(w, "age", "?"),
                apps,
                heartbeat(w)
            ));
        }
        lines.push(String::new());
    }
    let apps = list(data, "apps");
    if !apps.is_empty() {
        lines.push("DIRTY APPS:".into());
        lines.push(format!("{:<30} {:<10} LIMIT", "APP", "WORKERS"));
        lines.push("-".repeat(50));
        for app in apps {
            let path: String = field(app, "import_path", "?").chars().take(30).collect();
            let limit = get(app, "worker_count")
                .map(py_str)
                .unwrap_or_else(|| "none".into());
            lines.push(format!(
                "{:<30} {:<10} {}",
                path,
                field(app, "current_workers", "0"),
                limit
            ));
        }
    }
    lines.join("\n")
}

fn stats(data: &Json) -> String {
    let uptime = get(data, "uptime")
        .and_then(Json::as_f64)
        .filter(|u| *u != 0.0);
    let uptime = match uptime {
        Some(u) => {
            let (h, m, s) = (
                (u / 3600.0).floor() as i64,
                ((u % 3600.0) / 60.0).floor() as i64,
                (u % 60.0) as i64,
            );
            if h != 0 {
                format!("{h}h {m}m {s}s")
            } else if m != 0 {
                format!("{m}m {s}s")
            } else {
                format!("{s}s")
            }
        }
        None => "unknown".into(),
    };
    let mut lines = vec![
        format!("Uptime:           {uptime}"),
        format!("PID:              {}", field(data, "pid", "unknown")),
        format!("Workers current:  {}", field(data, "workers_current", "0")),
        format!("Workers target:   {}", field(data, "workers_target", "0")),
        format!("Workers spawned:  {}", field(data, "workers_spawned", "0")),
        format!("Workers killed:   {}", field(data, "workers_killed", "0")),
        format!("Reloads:          {}", field(data, "reloads", "0")),
    ];
    if let Some(pid) = get(data, "dirty_arbiter_pid").filter(|p| p.as_i64() != Some(0)) {
        lines.push(format!("Dirty arbiter:    {}", py_str(pid)));
    }
    lines.join("\n")
}

fn listeners(data: &Json) -> String {
    let rows = list(data, "listeners");
    if rows.is_empty() {
        return "No listeners bound".into();
    }
    let mut lines = vec![
        format!("{:<40} {:<8} FD", "ADDRESS", "TYPE"),
        "-".repeat(55),
    ];
    for l in rows {
        lines.push(format!(
            "{:<40} {:<8} {}",
            field(l, "address", "?"),
            field(l, "type", "?"),
            field(l, "fd", "?")
        ));
    }
    lines.push(String::new());
    let count = data
        .get("count")
        .map(py_str)
        .unwrap_or_else(|| rows.len().to_string());
    lines.push(format!("Total: {count} listeners"));
    lines.join("\n")
}

fn config(data: &Json) -> String {
    let Some(map) = data.as_object() else {
        return py_str(data);
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let value = match &map[k.as_str()] {
                Json::Array(items) => items.iter().map(py_str).collect::<Vec<_>>().join(", "),
                other => py_str(other),
            };
            format!("{k}: {value}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn help(data: &Json) -> String {
    let commands = data.get("commands").and_then(Json::as_object);
    let mut rows: Vec<(&String, String)> = commands
        .map(|m| m.iter().map(|(k, v)| (k, py_str(v))).collect())
        .unwrap_or_default();
    rows.sort();
    let width = rows
        .iter()
        .map(|(c, _)| c.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let mut lines = vec!["Available commands:".to_string(), String::new()];
    for (cmd, desc) in rows {
        lines.push(format!("  {cmd:<width$} {desc}"));
    }
    lines.join("\n")
}

fn all(data: &Json) -> String {
    let empty = Json::Object(Default::default());
    let arbiter = data.get("arbiter").unwrap_or(&empty);
    let mut lines = vec![
        "ARBITER (master)".to_string(),
        format!("  PID: {}", field(arbiter, "pid", "?")),
        String::new(),
        format!("WEB WORKERS ({})", field(data, "web_worker_count", "0")),
    ];
    let web = list(data, "web_workers");
    if web.is_empty() {
        lines.push("  (none)".into());
    } else {
        lines.push(format!(
            "  {:<10} {:<6} {:<8} LAST_BEAT",
            "PID", "AGE", "BOOTED"
        ));
        lines.push(format!("  {}", "-".repeat(38)));
        for w in web {
            lines.push(format!(
                "  {:<10} {:<6} {:<8} {}",
                field(w, "pid", "?"),
                field(w, "age", "?"),
                booted(w),
                heartbeat(w)
            ));
        }
    }
    lines.push(String::new());
    let dirty = get(data, "dirty_arbiter").filter(|d| d.as_object().is_some_and(|m| !m.is_empty()));
    lines.push("DIRTY ARBITER".into());
    match dirty {
        None => lines.push("  (not running)".into()),
        Some(d) => {
            lines.push(format!("  PID: {}", field(d, "pid", "?")));
            lines.push(String::new());
            lines.push(format!(
                "DIRTY WORKERS ({})",
                field(data, "dirty_worker_count", "0")
            ));
            let rows = list(data, "dirty_workers");
            if rows.is_empty() {
                lines.push("  (none)".into());
            } else {
                lines.push(format!("  {:<10} {:<6} APPS", "PID", "AGE"));
                lines.push(format!("  {}", "-".repeat(50)));
                for w in rows {
                    let apps: Vec<String> = list(w, "apps").iter().map(py_str).collect();
                    let short = |a: &String| a.rsplit(':').next().unwrap_or(a).to_string();
                    let (pid, age) = (field(w, "pid", "?"), field(w, "age", "?"));
                    match apps.split_first() {
                        None => lines.push(format!("  {pid:<10} {age:<6} (no apps)")),
                        Some((first, more)) => {
                            lines.push(format!("  {pid:<10} {age:<6} {}", short(first)));
                            for a in more {
                                lines.push(format!("  {:<10} {:<6} {}", "", "", short(a)));
                            }
                        }
                    }
                }
            }
        }
    }
    lines.join("\n")
}

/// Python's `json.dumps(data, indent=2)`.
pub fn json_text(data: &Json) -> String {
    serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string())
}

/// The answer to `command` (the command words, without arguments) as gunicornc shows it.
pub fn response(command: &str, data: &Json) -> String {
    match command.trim().to_lowercase().as_str() {
        "show all" => all(data),
        "show workers" => workers(data),
        "show dirty" => dirty(data),
        "show stats" => stats(data),
        "show listeners" => listeners(data),
        "show config" => config(data),
        "help" => help(data),
        _ => match data {
            Json::Null => "OK".into(),
            Json::Object(m) if m.is_empty() => "OK".into(),
            Json::Array(a) if a.is_empty() => "OK".into(),
            other => json_text(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_laid_out_as_gunicornc_does() {
        let data = json!({"workers": [
            {"pid": 2788, "age": 1, "booted": false, "aborted": false, "last_heartbeat": 2.0},
            {"pid": 2789, "age": 2, "booted": true, "aborted": false, "last_heartbeat": 1.92},
        ], "count": 2});
        assert_eq!(
            response("show workers", &data),
            "PID        AGE    BOOTED   LAST_BEAT\n\
             ----------------------------------------\n\
             2788       1      no       2.0s ago\n\
             2789       2      yes      1.92s ago\n\
             \n\
             Total: 2 workers"
        );
        let stats = json!({"uptime": 3725.5, "pid": 10, "workers_current": 2,
            "workers_target": 2, "workers_spawned": 8, "workers_killed": 6, "reloads": 1,
            "dirty_arbiter_pid": null});
        assert_eq!(
            response("show stats", &stats),
            "Uptime:           1h 2m 5s\nPID:              10\nWorkers current:  2\n\
             Workers target:   2\nWorkers spawned:  8\nWorkers killed:   6\nReloads:          1"
        );
        let config = json!({"workers": 2, "bind": ["a:1", "b:2"], "pidfile": null,
            "daemon": false, "dirty_apps": []});
        assert_eq!(
            response("show config", &config),
            "bind: a:1, b:2\ndaemon: False\ndirty_apps: \npidfile: None\nworkers: 2"
        );
        assert_eq!(
            response("help", &json!({"commands": {"reload": "R", "help": "H"}})),
            "Available commands:\n\n  help     H\n  reload   R"
        );
        assert_eq!(response("worker add", &json!({})), "OK");
        assert_eq!(
            response(
                "worker add",
                &json!({"added": 1, "previous": 2, "total": 3})
            ),
            "{\n  \"added\": 1,\n  \"previous\": 2,\n  \"total\": 3\n}"
        );
        assert_eq!(
            response("show dirty", &json!({"enabled": false})),
            "Dirty arbiter not running"
        );
        assert!(response(
            "show all",
            &json!({"arbiter": {"pid": 5}, "web_workers": [],
            "web_worker_count": 0, "dirty_arbiter": null})
        )
        .ends_with("DIRTY ARBITER\n  (not running)"));
    }
}
