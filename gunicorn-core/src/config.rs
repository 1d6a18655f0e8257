//! The settings table: the single source of truth for every setting.
//!
//! Each entry gives the setting's name (gunicorn's), its command-line flags, its section, how the
//! command line takes it ([`Kind`]), the allowed values, its default and its documentation. The
//! `settings!` macro generates from one list both the typed [`Config`] struct and the [`SETTINGS`]
//! table, so the CLI parser, the config-file loader, `GUNICORN_CMD_ARGS`, `--print-config` and the
//! settings page in `docs/` cannot drift apart.
//!
//! Values arrive as [`Value`]s: strings from the command line, Python objects converted by the
//! config-file loader. Conversion follows gunicorn's validators (`gunicorn/config.py`): booleans
//! accept `true`/`false`, integers are parsed like `int(x, 0)` and negatives are refused, `umask`
//! reads a leading `0` as octal.

use std::fmt;

/// A setting's value before it is converted to the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python `None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (every command-line value arrives as one).
    Str(String),
    /// A list or tuple.
    List(Vec<Value>),
    /// A dict, in insertion order.
    Map(Vec<(String, Value)>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
        }
    }
}

/// How a setting is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag VALUE`.
    Value,
    /// `--flag` alone sets true (`store_true`).
    Flag,
    /// `--flag` alone sets false (`store_const False`, e.g. `--no-sendfile`).
    FlagFalse,
    /// `--flag VALUE`, repeatable; each occurrence adds one element.
    Append,
    /// `--flag [VALUE]`: the value is optional; bare, it means `implicit`.
    OptionalValue {
        /// The value a bare flag stands for.
        implicit: &'static str,
    },
    /// Only settable from the config file.
    FileOnly,
}

/// A bad setting name or value. The message is one line naming the setting and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No setting has this name.
    #[error("unknown setting: {0}")]
    Unknown(String),
    /// The value cannot be converted or is outside the allowed values.
    #[error("invalid value for {name}: {value}: {reason}")]
    Invalid {
        /// The setting's name.
        name: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: ValueError,
    },
}

/// Why a value was refused: the `reason` of [`ConfigError::Invalid`]. Each variant renders the
/// words that follow "invalid value for NAME: VALUE: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value is of a type the setting cannot take (`not a string: int`).
    #[error("not {expected}: {found}")]
    WrongType {
        /// What the setting takes, with its article (`a string`).
        expected: &'static str,
        /// The type of the value given, as Python names it.
        found: &'static str,
    },
    /// A string that does not read as the setting's type (`not an integer`).
    #[error("not {0}")]
    Unparsable(&'static str),
    /// An element of a list is not a string; holds the element's type.
    #[error("list item is not a string: {0}")]
    ListItem(&'static str),
    /// A value of a string-to-string mapping is not a string.
    #[error("value of {key} is not a string: {found}")]
    MapValue {
        /// The entry's key.
        key: String,
        /// The type of its value.
        found: &'static str,
    },
    /// The value reads but lies outside what the setting allows (`must be a positive integer`).
    #[error("must be {0}")]
    MustBe(&'static str),
    /// The value is none of the setting's allowed values.
    #[error("must be one of {}", .0.join(", "))]
    NotAChoice(&'static [&'static str]),
    /// The number does not fit the field's type.
    #[error("too large")]
    TooLarge,
}

impl ValueError {
    /// `v` is not of the type the setting takes, described by `expected` (`a string`).
    fn wrong_type(expected: &'static str, v: &Value) -> ValueError {
        ValueError::WrongType {
            expected,
            found: v.type_name(),
        }
    }
}

/// One row of the settings table.
pub struct Setting {
    /// gunicorn's name for the setting, as used in `gunicorn.conf.py`.
    pub name: &'static str,
    /// Command-line flags, short first (empty for file-only settings).
    pub flags: &'static [&'static str],
    /// The section of gunicorn's settings reference it belongs to.
    pub section: &'static str,
    /// How the command line takes it.
    pub kind: Kind,
    /// Allowed string values; empty means any.
    pub choices: &'static [&'static str],
    /// Metavariable shown in `--help`.
    pub meta: &'static str,
    /// The documentation text (first line is the summary).
    pub doc: &'static str,
    set: fn(&mut Config, Value) -> Result<(), ValueError>,
    get: fn(&Config) -> String,
    py: fn(&Config) -> String,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting").field("name", &self.name).finish()
    }
}

impl Setting {
    /// Converts `value` and stores it in `cfg`, checking the allowed choices.
    pub fn apply(&self, cfg: &mut Config, value: Value) -> Result<(), ConfigError> {
        let shown = render_value(&value);
        if !self.choices.is_empty() {
            if let Value::Str(s) = &value {
                if !self.choices.contains(&s.as_str()) {
                    return Err(ConfigError::Invalid {
                        name: self.name,
                        value: shown,
                        reason: ValueError::NotAChoice(self.choices),
                    });
                }
            }
        }
        (self.set)(cfg, value).map_err(|reason| ConfigError::Invalid {
            name: self.name,
            value: shown,
            reason,
        })
    }

    /// The current value in `cfg`, rendered as `--print-config` shows it.
    pub fn show(&self, cfg: &Config) -> String {
        (self.get)(cfg)
    }

    /// The default value, rendered.
    pub fn default_text(&self) -> String {
        (self.get)(&Config::default())
    }

    /// The current value in `cfg` as Python's `str()` of the value gunicorn holds shows it
    /// (`['a', 'b']` for lists, `18` for `umask = 0o22`): gunicorn's `--print-config` and its
    /// "Current configuration:" debug dump.
    pub fn show_py(&self, cfg: &Config) -> String {
        (self.py)(cfg)
    }

    /// The default value as [`Setting::show_py`] renders it (gunicorn's `--help` shows it).
    pub fn default_py(&self) -> String {
        (self.py)(&Config::default())
    }
}

pub use crate::pyrepr::py_repr_str;

/// Python's `repr()` of a float: always a decimal point or an exponent (`1.0`, `0.5`).
fn py_repr_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        f.to_string()
    }
}

/// Python's `repr()` of a value (as an element of a list or a dict shows).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Str(s) => py_repr_str(s),
        Value::Float(f) => py_repr_float(*f),
        Value::List(l) => format!("[{}]", l.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => render_value(other),
    }
}

fn py_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| py_repr_str(s)).collect();
    format!("[{}]", items.join(", "))
}

fn render_value(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        Value::List(l) => format!(
            "[{}]",
            l.iter().map(render_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", render_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Conversion from a [`Value`] into a setting's field type, and back to text.
pub trait SettingType: Sized {
    /// Converts, with gunicorn's validator rules.
    fn from_value(v: Value) -> Result<Self, ValueError>;
    /// Renders as text (what gunicorn's Python objects are built from, see `show`).
    fn render(&self) -> String;
    /// Python's `str()` of the value gunicorn would hold: what `--print-config` shows.
    fn py_str(&self) -> String {
        self.render()
    }
}

impl SettingType for bool {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::Bool(b) => Ok(b),
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ValueError::Unparsable("a boolean (true or false)")),
            },
            other => Err(ValueError::wrong_type("a boolean", &other)),
        }
    }
    fn render(&self) -> String {
        if *self { "True" } else { "False" }.into()
    }
}

/// Parses an integer the way Python's `int(x, 0)` does: `0x`, `0o`, `0b` prefixes, underscores
/// between digits. A leading `0` followed by digits is refused, as Python refuses it.
pub fn parse_int(s: &str) -> Result<i64, ValueError> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else {
        if lower.len() > 1 && lower.starts_with('0') && lower.chars().any(|c| c != '0' && c != '_')
        {
            return Err(ValueError::Unparsable("an integer"));
        }
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(ValueError::Unparsable("an integer"));
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n = i64::from_str_radix(&clean, radix).map_err(|_| ValueError::Unparsable("an integer"))?;
    Ok(if neg { -n } else { n })
}

fn non_negative(v: Value) -> Result<u64, ValueError> {
    let n = match v {
        Value::Int(i) => i,
        Value::Str(s) => parse_int(&s)?,
        // Bools included (`not an integer: bool`), though Python's int() would take them.
        other => return Err(ValueError::wrong_type("an integer", &other)),
    };
    u64::try_from(n).map_err(|_| ValueError::MustBe("a positive integer"))
}

impl SettingType for u64 {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        non_negative(v)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingType for usize {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let n = non_negative(v)?;
        usize::try_from(n).map_err(|_| ValueError::TooLarge)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingType for f64 {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let f = match v {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            Value::Str(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| ValueError::Unparsable("a number"))?,
            other => return Err(ValueError::wrong_type("a number", &other)),
        };
        if f.is_finite() && f >= 0.0 {
            Ok(f)
        } else {
            Err(ValueError::MustBe("a positive number"))
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
    fn py_str(&self) -> String {
        py_repr_float(*self)
    }
}

impl SettingType for String {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(ValueError::wrong_type("a string", &other)),
        }
    }
    fn render(&self) -> String {
        self.clone()
    }
}

impl SettingType for Option<String> {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(None),
            Value::Str(s) => Ok(Some(s)),
            other => Err(ValueError::wrong_type("a string", &other)),
        }
    }
    fn render(&self) -> String {
        self.clone().unwrap_or_else(|| "None".into())
    }
}

/// A list of strings; a single string becomes a one-element list (gunicorn's
/// `validate_list_string`).
impl SettingType for Vec<String> {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(Vec::new()),
            Value::Str(s) => Ok(vec![s]),
            Value::List(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Str(s) => Ok(s),
                    other => Err(ValueError::ListItem(other.type_name())),
                })
                .collect(),
            other => Err(ValueError::wrong_type("a list of strings", &other)),
        }
    }
    /// Python's list repr (`['a', 'b']`), as gunicorn's `--print-config` shows lists.
    fn render(&self) -> String {
        let items: Vec<String> = self.iter().map(|s| format!("'{s}'")).collect();
        format!("[{}]", items.join(", "))
    }
    fn py_str(&self) -> String {
        py_list(self)
    }
}

/// A comma-separated list given as one string, or a list (gunicorn's
/// `validate_string_to_addr_list` / `validate_string_to_list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommaList(pub Vec<String>);

impl CommaList {
    fn from_strs(items: &[&str]) -> Self {
        CommaList(items.iter().map(|s| s.to_string()).collect())
    }
}

impl SettingType for CommaList {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::Str(s) => Ok(CommaList(
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
            other => Vec::<String>::from_value(other).map(CommaList),
        }
    }
    fn render(&self) -> String {
        self.0.join(",")
    }
    /// gunicorn holds a list: `['127.0.0.1', '::1']`.
    fn py_str(&self) -> String {
        py_list(&self.0)
    }
}

/// A string-to-string mapping (`secure_scheme_headers`), in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StrMap(pub Vec<(String, String)>);

impl SettingType for StrMap {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::Map(items) => items
                .into_iter()
                .map(|(k, v)| match v {
                    Value::Str(s) => Ok((k, s)),
                    other => Err(ValueError::MapValue {
                        key: k,
                        found: other.type_name(),
                    }),
                })
                .collect::<Result<_, _>>()
                .map(StrMap),
            other => Err(ValueError::wrong_type("a dict", &other)),
        }
    }
    fn render(&self) -> String {
        format!(
            "{{{}}}",
            self.0
                .iter()
                .map(|(k, v)| format!("'{k}': '{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
    fn py_str(&self) -> String {
        format!(
            "{{{}}}",
            self.0
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr_str(v)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// A dict of any values (`logconfig_dict`), in insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dict(pub Vec<(String, Value)>);

impl SettingType for Dict {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(Dict::default()),
            Value::Map(items) => Ok(Dict(items)),
            other => Err(ValueError::wrong_type("a dict", &other)),
        }
    }
    fn render(&self) -> String {
        render_value(&Value::Map(self.0.clone()))
    }
    fn py_str(&self) -> String {
        py_repr(&Value::Map(self.0.clone()))
    }
}

/// A file-mode mask; strings with a leading `0` are octal, as gunicorn's `validate_pos_int`
/// with `int(x, 0)` after prefixing `0o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Umask(pub u32);

impl SettingType for Umask {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let n = match v {
            Value::Int(i) => i,
            Value::Str(s) => {
                let t = s.trim();
                if t.len() > 1 && t.starts_with('0') && t[1..].chars().all(|c| c.is_ascii_digit()) {
                    i64::from_str_radix(&t[1..], 8)
                        .map_err(|_| ValueError::Unparsable("an octal number"))?
                } else {
                    parse_int(t)?
                }
            }
            other => return Err(ValueError::wrong_type("an integer", &other)),
        };
        if (0..=0o7777).contains(&n) {
            Ok(Umask(n as u32))
        } else {
            Err(ValueError::MustBe("between 0 and 0o7777"))
        }
    }
    fn render(&self) -> String {
        format!("{:#o}", self.0)
    }
    /// gunicorn holds an int: `umask = 0o22` shows `18`.
    fn py_str(&self) -> String {
        self.0.to_string()
    }
}

/// `sendfile`: unset means "decided by `$SENDFILE`, else on".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendFile(pub Option<bool>);

impl SendFile {
    /// Whether sendfile(2) may be used, following gunicorn: an explicit setting wins, then
    /// `$SENDFILE` (`y`, `1`, `yes`, `true` enable it; anything else disables it), then on.
    pub fn enabled(&self) -> bool {
        match self.0 {
            Some(b) => b,
            None => match std::env::var("SENDFILE") {
                Ok(v) => matches!(v.to_ascii_lowercase().as_str(), "y" | "1" | "yes" | "true"),
                Err(_) => true,
            },
        }
    }
}

impl SettingType for SendFile {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(SendFile(None)),
            other => bool::from_value(other).map(|b| SendFile(Some(b))),
        }
    }
    fn render(&self) -> String {
        self.0.map(|b| b.render()).unwrap_or_else(|| "None".into())
    }
}

/// `proxy_protocol`: `off`, `v1`, `v2` or `auto`; also true/false/1/0/none as gunicorn accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// No PROXY header is read.
    #[default]
    Off,
    /// Only v1 (text).
    V1,
    /// Only v2 (binary).
    V2,
    /// Either.
    Auto,
}

impl SettingType for ProxyProtocol {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None | Value::Bool(false) => Ok(ProxyProtocol::Off),
            Value::Bool(true) => Ok(ProxyProtocol::Auto),
            Value::Int(0) => Ok(ProxyProtocol::Off),
            Value::Int(1) => Ok(ProxyProtocol::Auto),
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "off" | "false" | "0" | "none" | "" => Ok(ProxyProtocol::Off),
                "v1" => Ok(ProxyProtocol::V1),
                "v2" => Ok(ProxyProtocol::V2),
                "auto" | "true" | "1" => Ok(ProxyProtocol::Auto),
                _ => Err(ValueError::NotAChoice(&["off", "v1", "v2", "auto"])),
            },
            other => Err(ValueError::wrong_type("a proxy protocol mode", &other)),
        }
    }
    fn render(&self) -> String {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
            ProxyProtocol::Auto => "auto",
        }
        .into()
    }
}

/// `protocol`: what the listeners speak (gunicorn 27): `http` (HTTP/1.x), or `uwsgi`, the uWSGI
/// binary protocol nginx's `uwsgi_pass` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Http,
    Uwsgi,
}

impl SettingType for Protocol {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            // gunicorn's default when a config file sets `protocol = None`.
            Value::None => Ok(Protocol::Http),
            Value::Str(s) => match s.as_str() {
                "http" => Ok(Protocol::Http),
                "uwsgi" => Ok(Protocol::Uwsgi),
                _ => Err(ValueError::NotAChoice(&["http", "uwsgi"])),
            },
            other => Err(ValueError::wrong_type("a protocol name", &other)),
        }
    }
    fn render(&self) -> String {
        match self {
            Protocol::Http => "http",
            Protocol::Uwsgi => "uwsgi",
        }
        .into()
    }
}

/// `cert_reqs`: whether clients must present a certificate (Python's `ssl.CERT_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertReqs {
    /// `0`, `CERT_NONE`: no client certificate is asked for.
    #[default]
    None,
    /// `1`, `CERT_OPTIONAL`: asked for, and verified against `ca_certs` when given.
    Optional,
    /// `2`, `CERT_REQUIRED`: a client without a certificate `ca_certs` verifies is refused.
    Required,
}

impl SettingType for CertReqs {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let n = match v {
            Value::Int(n) => n,
            Value::Str(s) => match s
                .trim()
                .trim_start_matches("ssl.")
                .to_ascii_uppercase()
                .as_str()
            {
                "CERT_NONE" => 0,
                "CERT_OPTIONAL" => 1,
                "CERT_REQUIRED" => 2,
                t => parse_int(t).map_err(|_| ValueError::NotAChoice(CERT_REQS))?,
            },
            other => return Err(ValueError::wrong_type("an integer", &other)),
        };
        match n {
            0 => Ok(CertReqs::None),
            1 => Ok(CertReqs::Optional),
            2 => Ok(CertReqs::Required),
            _ => Err(ValueError::NotAChoice(CERT_REQS)),
        }
    }
    fn render(&self) -> String {
        (*self as u8).to_string()
    }
}

const CERT_REQS: &[&str] = &["0", "1", "2", "CERT_NONE", "CERT_OPTIONAL", "CERT_REQUIRED"];

/// `ssl_version`: gunicorn's (Python's `ssl.PROTOCOL_*`) names and numbers, read as the TLS
/// versions accepted. TLS 1.0 and 1.1 (and SSL) are refused: they are broken, and rustls does not
/// implement them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslVersion {
    /// `PROTOCOL_TLS_SERVER` (gunicorn's default), `PROTOCOL_TLS`, `PROTOCOL_SSLv23`: TLS 1.2
    /// and 1.3.
    #[default]
    Tls,
    /// `PROTOCOL_TLSv1_2`: TLS 1.2 only.
    Tls12,
    /// `TLSv1_3` (no Python constant): TLS 1.3 only.
    Tls13,
}

impl SettingType for SslVersion {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let name = match v {
            // Python's numbers: 2 PROTOCOL_TLS (= SSLv23), 3 TLSv1, 4 TLSv1_1, 5 TLSv1_2,
            // 16 TLS_CLIENT, 17 TLS_SERVER.
            Value::Int(2 | 17) => "TLS".to_string(),
            Value::Int(5) => "TLSV1_2".to_string(),
            Value::Int(3 | 4) => return Err(ValueError::MustBe(TLS_1_2_OR_LATER)),
            Value::Int(_) => return Err(ValueError::NotAChoice(SSL_VERSIONS)),
            Value::Str(s) => {
                let s = s.trim().trim_start_matches("ssl.").to_ascii_uppercase();
                match s.trim_start_matches("PROTOCOL_") {
                    "2" | "17" => "TLS".to_string(),
                    "5" => "TLSV1_2".to_string(),
                    other => other.to_string(),
                }
            }
            other => return Err(ValueError::wrong_type("a protocol name", &other)),
        };
        match name.as_str() {
            "TLS" | "TLS_SERVER" | "SSLV23" => Ok(SslVersion::Tls),
            "TLSV1_2" => Ok(SslVersion::Tls12),
            "TLSV1_3" => Ok(SslVersion::Tls13),
            "TLSV1" | "TLSV1_1" | "SSLV2" | "SSLV3" | "3" | "4" => {
                Err(ValueError::MustBe(TLS_1_2_OR_LATER))
            }
            _ => Err(ValueError::NotAChoice(SSL_VERSIONS)),
        }
    }
    fn render(&self) -> String {
        match self {
            SslVersion::Tls => "TLS_SERVER",
            SslVersion::Tls12 => "TLSv1_2",
            SslVersion::Tls13 => "TLSv1_3",
        }
        .into()
    }
    /// gunicorn holds Python's `ssl.PROTOCOL_*` number: 2 (`PROTOCOL_TLS`, its default) and 5
    /// (`PROTOCOL_TLSv1_2`); TLS 1.3 alone has no number in Python and shows its name.
    fn py_str(&self) -> String {
        match self {
            SslVersion::Tls => "2",
            SslVersion::Tls12 => "5",
            SslVersion::Tls13 => "TLSv1_3",
        }
        .into()
    }
}

const SSL_VERSIONS: &[&str] = &["TLS_SERVER", "TLS", "SSLv23", "TLSv1_2", "TLSv1_3"];
const TLS_1_2_OR_LATER: &str =
    "TLS 1.2 or later (TLSv1, TLSv1_1 and SSL are refused: use TLS_SERVER or TLSv1_2)";

/// One protocol of `http_protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProtocol {
    /// `h1`: HTTP/1.1 (and 1.0).
    H1,
    /// `h2`: HTTP/2, by ALPN over TLS, or cleartext as `http2_cleartext` allows.
    H2,
}

impl HttpProtocol {
    /// gunicorn's identifier.
    pub fn name(self) -> &'static str {
        match self {
            HttpProtocol::H1 => "h1",
            HttpProtocol::H2 => "h2",
        }
    }
}

/// `http_protocols`: the protocols served, in order of preference (the ALPN order), as
/// gunicorn's `validate_http_protocols`: comma-separated `h1`/`h2`, no duplicates; empty
/// means `h1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProtocols(pub Vec<HttpProtocol>);

impl Default for HttpProtocols {
    fn default() -> Self {
        HttpProtocols(vec![HttpProtocol::H1])
    }
}

impl HttpProtocols {
    /// Whether HTTP/2 is among them.
    pub fn h2(&self) -> bool {
        self.0.contains(&HttpProtocol::H2)
    }
}

impl SettingType for HttpProtocols {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let s = match v {
            Value::None => return Ok(HttpProtocols::default()),
            Value::Str(s) => s,
            other => return Err(ValueError::wrong_type("a string", &other)),
        };
        let mut protocols = Vec::new();
        for name in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let p = match name.to_ascii_lowercase().as_str() {
                "h1" => HttpProtocol::H1,
                "h2" => HttpProtocol::H2,
                _ => return Err(ValueError::NotAChoice(&["h1", "h2"])),
            };
            if protocols.contains(&p) {
                return Err(ValueError::MustBe("a list without duplicate protocols"));
            }
            protocols.push(p);
        }
        if protocols.is_empty() {
            return Ok(HttpProtocols::default());
        }
        Ok(HttpProtocols(protocols))
    }
    fn render(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|p| p.name()).collect();
        names.join(",")
    }
    /// gunicorn holds the validated list: `['h2', 'h1']`.
    fn py_str(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|p| format!("'{}'", p.name())).collect();
        format!("[{}]", names.join(", "))
    }
}

/// `asgi_loop`: the asgi worker's event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsgiLoop {
    /// uvloop when it can be imported, else asyncio.
    #[default]
    Auto,
    Asyncio,
    Uvloop,
}

impl SettingType for AsgiLoop {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(AsgiLoop::Auto),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "auto" => Ok(AsgiLoop::Auto),
                "asyncio" => Ok(AsgiLoop::Asyncio),
                "uvloop" => Ok(AsgiLoop::Uvloop),
                _ => Err(ValueError::NotAChoice(&["auto", "asyncio", "uvloop"])),
            },
            other => Err(ValueError::wrong_type("a string", &other)),
        }
    }
    fn render(&self) -> String {
        match self {
            AsgiLoop::Auto => "auto",
            AsgiLoop::Asyncio => "asyncio",
            AsgiLoop::Uvloop => "uvloop",
        }
        .into()
    }
}

/// `asgi_lifespan`: whether the ASGI lifespan protocol runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsgiLifespan {
    /// Run it; an app that does not support it is served without.
    #[default]
    Auto,
    /// Run it; any failure stops the worker.
    On,
    Off,
}

impl SettingType for AsgiLifespan {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(AsgiLifespan::Auto),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "auto" => Ok(AsgiLifespan::Auto),
                "on" => Ok(AsgiLifespan::On),
                "off" => Ok(AsgiLifespan::Off),
                _ => Err(ValueError::NotAChoice(&["auto", "on", "off"])),
            },
            other => Err(ValueError::wrong_type("a string", &other)),
        }
    }
    fn render(&self) -> String {
        match self {
            AsgiLifespan::Auto => "auto",
            AsgiLifespan::On => "on",
            AsgiLifespan::Off => "off",
        }
        .into()
    }
}

/// `http2_cleartext`: how HTTP/2 without TLS (h2c) may start, for peers in
/// `forwarded_allow_ips` only (gunicorn 27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum H2Cleartext {
    /// No cleartext HTTP/2.
    #[default]
    Off,
    /// A connection opening with the HTTP/2 preface (RFC 9113 §3.3).
    PriorKnowledge,
    /// An HTTP/1.1 request with `Upgrade: h2c` (RFC 7540 §3.2).
    Upgrade,
    /// Either.
    Both,
}

impl H2Cleartext {
    /// Prior-knowledge h2c is accepted.
    pub fn prior_knowledge(self) -> bool {
        matches!(self, H2Cleartext::PriorKnowledge | H2Cleartext::Both)
    }
    /// `Upgrade: h2c` is honoured.
    pub fn upgrade(self) -> bool {
        matches!(self, H2Cleartext::Upgrade | H2Cleartext::Both)
    }
}

impl SettingType for H2Cleartext {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        match v {
            Value::None => Ok(H2Cleartext::Off),
            // gunicorn keeps `http2_cleartext = True` meaning prior knowledge.
            Value::Bool(true) => Ok(H2Cleartext::PriorKnowledge),
            Value::Bool(false) => Ok(H2Cleartext::Off),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "off" => Ok(H2Cleartext::Off),
                "prior-knowledge" => Ok(H2Cleartext::PriorKnowledge),
                "upgrade" => Ok(H2Cleartext::Upgrade),
                "both" => Ok(H2Cleartext::Both),
                _ => Err(ValueError::NotAChoice(&[
                    "off",
                    "prior-knowledge",
                    "upgrade",
                    "both",
                ])),
            },
            other => Err(ValueError::wrong_type("a string", &other)),
        }
    }
    fn render(&self) -> String {
        match self {
            H2Cleartext::Off => "off",
            H2Cleartext::PriorKnowledge => "prior-knowledge",
            H2Cleartext::Upgrade => "upgrade",
            H2Cleartext::Both => "both",
        }
        .into()
    }
}

/// An HTTP/2 SETTINGS value with the bounds RFC 9113 §6.5.2 (and gunicorn's validators) put on
/// it: `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Value<const MIN: u32, const MAX: u32>(pub u32);

impl<const MIN: u32, const MAX: u32> H2Value<MIN, MAX> {
    const BOUNDS: &'static str = bounds_text(MIN);
}

/// The text of the bounds of the three bounded HTTP/2 settings, by their minimum.
const fn bounds_text(min: u32) -> &'static str {
    match min {
        // http2_max_frame_size
        16384 => "between 16384 and 16777215",
        // http2_max_concurrent_streams
        1 => "between 1 and 2147483647",
        // http2_initial_window_size
        _ => "at most 2147483647",
    }
}

impl<const MIN: u32, const MAX: u32> SettingType for H2Value<MIN, MAX> {
    fn from_value(v: Value) -> Result<Self, ValueError> {
        let n = non_negative(v)?;
        if n < u64::from(MIN) || n > u64::from(MAX) {
            return Err(ValueError::MustBe(Self::BOUNDS));
        }
        Ok(H2Value(n as u32))
    }
    fn render(&self) -> String {
        self.0.to_string()
    }
}

macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $ty:ty = $default:expr ;
            section $section:literal, flags [$($flag:literal),*], kind $kind:expr
            $(, meta $meta:literal)? $(, choices [$($choice:literal),*])? ;
    )*) => {
        /// Every setting's value. Built from [`Config::default`], then the config file,
        /// `GUNICORN_CMD_ARGS` and the command line, in that order.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $name: $default, )* }
            }
        }

        /// The settings table, in gunicorn's order within each section.
        pub static SETTINGS: &[Setting] = &[
            $( Setting {
                name: stringify!($name),
                flags: &[$($flag),*],
                section: $section,
                kind: $kind,
                choices: &[$($($choice),*)?],
                meta: settings!(@meta $($meta)?),
                doc: concat!($($doc, "\n"),*),
                set: |cfg, v| { cfg.$name = <$ty as SettingType>::from_value(v)?; Ok(()) },
                get: |cfg| <$ty as SettingType>::render(&cfg.$name),
                py: |cfg| <$ty as SettingType>::py_str(&cfg.$name),
            }, )*
        ];
    };
    (@meta $meta:literal) => { $meta };
    (@meta) => { "" };
}

fn default_bind() -> Vec<String> {
    // gunicorn: `['0.0.0.0:$PORT']` when PORT is set, else `['127.0.0.1:8000']`.
    match std::env::var("PORT") {
        Ok(port) if !port.is_empty() => vec![format!("0.0.0.0:{port}")],
        _ => vec!["127.0.0.1:8000".into()],
    }
}

fn default_workers() -> u64 {
    std::env::var("WEB_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

fn default_forwarded_allow_ips() -> CommaList {
    match std::env::var("FORWARDED_ALLOW_IPS") {
        Ok(v) => CommaList::from_value(Value::Str(v)).unwrap_or_default(),
        Err(_) => CommaList::from_strs(&["127.0.0.1", "::1"]),
    }
}

fn default_syslog_addr() -> String {
    // gunicorn: the platform's local syslog socket on BSDs and macOS, else UDP to localhost.
    if cfg!(target_os = "macos") {
        "unix:///var/run/syslog".into()
    } else if cfg!(any(target_os = "freebsd", target_os = "dragonfly")) {
        "unix:///var/run/log".into()
    } else if cfg!(target_os = "openbsd") {
        "unix:///dev/log".into()
    } else {
        "udp://localhost:514".into()
    }
}

/// gunicorn's default control socket: `$XDG_RUNTIME_DIR/gunicorn.ctl` when that variable names
/// a directory, else `$HOME/.gunicorn/gunicorn.ctl` (the directory is created when the socket is).
pub fn default_control_socket() -> String {
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let dir = std::path::PathBuf::from(xdg);
        if dir.is_dir() {
            return dir.join("gunicorn.ctl").to_string_lossy().into_owned();
        }
    }
    // Python's `os.path.expanduser('~')`: $HOME, else the password database.
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| std::path::PathBuf::from("/"));
    home.join(".gunicorn/gunicorn.ctl")
        .to_string_lossy()
        .into_owned()
}

fn default_secure_scheme_headers() -> StrMap {
    StrMap(vec![
        ("X-FORWARDED-PROTOCOL".into(), "ssl".into()),
        ("X-FORWARDED-PROTO".into(), "https".into()),
        ("X-FORWARDED-SSL".into(), "on".into()),
    ])
}

settings! {
    // ---- Config File ----
    /// The config file: `PATH`, `file:PATH` or `python:MODULE`. Default: `./gunicorn.conf.py` if it exists.
    config: Option<String> = None;
        section "Config File", flags ["-c", "--config"], kind Kind::Value, meta "CONFIG";
    /// A WSGI application path `module:callable`, used when no APP_MODULE is given on the command line.
    wsgi_app: Option<String> = None;
        section "Config File", flags [], kind Kind::FileOnly;

    // ---- Server Socket ----
    /// The socket to bind: `HOST`, `HOST:PORT`, `[IPv6]:PORT`, `unix:PATH` or `fd://FD`. Repeatable.
    /// Default `127.0.0.1:8000`, or `0.0.0.0:$PORT` when `$PORT` is set.
    bind: Vec<String> = default_bind();
        section "Server Socket", flags ["-b", "--bind"], kind Kind::Append, meta "ADDRESS";
    /// The maximum number of pending connections (the `listen()` backlog).
    backlog: u64 = 2048;
        section "Server Socket", flags ["--backlog"], kind Kind::Value, meta "INT";

    // ---- Worker Processes ----
    /// The number of worker processes. Default `$WEB_CONCURRENCY`, else 1.
    workers: u64 = default_workers();
        section "Worker Processes", flags ["-w", "--workers"], kind Kind::Value, meta "INT";
    /// The worker class: a registered name (`sync`, `gthread`, ...) or one of gunicorn's spellings
    /// (`egg:gunicorn#sync`, `gunicorn.workers.sync.SyncWorker`).
    worker_class: String = "sync".into();
        section "Worker Processes", flags ["-k", "--worker-class"], kind Kind::Value, meta "STRING";
    /// The number of worker threads for handling requests (gthread). `-k sync` with more than one
    /// thread runs the gthread worker, as gunicorn does.
    threads: u64 = 1;
        section "Worker Processes", flags ["--threads"], kind Kind::Value, meta "INT";
    /// The maximum number of simultaneous clients per worker (gthread, gevent).
    worker_connections: u64 = 1000;
        section "Worker Processes", flags ["--worker-connections"], kind Kind::Value, meta "INT";
    /// Restart a worker after this many requests; 0 disables.
    max_requests: u64 = 0;
        section "Worker Processes", flags ["--max-requests"], kind Kind::Value, meta "INT";
    /// Add a random 0..=jitter to max_requests for each worker, so workers do not restart together.
    max_requests_jitter: u64 = 0;
        section "Worker Processes", flags ["--max-requests-jitter"], kind Kind::Value, meta "INT";
    /// A worker silent for more than this many seconds is killed and replaced; 0 disables.
    timeout: u64 = 30;
        section "Worker Processes", flags ["-t", "--timeout"], kind Kind::Value, meta "INT";
    /// Seconds workers get to finish their requests after a graceful stop, before SIGKILL.
    graceful_timeout: u64 = 30;
        section "Worker Processes", flags ["--graceful-timeout"], kind Kind::Value, meta "INT";
    /// Seconds to wait for the next request on a keep-alive connection; 0 disables keep-alive.
    /// The sync worker does not keep connections alive.
    keepalive: u64 = 2;
        section "Worker Processes", flags ["--keep-alive"], kind Kind::Value, meta "INT";
    // The asgi worker's.
    /// The event loop of the asgi worker: `auto` (uvloop when it is installed, else asyncio),
    /// `asyncio` or `uvloop` (which must then be installed).
    asgi_loop: AsgiLoop = AsgiLoop::Auto;
        section "Worker Processes", flags ["--asgi-loop"], kind Kind::Value, meta "STRING";
    /// The ASGI lifespan protocol (startup before serving, shutdown after): `auto` (run it, and
    /// go on without it when the app does not support it), `on` (a failure stops the worker
    /// with exit 3) or `off`.
    asgi_lifespan: AsgiLifespan = AsgiLifespan::Auto;
        section "Worker Processes", flags ["--asgi-lifespan"], kind Kind::Value, meta "STRING";
    /// Seconds an ASGI application gets after the client disconnected (it sees
    /// `http.disconnect`) before its task is cancelled.
    asgi_disconnect_grace_period: u64 = 3;
        section "Worker Processes", flags ["--asgi-disconnect-grace-period"], kind Kind::Value, meta "INT";
    /// The largest WebSocket message accepted, in bytes (close 1009 beyond it); 0 for no limit.
    websocket_max_message_size: u64 = 16777216;
        section "Worker Processes", flags ["--websocket-max-message-size"], kind Kind::Value, meta "INT";

    // ---- Security ----
    /// The maximum size of the request line in bytes. 0 means unlimited; values of 8190 or more are capped to 8190.
    limit_request_line: u64 = 4094;
        section "Security", flags ["--limit-request-line"], kind Kind::Value, meta "INT";
    /// The maximum number of header fields in a request. 0, or more than 32768, means 32768.
    limit_request_fields: u64 = 100;
        section "Security", flags ["--limit-request-fields"], kind Kind::Value, meta "INT";
    /// The maximum size of one header line in bytes, CRLF included. 0 means 8190 (gunicorn's behaviour).
    limit_request_field_size: u64 = 8190;
        section "Security", flags ["--limit-request-field_size", "--limit-request-field-size"], kind Kind::Value, meta "INT";

    // ---- Debugging ----
    /// Install a trace function that prints every line of Python executed by the server, as
    /// `module:lineno: source line` on stdout (the nuclear option). It is set in the master
    /// when Python runs there (`--preload`, the config file's hooks) and in every thread of a
    /// worker that runs Python: the main thread, each gthread pool thread, and the greenlet
    /// workers' hub, whose greenlets share their thread's trace function.
    spew: bool = false;
        section "Debugging", flags ["--spew"], kind Kind::Flag;
    /// Load the configuration and the application, then exit: 0 if both are valid, 1 otherwise.
    check_config: bool = false;
        section "Debugging", flags ["--check-config"], kind Kind::Flag;
    /// Print the resolved configuration and exit (implies --check-config).
    print_config: bool = false;
        section "Debugging", flags ["--print-config"], kind Kind::Flag;
    /// Restart a worker when a file of its application changes (development only): every
    /// imported module's file and the --reload-extra-file patterns are watched by the worker.
    /// With it, an application that fails to import with a SyntaxError is served as a 500 page
    /// showing the traceback until the file is fixed.
    reload: bool = false;
        section "Debugging", flags ["--reload"], kind Kind::Flag;
    /// How --reload watches files: `inotify` (Linux), `poll` (mtime scan every second), or
    /// `auto` (inotify when available, else poll).
    reload_engine: String = "auto".into();
        section "Debugging", flags ["--reload-engine"], kind Kind::Value, meta "STRING", choices ["auto", "poll", "inotify"];
    /// An extra file or glob pattern watched by --reload (patterns are expanded again on each
    /// check, so files created later are picked up). Repeatable; only used with --reload.
    reload_extra_files: Vec<String> = Vec::new();
        section "Debugging", flags ["--reload-extra-file"], kind Kind::Append, meta "FILES";

    // ---- SSL ----
    /// The PEM file of the private key. TLS is on when `certfile` or `keyfile` is set (both are
    /// then needed; the key may also be in `certfile`). Encrypted keys are refused.
    keyfile: Option<String> = None;
        section "SSL", flags ["--keyfile"], kind Kind::Value, meta "FILE";
    /// The PEM file of the certificate chain (the server's certificate first).
    certfile: Option<String> = None;
        section "SSL", flags ["--certfile"], kind Kind::Value, meta "FILE";
    /// The TLS versions accepted: `TLS_SERVER` (default: TLS 1.2 and 1.3), `TLSv1_2` (only
    /// 1.2), `TLSv1_3` (only 1.3); Python's names and numbers also work. TLS 1.0/1.1 are refused.
    ssl_version: SslVersion = SslVersion::Tls;
        section "SSL", flags ["--ssl-version"], kind Kind::Value, meta "STRING";
    /// Client certificates: 0 none (default), 1 optional, 2 required (verified against
    /// `ca_certs`, which 1 and 2 need).
    cert_reqs: CertReqs = CertReqs::None;
        section "SSL", flags ["--cert-reqs"], kind Kind::Value, meta "INT";
    /// The PEM file of the CAs that client certificates are verified against.
    ca_certs: Option<String> = None;
        section "SSL", flags ["--ca-certs"], kind Kind::Value, meta "FILE";
    /// A client closing TCP without TLS's close_notify ends its input like a clean close
    /// (default on); off, it is a connection error.
    suppress_ragged_eofs: bool = true;
        section "SSL", flags ["--suppress-ragged-eofs"], kind Kind::Flag;
    /// Accepted for gunicorn's command lines. The handshake always runs before the first
    /// request is read, off the GIL, whatever its value (see docs/tls.md).
    do_handshake_on_connect: bool = false;
        section "SSL", flags ["--do-handshake-on-connect"], kind Kind::Flag;
    /// The cipher suites allowed, `:`-separated: OpenSSL or IANA names of the suites rustls
    /// implements, or `DEFAULT`. Anything else (OpenSSL keywords like `HIGH`) is refused by name.
    ciphers: Option<String> = None;
        section "SSL", flags ["--ciphers"], kind Kind::Value, meta "STRING";

    // ---- HTTP/2 ----
    /// The protocols served, comma-separated in order of preference: `h1` (HTTP/1.1), `h2`
    /// (HTTP/2: by ALPN over TLS, or cleartext as `http2_cleartext` allows). `h2` is served by the
    /// gthread worker; the others warn at boot and serve HTTP/1.1, as gunicorn's sync worker does.
    http_protocols: HttpProtocols = HttpProtocols::default();
        section "HTTP/2", flags ["--http-protocols"], kind Kind::Value, meta "STRING";
    /// HTTP/2 without TLS (h2c) for peers in `forwarded_allow_ips` (others get HTTP/1.x):
    /// `off`, `prior-knowledge` (a connection opening with the HTTP/2 preface; a trusted peer
    /// that sends anything else gets 400), `upgrade` (an HTTP/1.1 request with `Upgrade: h2c`
    /// switches the connection, the request becoming its first stream) or `both`. Needs `h2`
    /// in `http_protocols`; ignored with TLS, where ALPN decides.
    http2_cleartext: H2Cleartext = H2Cleartext::Off;
        section "HTTP/2", flags ["--http2-cleartext"], kind Kind::Value, meta "STRING";
    /// The most streams (requests) one HTTP/2 connection may have open at once
    /// (SETTINGS_MAX_CONCURRENT_STREAMS).
    http2_max_concurrent_streams: H2Value<1, 2147483647> = H2Value(100);
        section "HTTP/2", flags ["--http2-max-concurrent-streams"], kind Kind::Value, meta "INT";
    /// The flow-control window, in bytes, of each stream's request body
    /// (SETTINGS_INITIAL_WINDOW_SIZE): how much a client may send before the app reads it.
    http2_initial_window_size: H2Value<0, 2147483647> = H2Value(65535);
        section "HTTP/2", flags ["--http2-initial-window-size"], kind Kind::Value, meta "INT";
    /// The largest frame payload accepted, 16384 to 16777215 (SETTINGS_MAX_FRAME_SIZE).
    http2_max_frame_size: H2Value<16384, 16777215> = H2Value(16384);
        section "HTTP/2", flags ["--http2-max-frame-size"], kind Kind::Value, meta "INT";
    /// The largest header list, in bytes after HPACK decoding (SETTINGS_MAX_HEADER_LIST_SIZE):
    /// the HPACK-bomb bound. 0 means unlimited (not recommended).
    http2_max_header_list_size: u64 = 65536;
        section "HTTP/2", flags ["--http2-max-header-list-size"], kind Kind::Value, meta "INT";

    // ---- Server Mechanics ----
    /// Load the application in the master before forking the workers.
    preload_app: bool = false;
        section "Server Mechanics", flags ["--preload"], kind Kind::Flag;
    /// Disable sendfile(2) for `wsgi.file_wrapper` responses. Unset: `$SENDFILE` decides, else on.
    sendfile: SendFile = SendFile(None);
        section "Server Mechanics", flags ["--no-sendfile"], kind Kind::FlagFalse;
    /// Set SO_REUSEPORT on the listening sockets.
    reuse_port: bool = false;
        section "Server Mechanics", flags ["--reuse-port"], kind Kind::Flag;
    /// Change to this directory before loading the application; it is also put on `sys.path`.
    chdir: Option<String> = None;
        section "Server Mechanics", flags ["--chdir"], kind Kind::Value, meta "CHDIR";
    /// Detach from the terminal and run in the background (double fork, new session, umask 022,
    /// stdio to /dev/null unless --enable-stdio-inheritance). WINCH then stops the workers.
    daemon: bool = false;
        section "Server Mechanics", flags ["-D", "--daemon"], kind Kind::Flag;
    /// With --daemon, keep stdout and stderr (stdin still goes to /dev/null).
    enable_stdio_inheritance: bool = false;
        section "Server Mechanics", flags ["-R", "--enable-stdio-inheritance"], kind Kind::Flag;
    /// Write the master's pid to this file (atomically); refused if it names another live process.
    pidfile: Option<String> = None;
        section "Server Mechanics", flags ["-p", "--pid"], kind Kind::Value, meta "FILE";
    /// The directory for the workers' heartbeat files. Default: the system temp directory.
    /// A tmpfs such as `/dev/shm` avoids disk stalls that look like worker timeouts.
    worker_tmp_dir: Option<String> = None;
        section "Server Mechanics", flags ["--worker-tmp-dir"], kind Kind::Value, meta "DIR";
    /// Switch worker processes to run as this user: a name or a numeric uid. Default: unchanged.
    user: Option<String> = None;
        section "Server Mechanics", flags ["-u", "--user"], kind Kind::Value, meta "USER";
    /// Switch worker processes to run as this group: a name or a numeric gid. Default: the
    /// --user's primary group when --user is given, else unchanged.
    group: Option<String> = None;
        section "Server Mechanics", flags ["-g", "--group"], kind Kind::Value, meta "GROUP";
    /// The umask for the files gunicorn creates: unix socket files and the worker heartbeat files.
    /// `0o22` or `022` (a leading 0 is octal).
    umask: Umask = Umask(0);
        section "Server Mechanics", flags ["-m", "--umask"], kind Kind::Value, meta "INT";
    /// With --user, also load that user's supplementary groups (initgroups(3)).
    initgroups: bool = false;
        section "Server Mechanics", flags ["--initgroups"], kind Kind::Flag;
    /// Set an environment variable `KEY=VALUE` in the master and the workers. Repeatable.
    raw_env: Vec<String> = Vec::new();
        section "Server Mechanics", flags ["-e", "--env"], kind Kind::Append, meta "ENV";
    /// A comma-separated list of directories to add to the Python path.
    pythonpath: Option<String> = None;
        section "Server Mechanics", flags ["--pythonpath"], kind Kind::Value, meta "STRING";
    /// A PasteDeploy ini file (`PATH` or `PATH#section`) to load the application from, instead of
    /// APP_MODULE. Its `[loggers]` sections configure logging unless `logconfig` is set.
    paste: Option<String> = None;
        section "Server Mechanics", flags ["--paste", "--paster"], kind Kind::Value, meta "STRING";
    /// A `KEY=VALUE` pair for the PasteDeploy global configuration (`global_conf`). Repeatable.
    raw_paste_global_conf: Vec<String> = Vec::new();
        section "Server Mechanics", flags ["--paste-global"], kind Kind::Append, meta "CONF";
    /// Headers that mark a request as https when sent by a trusted proxy (`forwarded_allow_ips`).
    secure_scheme_headers: StrMap = default_secure_scheme_headers();
        section "Server Mechanics", flags [], kind Kind::FileOnly;
    /// Proxies trusted to set secure-scheme and forwarder headers: IPs, CIDR networks, or `*`.
    /// Default `$FORWARDED_ALLOW_IPS`, else `127.0.0.1,::1`.
    forwarded_allow_ips: CommaList = default_forwarded_allow_ips();
        section "Server Mechanics", flags ["--forwarded-allow-ips"], kind Kind::Value, meta "STRING";
    /// Read a PROXY protocol header at the start of each connection: off, v1, v2 or auto. Bare flag = auto.
    proxy_protocol: ProxyProtocol = ProxyProtocol::Off;
        section "Server Mechanics", flags ["--proxy-protocol"], kind Kind::OptionalValue { implicit: "auto" }, meta "MODE";
    /// Peers allowed to send a PROXY header: IPs, CIDR networks, or `*`.
    proxy_allow_ips: CommaList = CommaList::from_strs(&["127.0.0.1", "::1"]);
        section "Server Mechanics", flags ["--proxy-allow-from"], kind Kind::Value, meta "STRING";
    /// What the listeners speak: `http` (HTTP/1.x) or `uwsgi`, the uWSGI binary protocol that
    /// nginx's `uwsgi_pass` sends (every worker class; see docs/uwsgi.md). uWSGI requests follow
    /// the same limits as HTTP ones; responses are never chunked.
    protocol: Protocol = Protocol::Http;
        section "Server Mechanics", flags ["--protocol"], kind Kind::Value, meta "STRING", choices ["http", "uwsgi"];
    /// Peers allowed to send uWSGI requests (`--protocol uwsgi`): IPs, CIDR networks, or `*`
    /// for any. Others get a 403. Unix-socket peers are always allowed.
    uwsgi_allow_ips: CommaList = CommaList::from_strs(&["127.0.0.1", "::1"]);
        section "Server Mechanics", flags ["--uwsgi-allow-from"], kind Kind::Value, meta "STRING";
    /// Accept obsolete line folding in headers (RFC 9112 §5.2), joining lines with a space.
    permit_obsolete_folding: bool = false;
        section "Server Mechanics", flags ["--permit-obsolete-folding"], kind Kind::Flag;
    /// Strip spaces before the colon in header names. Dangerous: enables request smuggling behind some proxies.
    strip_header_spaces: bool = false;
        section "Server Mechanics", flags ["--strip-header-spaces"], kind Kind::Flag;
    /// Accept request methods outside the conventions (lowercase letters, `#`, fewer than 3 or
    /// more than 20 characters).
    permit_unconventional_http_method: bool = false;
        section "Server Mechanics", flags ["--permit-unconventional-http-method"], kind Kind::Flag;
    /// Accept HTTP versions other than 1.0 and 1.1 (the `HTTP/d.d` shape is still required).
    permit_unconventional_http_version: bool = false;
        section "Server Mechanics", flags ["--permit-unconventional-http-version"], kind Kind::Flag;
    /// Upper-case the request method.
    casefold_http_method: bool = false;
        section "Server Mechanics", flags ["--casefold-http-method"], kind Kind::Flag;
    /// Header names containing `_` that a trusted proxy may set (they bypass `header_map`).
    forwarder_headers: CommaList = CommaList::from_strs(&["SCRIPT_NAME", "PATH_INFO"]);
        section "Server Mechanics", flags ["--forwarder-headers"], kind Kind::Value, meta "STRING";
    /// What to do with header names containing `_`: drop them, refuse the request (400), or map
    /// them like `-` (dangerous).
    header_map: String = "drop".into();
        section "Server Mechanics", flags ["--header-map"], kind Kind::Value, meta "STRING", choices ["drop", "refuse", "dangerous"];

    /// The ASGI `root_path`: the prefix the application is mounted under behind a proxy.
    root_path: String = String::new();
        section "Server Mechanics", flags ["--root-path"], kind Kind::Value, meta "STRING";

    // ---- Logging ----
    /// The access log file; `-` means stdout. Unset: no access log.
    accesslog: Option<String> = None;
        section "Logging", flags ["--access-logfile"], kind Kind::Value, meta "FILE";
    /// Do not send access lines to syslog when --log-syslog is on.
    disable_redirect_access_to_syslog: bool = false;
        section "Logging", flags ["--disable-redirect-access-to-syslog"], kind Kind::Flag;
    /// The access log format, with gunicorn's `%(atom)s` atoms (see docs/logging.md).
    access_log_format: String = crate::access_log::DEFAULT_FORMAT.into();
        section "Logging", flags ["--access-logformat"], kind Kind::Value, meta "STRING";
    /// The error log file; `-` means stderr.
    errorlog: String = "-".into();
        section "Logging", flags ["--error-logfile", "--log-file"], kind Kind::Value, meta "FILE";
    /// The granularity of error log output.
    loglevel: String = "info".into();
        section "Logging", flags ["--log-level"], kind Kind::Value, meta "LEVEL", choices ["debug", "info", "warning", "error", "critical"];
    /// Redirect the workers' and the app's stdout/stderr into the error log file (when it is a file).
    capture_output: bool = false;
        section "Logging", flags ["--capture-output"], kind Kind::Flag;
    /// The Python class that logs the server's events and the access lines: a dotted path
    /// (`myapp.logging.JsonLogger`) to a subclass of `gunicorn.glogging.Logger`, or `simple`
    /// (the default logger). The default is written in Rust; any other class is imported in the
    /// master and every line goes through it (see docs/logging.md).
    logger_class: String = "gunicorn.glogging.Logger".into();
        section "Logging", flags ["--logger-class"], kind Kind::Value, meta "STRING";
    /// A logging configuration file for Python's `logging.config.fileConfig` (ini format).
    logconfig: Option<String> = None;
        section "Logging", flags ["--log-config"], kind Kind::Value, meta "FILE";
    /// A dict for Python's `logging.config.dictConfig`, merged over gunicorn's defaults.
    /// Takes precedence over logconfig and logconfig_json.
    logconfig_dict: Dict = Dict::default();
        section "Logging", flags [], kind Kind::FileOnly;
    /// A JSON file for Python's `logging.config.dictConfig`, merged over gunicorn's defaults.
    logconfig_json: Option<String> = None;
        section "Logging", flags ["--log-config-json"], kind Kind::Value, meta "FILE";
    /// Where syslog lines go: `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix://PATH[#dgram|#stream]`.
    syslog_addr: String = default_syslog_addr();
        section "Logging", flags ["--log-syslog-to"], kind Kind::Value, meta "SYSLOG_ADDR";
    /// Also send error (and access) lines to syslog.
    syslog: bool = false;
        section "Logging", flags ["--log-syslog"], kind Kind::Flag;
    /// The program name in syslog lines (`gunicorn.<prefix>.error`). Default: the process name.
    syslog_prefix: Option<String> = None;
        section "Logging", flags ["--log-syslog-prefix"], kind Kind::Value, meta "SYSLOG_PREFIX";
    /// The syslog facility name (user, daemon, local0..local7, ...).
    syslog_facility: String = "user".into();
        section "Logging", flags ["--log-syslog-facility"], kind Kind::Value, meta "SYSLOG_FACILITY";
    /// Send StatsD metrics to `HOST:PORT` (default port 8125) or `unix://PATH`.
    statsd_host: Option<String> = None;
        section "Logging", flags ["--statsd-host"], kind Kind::Value, meta "STATSD_ADDR";
    /// DogStatsD tags appended to every metric (`|#TAGS`), e.g. `env:prod,app:web`.
    dogstatsd_tags: String = String::new();
        section "Logging", flags ["--dogstatsd-tags"], kind Kind::Value, meta "DOGSTATSD_TAGS";
    /// A prefix for StatsD metric names (a `.` is added).
    statsd_prefix: String = String::new();
        section "Logging", flags ["--statsd-prefix"], kind Kind::Value, meta "STATSD_PREFIX";
    /// Emit the `gunicorn.backlog` StatsD histogram: connections waiting in the listen sockets'
    /// accept queues, summed, each turn of the arbiter's loop (Linux only: read from TCP_INFO).
    enable_backlog_metric: bool = false;
        section "Logging", flags ["--enable-backlog-metric"], kind Kind::Flag;

    // ---- Control (docs/control.md) ----
    /// The unix socket of the control interface, which `gunicornc` (ours or gunicorn's) talks
    /// to: show workers, stats, config and listeners, add or remove workers, reload, reopen the
    /// logs, shut down. Default `$XDG_RUNTIME_DIR/gunicorn.ctl` when XDG_RUNTIME_DIR is set, else
    /// `$HOME/.gunicorn/gunicorn.ctl` (the directory is created, mode 0700). A relative path is
    /// taken from the current directory. A stale socket there is replaced; anything else that is
    /// not a socket is left alone and the server runs without a control socket.
    control_socket: String = default_control_socket();
        section "Control", flags ["--control-socket"], kind Kind::Value, meta "PATH";
    /// The permissions of the control socket file: `0600` (the default) lets only its owner in,
    /// `0660` its group too. A leading 0 is octal.
    control_socket_mode: Umask = Umask(0o600);
        section "Control", flags ["--control-socket-mode"], kind Kind::Value, meta "INT";
    /// Do not create the control socket (`gunicornc` cannot reach this server).
    control_socket_disable: bool = false;
        section "Control", flags ["--no-control-socket"], kind Kind::Flag;

    // ---- Process Naming ----
    /// A base to use with setproctitle for process naming (`gunicorn: master [NAME]`).
    proc_name: Option<String> = None;
        section "Process Naming", flags ["-n", "--name"], kind Kind::Value, meta "STRING";

    // ---- Dirty Arbiters (docs/dirty.md) ----
    /// A dirty application to load in the dirty worker pool: `MODULE:CLASS` (every dirty worker
    /// loads it) or `MODULE:CLASS:N` (only N of them do). Repeatable. The class subclasses
    /// `gunicorn.dirty.DirtyApp`; web workers call its actions with
    /// `gunicorn.dirty.get_dirty_client().execute("MODULE:CLASS", "action", ...)`.
    dirty_apps: Vec<String> = Vec::new();
        section "Dirty Arbiters", flags ["--dirty-app"], kind Kind::Append, meta "STRING";
    /// The number of dirty worker processes. 0 (the default) starts no dirty arbiter; a positive
    /// number (with at least one dirty app) starts one after the listeners are up. TTIN and TTOU
    /// sent to the dirty arbiter's pid add and remove one.
    dirty_workers: u64 = 0;
        section "Dirty Arbiters", flags ["--dirty-workers"], kind Kind::Value, meta "INT";
    /// Seconds a dirty task may run. Past it the caller gets `DirtyTimeoutError` and the dirty
    /// worker running it is killed and replaced (a Python thread cannot be cancelled). 0 disables
    /// the limit.
    dirty_timeout: u64 = 300;
        section "Dirty Arbiters", flags ["--dirty-timeout"], kind Kind::Value, meta "INT";
    /// The number of threads per dirty worker: how many tasks one dirty worker runs at once (the
    /// apps must then be thread-safe).
    dirty_threads: u64 = 1;
        section "Dirty Arbiters", flags ["--dirty-threads"], kind Kind::Value, meta "INT";
    /// Seconds the dirty workers get to finish their tasks when the server stops; the ones
    /// still running after it are killed.
    dirty_graceful_timeout: u64 = 30;
        section "Dirty Arbiters", flags ["--dirty-graceful-timeout"], kind Kind::Value, meta "INT";
}

impl Config {
    /// The row of the settings table named `name`.
    pub fn setting(name: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.name == name)
    }

    /// Sets the setting `name` from `value`.
    pub fn set(&mut self, name: &str, value: Value) -> Result<(), ConfigError> {
        let setting = Self::setting(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        setting.apply(self, value)
    }

    /// Renders the whole configuration as `--print-config` does: `name = value`, one per line.
    /// Sorted by name, as gunicorn's `Config.__str__` prints them.
    pub fn render(&self) -> String {
        let width = SETTINGS.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let mut rows: Vec<&Setting> = SETTINGS.iter().collect();
        rows.sort_by_key(|s| s.name);
        rows.iter()
            .map(|s| format!("{:<width$} = {}\n", s.name, s.show(self)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_follow_python_int_base_zero() {
        let cases: &[(&str, Option<i64>)] = &[
            ("4", Some(4)),
            ("0x10", Some(16)),
            ("0o17", Some(15)),
            ("1_000", Some(1000)),
            ("0", Some(0)),
            ("010", None),
            ("", None),
            ("abc", None),
            ("1__0", None),
            ("-3", Some(-3)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_int(text).ok(), *want, "{text:?}");
        }
    }

    #[test]
    fn negative_workers_refused_with_a_clear_message() {
        let mut cfg = Config::default();
        let err = cfg.set("workers", Value::Str("-2".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for workers: -2: must be a positive integer"
        );
    }

    /// The reasons are typed, but their text is what users already see (and the CLI tests
    /// compare): each line is pinned here.
    #[test]
    fn refusals_keep_their_wording() {
        let s = |v: &str| Value::Str(v.into());
        let cases: Vec<(&str, Value, &str)> = vec![
            ("workers", s("x"), "x: not an integer"),
            ("workers", Value::Bool(true), "True: not an integer: bool"),
            ("workers", Value::Float(1.5), "1.5: not an integer: float"),
            ("daemon", s("maybe"), "maybe: not a boolean (true or false)"),
            ("daemon", Value::Int(1), "1: not a boolean: int"),
            ("bind", Value::Int(1), "1: not a list of strings: int"),
            (
                "bind",
                Value::List(vec![Value::Int(1)]),
                "[1]: list item is not a string: int",
            ),
            ("wsgi_app", Value::Int(2), "2: not a string: int"),
            (
                "secure_scheme_headers",
                Value::Map(vec![("A".into(), Value::Int(1))]),
                "{A: 1}: value of A is not a string: int",
            ),
            ("secure_scheme_headers", s("x"), "x: not a dict: str"),
            ("umask", s("09"), "09: not an octal number"),
            ("umask", s("99999"), "99999: must be between 0 and 0o7777"),
            ("umask", Value::None, "None: not an integer: None"),
            (
                "proxy_protocol",
                s("v3"),
                "v3: must be one of off, v1, v2, auto",
            ),
            (
                "proxy_protocol",
                Value::Float(1.0),
                "1: not a proxy protocol mode: float",
            ),
            (
                "header_map",
                s("nope"),
                "nope: must be one of drop, refuse, dangerous",
            ),
        ];
        for (name, value, want) in cases {
            let err = Config::default().set(name, value).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid value for {name}: {want}"));
        }
        let float = |v| f64::from_value(v).unwrap_err().to_string();
        assert_eq!(float(s("x")), "not a number");
        assert_eq!(float(Value::None), "not a number: None");
        assert_eq!(float(Value::Int(-1)), "must be a positive number");
    }

    #[test]
    fn choices_are_checked() {
        let mut cfg = Config::default();
        assert!(cfg.set("header_map", Value::Str("refuse".into())).is_ok());
        assert!(cfg.set("header_map", Value::Str("nope".into())).is_err());
    }

    #[test]
    fn umask_reads_leading_zero_as_octal() {
        assert_eq!(
            Umask::from_value(Value::Str("022".into())).unwrap(),
            Umask(0o22)
        );
        assert_eq!(
            Umask::from_value(Value::Str("18".into())).unwrap(),
            Umask(18)
        );
    }

    #[test]
    fn comma_lists_split_strings() {
        let l = CommaList::from_value(Value::Str("10.0.0.1, 10.0.0.2".into())).unwrap();
        assert_eq!(l.0, vec!["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn every_setting_renders_its_default() {
        let cfg = Config::default();
        for s in SETTINGS {
            // Empty-string defaults render empty, as gunicorn's --print-config shows them.
            let empty_default = matches!(
                s.name,
                "config" | "dogstatsd_tags" | "statsd_prefix" | "root_path"
            );
            assert!(!s.show(&cfg).is_empty() || empty_default, "{}", s.name);
        }
        assert!(cfg.render().contains("worker_class"));
    }
}
