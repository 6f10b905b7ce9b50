//! What a connector says about itself: a [`Description`] and the config
//! [`Key`]s it declares.
//!
//! Each key is declared once, with its type, default and doc; the worker
//! checks users' configs against the declarations, and
//! [`Config::get`](crate::Config::get) reads a value (or its declared
//! default) as a typed value:
//!
//! ```
//! use tributary_sdk::{Description, Key};
//!
//! let description = Description::source("line-source", "0.1.0")
//!     .summary("Produces the lines of a file.")
//!     .key(Key::file_read("file").doc("The file to read."))
//!     .key(Key::integer("batch.size").default("500").doc("The most records one poll returns."));
//! assert_eq!(description.keys.len(), 2);
//! ```
//!
//! This module never talks to the worker: the export macros turn a
//! description into the contract's record.

use crate::bindings::source::tributary::connector::types as wit;

/// Whether a description is of a source or a sink connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Source,
    Sink,
}

/// The type of a config value. The worker checks values against it (and
/// grants file access for the path types) before the connector sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    String,
    /// A signed 64-bit integer.
    Integer,
    /// A 64-bit float.
    Float,
    /// `true` or `false`.
    Boolean,
    /// A comma-separated list of strings.
    List,
    /// A file the connector reads: its directory is granted read-only.
    FileRead,
    /// A file the connector writes: its directory is granted read-write.
    FileWrite,
    /// A directory the connector reads; granted read-only.
    DirRead,
    /// A directory the connector writes; granted read-write.
    DirWrite,
}

impl KeyType {
    /// Whether `raw` is a value of this type, as the worker checks it
    /// (paths only for being non-empty: the worker resolves them). The
    /// error says what was expected.
    pub fn check(self, raw: &str) -> Result<(), String> {
        let ok = match self {
            KeyType::String | KeyType::List => true,
            KeyType::Integer => raw.trim().parse::<i64>().is_ok(),
            KeyType::Float => raw.trim().parse::<f64>().is_ok(),
            KeyType::Boolean => matches!(raw.trim(), "true" | "false"),
            KeyType::FileRead | KeyType::FileWrite | KeyType::DirRead | KeyType::DirWrite => {
                !raw.trim().is_empty()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expects {}, got {raw:?}", self.expected()))
        }
    }

    /// What a value of this type is, for messages.
    fn expected(self) -> &'static str {
        match self {
            KeyType::String | KeyType::List => "text",
            KeyType::Integer => "an integer",
            KeyType::Float => "a number",
            KeyType::Boolean => "true or false",
            KeyType::FileRead | KeyType::FileWrite => "a file path",
            KeyType::DirRead | KeyType::DirWrite => "a directory path",
        }
    }

    fn into_wit(self) -> wit::ConfigType {
        match self {
            KeyType::String => wit::ConfigType::String,
            KeyType::Integer => wit::ConfigType::Integer,
            KeyType::Float => wit::ConfigType::Float,
            KeyType::Boolean => wit::ConfigType::Boolean,
            KeyType::List => wit::ConfigType::List,
            KeyType::FileRead => wit::ConfigType::FileRead,
            KeyType::FileWrite => wit::ConfigType::FileWrite,
            KeyType::DirRead => wit::ConfigType::DirRead,
            KeyType::DirWrite => wit::ConfigType::DirWrite,
        }
    }
}

/// One config key a connector understands: its name, type, default (none:
/// the key is required) and doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// In Kafka Connect's dotted style: `file`, `batch.size`.
    pub name: String,
    pub type_: KeyType,
    /// `None`: the key is required.
    pub default: Option<String>,
    /// One or two sentences for `tributary plugins` and the docs.
    pub doc: String,
    /// A secret: the worker never logs it, never shows it and never hands
    /// it to the guest (host capabilities take it from the worker).
    pub secret: bool,
}

impl Key {
    /// A required key of `type_`, not secret, without a doc yet.
    pub fn new(name: &str, type_: KeyType) -> Key {
        Key {
            name: name.to_owned(),
            type_,
            default: None,
            doc: String::new(),
            secret: false,
        }
    }

    /// A text key.
    pub fn string(name: &str) -> Key {
        Key::new(name, KeyType::String)
    }

    /// A signed 64-bit integer key.
    pub fn integer(name: &str) -> Key {
        Key::new(name, KeyType::Integer)
    }

    /// A 64-bit float key.
    pub fn float(name: &str) -> Key {
        Key::new(name, KeyType::Float)
    }

    /// A `true`/`false` key.
    pub fn boolean(name: &str) -> Key {
        Key::new(name, KeyType::Boolean)
    }

    /// A comma-separated list key.
    pub fn list(name: &str) -> Key {
        Key::new(name, KeyType::List)
    }

    /// A file the connector reads.
    pub fn file_read(name: &str) -> Key {
        Key::new(name, KeyType::FileRead)
    }

    /// A file the connector writes.
    pub fn file_write(name: &str) -> Key {
        Key::new(name, KeyType::FileWrite)
    }

    /// A directory the connector reads.
    pub fn dir_read(name: &str) -> Key {
        Key::new(name, KeyType::DirRead)
    }

    /// A directory the connector writes.
    pub fn dir_write(name: &str) -> Key {
        Key::new(name, KeyType::DirWrite)
    }

    /// The value when the config does not set the key (which makes the key
    /// optional).
    pub fn default(mut self, value: impl Into<String>) -> Key {
        self.default = Some(value.into());
        self
    }

    /// What the key does, for `tributary plugins` and the docs.
    pub fn doc(mut self, text: impl Into<String>) -> Key {
        self.doc = text.into();
        self
    }

    /// Marks the key secret.
    pub fn secret(mut self) -> Key {
        self.secret = true;
        self
    }

    fn into_wit(self) -> wit::ConfigKey {
        wit::ConfigKey {
            name: self.name,
            type_: self.type_.into_wit(),
            default: self.default,
            doc: self.doc,
            secret: self.secret,
        }
    }
}

/// What a connector is and which config keys it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The name a connector config refers to (`connector.class`), e.g.
    /// `file-source`: lowercase letters, digits and `-`.
    pub name: String,
    /// The connector's own version (semver).
    pub version: String,
    pub kind: ConnectorKind,
    /// One line for humans.
    pub summary: String,
    pub keys: Vec<Key>,
    /// Sinks: whether `put` looks at records' headers. When `false` the
    /// worker does not decode them, and batches carry none (except for a
    /// dead letter queue). Sources: ignored.
    pub reads_headers: bool,
}

impl Description {
    /// A source connector called `name`, at `version`.
    pub fn source(name: &str, version: &str) -> Description {
        Description::new(name, version, ConnectorKind::Source)
    }

    /// A sink connector called `name`, at `version`. It reads no headers
    /// unless [`Description::reads_headers`] says so.
    pub fn sink(name: &str, version: &str) -> Description {
        Description::new(name, version, ConnectorKind::Sink)
    }

    fn new(name: &str, version: &str, kind: ConnectorKind) -> Description {
        Description {
            name: name.to_owned(),
            version: version.to_owned(),
            kind,
            summary: String::new(),
            keys: Vec::new(),
            reads_headers: false,
        }
    }

    /// One line saying what the connector does.
    pub fn summary(mut self, text: impl Into<String>) -> Description {
        self.summary = text.into();
        self
    }

    /// Declares a config key.
    pub fn key(mut self, key: Key) -> Description {
        self.keys.push(key);
        self
    }

    /// Sinks: whether `put` looks at records' headers.
    pub fn reads_headers(mut self, reads: bool) -> Description {
        self.reads_headers = reads;
        self
    }

    /// The declaration of key `name`, if any.
    pub fn key_named(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    pub(crate) fn into_wit(self) -> wit::Description {
        wit::Description {
            name: self.name,
            version: self.version,
            kind: match self.kind {
                ConnectorKind::Source => wit::ConnectorKind::Source,
                ConnectorKind::Sink => wit::ConnectorKind::Sink,
            },
            summary: self.summary,
            config: self.keys.into_iter().map(Key::into_wit).collect(),
            reads_headers: self.reads_headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_becomes_the_contract_record_it_declares() {
        let d = Description::sink("s", "1.0.0")
            .summary("Writes.")
            .reads_headers(true)
            .key(
                Key::integer("batch.size")
                    .default("10")
                    .doc("Most records."),
            )
            .key(Key::string("password").doc("The password.").secret())
            .into_wit();
        assert_eq!((d.name.as_str(), d.version.as_str()), ("s", "1.0.0"));
        assert!(matches!(d.kind, wit::ConnectorKind::Sink) && d.reads_headers);
        assert_eq!(d.config.len(), 2);
        assert!(matches!(d.config[0].type_, wit::ConfigType::Integer));
        assert_eq!(d.config[0].default.as_deref(), Some("10"));
        assert!(d.config[1].secret && d.config[1].default.is_none());
    }

    #[test]
    fn key_types_check_values_as_the_worker_does() {
        assert!(KeyType::Integer.check(" 42 ").is_ok());
        assert_eq!(
            KeyType::Integer.check("4x").unwrap_err(),
            "expects an integer, got \"4x\""
        );
        assert!(KeyType::Boolean.check("yes").is_err());
        assert!(KeyType::Float.check("1e3").is_ok());
        assert!(KeyType::FileRead.check(" ").is_err());
    }
}
