//! A config value with its placeholders resolved, and how values are shown.
//!
//! Every check of a connector or worker config value takes a [`Resolved`].
//! It prints (`Display`, `Debug`) as written when the value held a
//! placeholder, and as itself otherwise, so any message that names a value
//! names `${env:DB_PASSWORD}`, never what it resolved to. A check reads the
//! value itself only through [`Resolved::expose`].
//!
//! Text that the worker does not build from a [`Resolved`] (a connector's
//! own `validate`, librdkafka's objections) goes through
//! [`Resolved::mask`] where it becomes a problem.
//!
//! [`shown_config_value`] is how a config, as written, appears in REST
//! answers: a key declared secret, or a password inside a connection URL,
//! shows only when it is nothing but placeholders.

use super::{placeholders, ProviderError, Providers};
use std::fmt;

/// Shown instead of a secret's value.
pub const HIDDEN: &str = "[hidden]";

/// One config value: what it resolved to, and how it was written when that
/// held a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    value: String,
    /// `Some`: the value came from a placeholder; this is how it was
    /// written, and how it is shown.
    written: Option<String>,
    /// Each placeholder of `written` and the value it resolved to: text
    /// that quotes part of the value (a directory of a path, the host of a
    /// URL) still holds one of these whole.
    parts: Vec<(String, String)>,
}

impl Resolved {
    /// A value written as it is (no placeholder).
    pub fn literal(value: impl Into<String>) -> Resolved {
        Resolved {
            value: value.into(),
            written: None,
            parts: Vec::new(),
        }
    }

    /// `value`, resolved from `written` when that held a placeholder.
    pub(super) fn new(value: String, written: Option<String>) -> Resolved {
        Resolved {
            value,
            written,
            parts: Vec::new(),
        }
    }

    /// `written` with its placeholders resolved through `providers`.
    /// Errors name the placeholder.
    pub fn resolve(written: &str, providers: &Providers) -> Result<Resolved, ProviderError> {
        let value = providers.resolve(written)?;
        let mut parts = Vec::new();
        for p in placeholders(written).unwrap_or_default() {
            let text = format!("${{{}:{}}}", p.provider, p.reference);
            let part = providers.resolve(&text)?;
            parts.push((text, part));
        }
        Ok(Resolved {
            value,
            written: (!parts.is_empty()).then(|| written.to_owned()),
            parts,
        })
    }

    /// The value itself, to parse or pass on; never to format into a
    /// message.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// How the value was written, when it held a placeholder.
    pub fn written(&self) -> Option<&str> {
        self.written.as_deref()
    }

    /// The value without surrounding whitespace, shown as this one is.
    pub fn trimmed(&self) -> Resolved {
        self.derive(self.value.trim())
    }

    /// A value computed from this one (a normalised number, an absolute
    /// path), shown as this one is: as written when it came from a
    /// placeholder.
    pub fn derive(&self, value: impl Into<String>) -> Resolved {
        Resolved {
            value: value.into(),
            written: self.written.clone(),
            parts: self.parts.clone(),
        }
    }

    /// `text` with this value, when it came from a placeholder, replaced by
    /// the placeholder as written. For text built elsewhere that may quote
    /// the value (a connector's own messages, librdkafka's).
    pub fn mask(&self, text: &str) -> String {
        let Some(written) = &self.written else {
            return text.to_owned();
        };
        let mut out = text.to_owned();
        for value in [self.value.as_str(), self.value.trim()] {
            if !value.is_empty() {
                out = out.replace(value, written);
            }
        }
        mask_parts(&out, self.parts())
    }

    /// Each placeholder of the value as written, with what it resolved to.
    pub fn parts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parts.iter().map(|(p, v)| (p.as_str(), v.as_str()))
    }
}

/// `text` with each placeholder's value (of `parts`: placeholder, value)
/// replaced by the placeholder, longer values first so one that holds
/// another is replaced whole. A very short value is replaced wherever it
/// appears: the text reads oddly, and holds no value.
pub fn mask_parts<'a>(text: &str, parts: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut parts: Vec<(&str, &str)> = parts.filter(|(_, v)| !v.trim().is_empty()).collect();
    parts.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    parts.into_iter().fold(text.to_owned(), |t, (p, v)| {
        let t = t.replace(v, p);
        match v.trim() {
            trimmed if trimmed != v => t.replace(trimmed, p),
            _ => t,
        }
    })
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.written.as_deref().unwrap_or(&self.value))
    }
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.written.as_deref().unwrap_or(&self.value), f)
    }
}

impl From<&str> for Resolved {
    fn from(value: &str) -> Resolved {
        Resolved::literal(value)
    }
}

/// Whether `written` is nothing but placeholders (and spaces): showing it
/// shows no value.
fn only_placeholders(written: &str) -> bool {
    !placeholders(written).unwrap_or_default().is_empty()
        && super::placeholders::literal_part(written).is_ok_and(|l| l.trim().is_empty())
}

/// Whether the worker keeps connector key `key` as a secret: a
/// connection's password, a store's secret access key or session token.
pub fn is_worker_secret(key: &str) -> bool {
    let field = |prefix: &str, fields| {
        key.strip_prefix(prefix)
            .and_then(|rest| super::connection::named_field("", rest, fields).ok())
            .map(|(_, f)| f)
    };
    matches!(
        field("connection.", super::CONNECTION_FIELDS),
        Some("password")
    ) || matches!(
        field("store.", super::STORE_FIELDS),
        Some("secret.access.key" | "session.token")
    )
}

/// How connector key `key`, written as `written`, appears in an answer
/// (REST configs, validation): a key declared secret (`secret`, by its
/// plugin; or one the worker keeps as a secret) as written only when that
/// is nothing but placeholders, else as [`HIDDEN`]; a password inside
/// `connection[.<name>].url` likewise; any other value as written.
pub fn shown_config_value(key: &str, written: &str, secret: bool) -> String {
    if secret || is_worker_secret(key) {
        return if only_placeholders(written) {
            written.to_owned()
        } else {
            HIDDEN.to_owned()
        };
    }
    let is_url = key
        .strip_prefix("connection.")
        .and_then(|rest| super::connection::named_field("", rest, super::CONNECTION_FIELDS).ok())
        .is_some_and(|(_, f)| f == "url");
    if is_url {
        if let Some(shown) = url_without_password(written) {
            return shown;
        }
    }
    written.to_owned()
}

/// `scheme://user:password@host…` as `scheme://user:[hidden]@host…`,
/// unless the password is nothing but placeholders; `None` when the URL
/// holds no password. A `:` or `@` inside a placeholder does not count.
fn url_without_password(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    // Positions of `:` and `@` outside `${…}`, up to the end of the
    // authority (the first `/` after the scheme).
    let (mut depth, mut colon, mut at) = (0usize, None, None);
    let bytes = url.as_bytes();
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b'/' | b'?' | b'#' if depth == 0 => break,
            b'@' if depth == 0 => at = Some(i),
            b':' if depth == 0 && at.is_none() && colon.is_none() => colon = Some(i),
            _ => {}
        }
        i += 1;
    }
    let (colon, at) = (colon?, at?);
    if colon > at {
        return None;
    }
    if only_placeholders(&url[colon + 1..at]) {
        return None;
    }
    Some(format!("{}:{HIDDEN}{}", &url[..colon], &url[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_from_a_placeholder_prints_as_written() {
        std::env::set_var("TRIBUTARY_RESOLVED_TEST", " marker-7f3a ");
        let p = Providers::default();
        let v = Resolved::resolve("${env:TRIBUTARY_RESOLVED_TEST}", &p).unwrap();
        assert_eq!(v.expose(), " marker-7f3a ");
        assert_eq!(v.to_string(), "${env:TRIBUTARY_RESOLVED_TEST}");
        assert_eq!(format!("{v:?}"), "\"${env:TRIBUTARY_RESOLVED_TEST}\"");
        let t = v.trimmed();
        assert_eq!(t.expose(), "marker-7f3a");
        assert_eq!(
            format!("got {t:?}"),
            "got \"${env:TRIBUTARY_RESOLVED_TEST}\""
        );
        assert_eq!(
            v.mask("bad value \"marker-7f3a\" (marker-7f3a)"),
            "bad value \"${env:TRIBUTARY_RESOLVED_TEST}\" (${env:TRIBUTARY_RESOLVED_TEST})"
        );
        let literal = Resolved::resolve("plain $${env:X}", &p).unwrap();
        assert_eq!(literal.written(), None);
        assert_eq!(format!("{literal:?}"), "\"plain ${env:X}\"");
        assert_eq!(literal.mask("plain ${env:X}"), "plain ${env:X}");
    }

    #[test]
    fn secrets_show_only_as_placeholders() {
        let token = "${env:TOKEN}";
        assert_eq!(shown_config_value("token", token, true), token);
        assert_eq!(
            shown_config_value("token", "${env:A}${env:B}", true),
            "${env:A}${env:B}"
        );
        assert_eq!(shown_config_value("token", "hunter2", true), HIDDEN);
        assert_eq!(shown_config_value("token", "hunter2${env:A}", true), HIDDEN);
        assert_eq!(shown_config_value("token", "${env:A", true), HIDDEN);
        assert_eq!(shown_config_value("token", "${topic}", true), HIDDEN);
        for key in [
            "connection.password",
            "connection.audit.password",
            "store.secret.access.key",
            "store.backup.session.token",
        ] {
            assert_eq!(
                shown_config_value(key, "pw${env:A}", false),
                HIDDEN,
                "{key}"
            );
            assert_eq!(
                shown_config_value(key, "${env:A}", false),
                "${env:A}",
                "{key}"
            );
        }
        assert_eq!(shown_config_value("connection.user", "app", false), "app");
        assert_eq!(shown_config_value("topic", "pw", false), "pw");
    }

    #[test]
    fn url_passwords_show_only_as_placeholders() {
        let url = |v| shown_config_value("connection.url", v, false);
        assert_eq!(
            url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:[hidden]@db:5432/x"
        );
        assert_eq!(
            url("postgres://app:s3cret${env:PW}@db/x"),
            "postgres://app:[hidden]@db/x"
        );
        assert_eq!(
            url("postgres://app:s3cret@${env:HOST}/x"),
            "postgres://app:[hidden]@${env:HOST}/x"
        );
        assert_eq!(
            url("postgres://${env:USER}:s3cret@db/x"),
            "postgres://${env:USER}:[hidden]@db/x"
        );
        for shown in [
            "postgres://app:${aws-secretsmanager:arn:aws:x:y:pw}@db/x",
            "postgres://${env:CREDENTIALS}@db/x",
            "${env:DB_URL}",
            "postgres://db:5432/x",
            "postgres://app@db/x?a=b:c@d",
        ] {
            assert_eq!(url(shown), shown);
        }
        assert_eq!(
            shown_config_value("connection.audit.url", "mysql://a:b@c/d", false),
            "mysql://a:[hidden]@c/d"
        );
    }
}
