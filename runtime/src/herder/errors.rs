//! What a herder call can refuse, by kind and with what it concerns. The
//! REST API turns each kind into Kafka Connect's status code and message
//! (`rest::wording`); [`Display`](std::fmt::Display) gives the worker's own
//! text, for logs and statuses.

use crate::config::Problems;

/// Why a herder call was refused or failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// No connector has this name.
    ConnectorNotFound(String),
    /// A connector of this name exists already.
    ConnectorExists(String),
    /// The connector has no task with this id (to restart).
    UnknownTask { connector: String, task: u32 },
    /// The connector has no status for a task with this id.
    NoTaskStatus { connector: String, task: u32 },
    /// No plugin has this name.
    UnknownPlugin(String),
    /// The config does not pass its checks: every problem, as
    /// [`problem_lines`] gives them.
    InvalidConfig(Vec<String>),
    /// The connector's offsets change only while it is STOPPED.
    NotStopped(String),
    /// The config's `name` is not the connector's name in the request.
    NameMismatch { config: String, request: String },
    /// The config's `connector.class` is not the plugin it is validated
    /// against.
    ClassMismatch { class: String, plugin: String },
    /// Any other bad request; the message names the key at fault.
    BadRequest(String),
    /// The store or the worker failed.
    Internal(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ConnectorNotFound(name) => write!(f, "no connector is named `{name}`"),
            Error::ConnectorExists(name) => write!(f, "a connector named `{name}` exists already"),
            Error::UnknownTask { connector, task } | Error::NoTaskStatus { connector, task } => {
                write!(f, "connector `{connector}` has no task {task}")
            }
            Error::UnknownPlugin(name) => write!(f, "no plugin is named `{name}`"),
            // Kafka Connect's words: this text is also what a connector
            // whose stored config fails its checks shows as its trace.
            Error::InvalidConfig(lines) => write!(
                f,
                "Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`",
                lines.len(),
                lines.join("\n")
            ),
            Error::NotStopped(name) => write!(
                f,
                "connector `{name}` must be STOPPED before its offsets change"
            ),
            Error::NameMismatch { config, request } => write!(
                f,
                "`name`: the config names connector `{config}`, the request `{request}`"
            ),
            Error::ClassMismatch { class, plugin } => write!(
                f,
                "`connector.class`: {class} is not the plugin validated against ({plugin})"
            ),
            Error::BadRequest(m) | Error::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Problems as `key: message` lines, without file or line.
pub fn problem_lines(problems: &Problems) -> Vec<String> {
    problems
        .0
        .iter()
        .map(|p| match &p.key {
            Some(k) => format!("`{k}`: {}", p.message),
            None => p.message.clone(),
        })
        .collect()
}

pub(super) fn invalid(problems: &Problems) -> Error {
    Error::InvalidConfig(problem_lines(problems))
}

pub(super) fn not_found(name: &str) -> Error {
    Error::ConnectorNotFound(name.to_owned())
}

/// A connector's name as Kafka Connect accepts it here: letters, digits,
/// `.`, `_` and `-`.
pub fn check_name(name: &str) -> Result<()> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "`name`: connector name {name:?} must be non-empty and hold only letters, digits, `.`, `_` and `-`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problem;
    use std::path::Path;

    #[test]
    fn names_are_checked_and_problems_name_their_key() {
        assert!(check_name("lines-in.v2_x").is_ok());
        for bad in ["", "a/b", "a b", "über"] {
            let Err(Error::BadRequest(m)) = check_name(bad) else {
                panic!("{bad:?} was accepted");
            };
            assert!(m.starts_with("`name`"), "{m}");
        }
        let mut p = Problems::default();
        p.push(Problem::new(
            Path::new("config"),
            None,
            Some("file"),
            "is required",
        ));
        p.push(Problem::new(
            Path::new("config"),
            None,
            None,
            "validate crashed",
        ));
        assert_eq!(
            problem_lines(&p),
            vec!["`file`: is required", "validate crashed"]
        );
        let e = invalid(&p);
        assert_eq!(
            e,
            Error::InvalidConfig(vec![
                "`file`: is required".into(),
                "validate crashed".into()
            ])
        );
        // A stored config that fails its checks shows this as its trace.
        assert!(
            e.to_string().starts_with("Connector configuration is invalid and contains the following 2 error(s):\n`file`: is required\nvalidate crashed\n"),
            "{e}"
        );
    }
}
