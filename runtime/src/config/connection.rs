//! Database connections a connector config names: `connection.*` keys.
//!
//! `connection.url`, `connection.user`, `connection.password` (Kafka Connect
//! JDBC's names) describe the connection called `default`;
//! `connection.<name>.url`, … describe others. The worker opens them (see
//! `crate::sql`); the guest only ever sees the name. Passwords and URLs are
//! kept as secrets: they never reach a log line, an error or the guest.

use super::Resolved;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The settings of one connection, as the connector config gives them.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    pub name: String,
    /// `postgres://…`, `mysql://…`, `mariadb://…` or `sqlite://…`; may hold
    /// credentials, so it is a secret.
    pub url: Option<SecretString>,
    /// Used with `host`/`port`/`database` when there is no URL.
    pub dialect: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub ssl_mode: Option<String>,
    pub ssl_root_cert: Option<PathBuf>,
    pub pool_max_size: u32,
    pub acquire_timeout: Duration,
    pub statement_cache_capacity: usize,
}

impl ConnectionSettings {
    fn new(name: &str) -> ConnectionSettings {
        ConnectionSettings {
            name: name.to_owned(),
            url: None,
            dialect: None,
            host: None,
            port: None,
            database: None,
            user: None,
            password: None,
            ssl_mode: None,
            ssl_root_cert: None,
            pool_max_size: 4,
            acquire_timeout: Duration::from_secs(10),
            statement_cache_capacity: 100,
        }
    }
}

/// Every field a connection takes, with its doc line.
pub const CONNECTION_FIELDS: &[(&str, &str)] = &[
    ("url", "`postgres://host:port/db`, `mysql://…` (also MariaDB), `sqlite://path/to/file.db`; a secret (it may hold credentials)."),
    ("user", "User name; overrides the URL's."),
    ("password", "Password; a secret (use a `${provider:…}` placeholder). Overrides the URL's."),
    ("dialect", "`postgres`, `mysql` or `sqlite`, when the connection is given by `host`/`port`/`database` instead of `url`."),
    ("host", "Host name, without `url`."),
    ("port", "Port, without `url` (default 5432 or 3306)."),
    ("database", "Database name, without `url`."),
    ("ssl.mode", "`disable`, `prefer` (default), `require`, `verify-ca` or `verify-full`."),
    ("ssl.root.cert", "A PEM file of the CA certificates to trust for `verify-ca`/`verify-full`."),
    ("pool.max.size", "Most connections the connector's tasks share (default 4)."),
    ("pool.acquire.timeout.ms", "How long a statement waits for a connection before it fails as unavailable (default 10000)."),
    ("statement.cache.capacity", "Prepared statements kept per pooled connection (default 100)."),
];

/// Collects `connection.*` keys into named connections. `set` takes the key
/// without its `connection.` prefix.
#[derive(Default, Debug, Clone)]
pub struct Connections(pub BTreeMap<String, ConnectionSettings>);

impl Connections {
    /// Takes one key (without `connection.`); an error says what is wrong.
    pub fn set(&mut self, rest: &str, value: &Resolved) -> Result<(), String> {
        let (name, field) = named_field("connection", rest, CONNECTION_FIELDS)?;
        let c = self
            .0
            .entry(name.to_owned())
            .or_insert_with(|| ConnectionSettings::new(name));
        let shown = value.trimmed();
        let v = shown.expose();
        let number = |max: u64| -> Result<u64, String> {
            match v.parse::<u64>() {
                Ok(n) if n >= 1 && n <= max => Ok(n),
                _ => Err(format!("expects an integer from 1 to {max}, got {shown:?}")),
            }
        };
        match field {
            "url" => {
                let scheme = v.split_once("://").map(|(s, _)| s).unwrap_or("");
                if dialect_of_scheme(scheme).is_none() {
                    // The scheme alone: the rest may hold a password.
                    let got = value.derive(format!(
                        "one starting with {:?}",
                        if scheme.is_empty() {
                            "(no scheme)"
                        } else {
                            scheme
                        }
                    ));
                    return Err(format!(
                        "expects a URL starting with postgres://, postgresql://, mysql://, mariadb:// or sqlite://, got {got}"
                    ));
                }
                c.url = Some(SecretString::from(v.to_owned()));
            }
            "user" => c.user = Some(v.to_owned()),
            "password" => c.password = Some(SecretString::from(value.expose().to_owned())),
            "dialect" => match dialect_of_scheme(v) {
                Some(d) => c.dialect = Some(d.to_owned()),
                None => return Err(format!("expects postgres, mysql or sqlite, got {shown:?}")),
            },
            "host" => c.host = Some(v.to_owned()),
            "port" => c.port = Some(number(65535)? as u16),
            "database" => c.database = Some(v.to_owned()),
            "ssl.mode" => match v {
                "disable" | "prefer" | "require" | "verify-ca" | "verify-full" => {
                    c.ssl_mode = Some(v.to_owned())
                }
                _ => {
                    return Err(format!(
                        "expects disable, prefer, require, verify-ca or verify-full, got {shown:?}"
                    ))
                }
            },
            "ssl.root.cert" => c.ssl_root_cert = Some(PathBuf::from(v)),
            "pool.max.size" => c.pool_max_size = number(1000)? as u32,
            "pool.acquire.timeout.ms" => {
                c.acquire_timeout = Duration::from_millis(number(u32::MAX as u64)?)
            }
            "statement.cache.capacity" => c.statement_cache_capacity = number(100_000)? as usize,
            _ => unreachable!("field checked above"),
        }
        Ok(())
    }

    /// Problems only visible once every key is in: a connection without a
    /// URL or a host.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, c) in &self.0 {
            let key = |f: &str| {
                if name == "default" {
                    format!("connection.{f}")
                } else {
                    format!("connection.{name}.{f}")
                }
            };
            if c.url.is_none() {
                match (&c.dialect, &c.host, &c.database) {
                    (None, _, _) => problems.push((
                        key("url"),
                        format!("connection `{name}` needs `url`, or `dialect` with `host` and `database`"),
                    )),
                    (Some(d), None, _) if d != "sqlite" => problems.push((
                        key("host"),
                        format!("connection `{name}` has no `url`, so it needs `host`"),
                    )),
                    (Some(_), _, None) => problems.push((
                        key("database"),
                        format!("connection `{name}` has no `url`, so it needs `database` (for sqlite: the file)"),
                    )),
                    _ => {}
                }
            }
        }
        problems
    }
}

/// Splits the rest of a `<prefix>.<field>` or `<prefix>.<name>.<field>` key
/// into the name (`default` when there is none) and the field, checking
/// both; `fields` lists the fields with their docs. Shared by the worker's
/// named settings (`connection.*`, `store.*`).
pub(super) fn named_field<'a>(
    prefix: &str,
    rest: &'a str,
    fields: &[(&'static str, &str)],
) -> Result<(&'a str, &'static str), String> {
    let known = |f: &str| fields.iter().find(|(n, _)| *n == f).map(|(n, _)| *n);
    let (name, field) = match known(rest) {
        Some(f) => ("default", f),
        None => match rest.split_once('.').and_then(|(n, f)| Some((n, known(f)?))) {
            Some(pair) => pair,
            None => {
                let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
                return Err(format!(
                    "unknown {prefix} setting: expected `{prefix}.<field>` or `{prefix}.<name>.<field>` with a field of {}",
                    names.join(", ")
                ));
            }
        },
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{prefix} name {name:?} must be letters, digits, `_` and `-`"
        ));
    }
    Ok((name, field))
}

/// The dialect a URL scheme (or `dialect` value) names.
pub fn dialect_of_scheme(scheme: &str) -> Option<&'static str> {
    match scheme {
        "postgres" | "postgresql" => Some("postgres"),
        "mysql" | "mariadb" => Some("mysql"),
        "sqlite" => Some("sqlite"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn default_and_named_connections() {
        let mut c = Connections::default();
        c.set("url", &"postgres://db:5432/app".into()).unwrap();
        c.set("password", &"hunter2".into()).unwrap();
        c.set("audit.url", &"mysql://db2/audit".into()).unwrap();
        c.set("audit.ssl.mode", &"require".into()).unwrap();
        c.set("audit.pool.max.size", &"2".into()).unwrap();
        let d = &c.0["default"];
        assert_eq!(d.password.as_ref().unwrap().expose_secret(), "hunter2");
        assert_eq!(c.0["audit"].pool_max_size, 2);
        assert_eq!(c.0["audit"].ssl_mode.as_deref(), Some("require"));
        assert!(c.check().is_empty());
        // The secret is redacted in Debug output.
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn problems_name_the_field_but_never_the_url() {
        let mut c = Connections::default();
        let e = c
            .set("url", &"jdbc:postgresql://u:s3cret@db/app".into())
            .unwrap_err();
        assert!(e.contains("postgres://"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = c.set("pool.max", &"3".into()).unwrap_err();
        assert!(e.contains("pool.max.size"), "{e}");
        assert!(c.set("ssl.mode", &"sometimes".into()).is_err());
        let mut c = Connections::default();
        c.set("user", &"app".into()).unwrap();
        let p = c.check();
        assert_eq!(p[0].0, "connection.url");
    }
}
