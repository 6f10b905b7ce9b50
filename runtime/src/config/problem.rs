//! A problem in a config file, with where it is.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a config: file, line (1-based, when known), key and
/// what is wrong. Never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    /// Something the config points at cannot be had now (a missing secret,
    /// denied access), as opposed to a mistake in the config itself: it
    /// fails the one connector, not the worker's start.
    pub unavailable: bool,
}

impl Problem {
    pub fn new(
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: file.to_path_buf(),
            // Line 0: no line (configs that did not come from a file).
            line: line.filter(|l| *l > 0),
            key: key.map(str::to_owned),
            message: message.into(),
            unavailable: false,
        }
    }

    /// A problem with what a placeholder points at, not with the config.
    pub fn unavailable(
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            unavailable: true,
            ..Problem::new(file, line, key, message)
        }
    }

    /// The problem a placeholder that did not resolve makes.
    pub fn placeholder(
        file: &Path,
        line: Option<usize>,
        key: &str,
        error: super::ProviderError,
    ) -> Self {
        match error {
            super::ProviderError::Invalid(m) => Problem::new(file, line, Some(key), m),
            super::ProviderError::Unavailable(m) => Problem::unavailable(file, line, Some(key), m),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a set of config files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    /// True when a problem is one of availability ([`Problem::unavailable`]).
    pub fn any_unavailable(&self) -> bool {
        self.0.iter().any(|p| p.unavailable)
    }

    /// `Ok(value)` when nothing was found, else every problem.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} config problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
