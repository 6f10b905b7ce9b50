//! Checking values against declared key types, shared by worker and
//! connector configs.

use crate::contract::{KeySpec, KeyType};
use std::path::{Path, PathBuf};

/// Checks `raw` against `spec.ty` and returns it normalised (trimmed
/// numbers, absolute paths). The message never repeats a secret's value.
pub fn check_value(spec: &KeySpec, raw: &str) -> Result<String, String> {
    let shown = |raw: &str| {
        if spec.secret {
            "(secret)".to_owned()
        } else {
            format!("{raw:?}")
        }
    };
    match spec.ty {
        KeyType::String | KeyType::List => Ok(raw.to_owned()),
        KeyType::Integer => raw
            .trim()
            .parse::<i64>()
            .map(|i| i.to_string())
            .map_err(|_| format!("expects an integer, got {}", shown(raw))),
        KeyType::Float => raw
            .trim()
            .parse::<f64>()
            .map(|f| f.to_string())
            .map_err(|_| format!("expects a number, got {}", shown(raw))),
        KeyType::Boolean => match raw.trim() {
            "true" | "false" => Ok(raw.trim().to_owned()),
            _ => Err(format!("expects true or false, got {}", shown(raw))),
        },
        KeyType::FileRead | KeyType::FileWrite => {
            let path = absolute(raw)?;
            let dir = path
                .parent()
                .ok_or_else(|| format!("{} names no file", path.display()))?;
            if !dir.is_dir() {
                return Err(format!("directory {} does not exist", dir.display()));
            }
            if path.is_dir() {
                return Err(format!("{} is a directory, not a file", path.display()));
            }
            Ok(path.display().to_string())
        }
        KeyType::DirRead | KeyType::DirWrite => {
            let path = absolute(raw)?;
            if !path.is_dir() {
                return Err(format!("directory {} does not exist", path.display()));
            }
            Ok(path.display().to_string())
        }
    }
}

/// `raw` as an absolute, lexically clean path (relative to the current
/// directory, as Kafka Connect resolves them).
pub fn absolute(raw: &str) -> Result<PathBuf, String> {
    if raw.trim().is_empty() {
        return Err("expects a path, got an empty value".into());
    }
    let path = std::path::absolute(Path::new(raw))
        .map_err(|e| format!("cannot resolve path {raw:?}: {e}"))?;
    let mut clean = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: KeyType, secret: bool) -> KeySpec {
        KeySpec {
            name: "k".into(),
            ty,
            default: None,
            doc: String::new(),
            secret,
        }
    }

    #[test]
    fn numbers_and_booleans_are_checked() {
        assert_eq!(
            check_value(&spec(KeyType::Integer, false), " 42 ").unwrap(),
            "42"
        );
        assert!(check_value(&spec(KeyType::Integer, false), "4x")
            .unwrap_err()
            .contains("\"4x\""));
        assert!(check_value(&spec(KeyType::Boolean, false), "yes").is_err());
        assert_eq!(
            check_value(&spec(KeyType::Float, false), "1.5").unwrap(),
            "1.5"
        );
    }

    #[test]
    fn secret_values_stay_out_of_messages() {
        let e = check_value(&spec(KeyType::Integer, true), "hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn file_keys_need_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("a/../in.txt");
        assert_eq!(
            check_value(&spec(KeyType::FileRead, false), ok.to_str().unwrap()).unwrap(),
            dir.path().join("in.txt").display().to_string()
        );
        let missing = dir.path().join("nope/in.txt");
        let e =
            check_value(&spec(KeyType::FileWrite, false), missing.to_str().unwrap()).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }
}
