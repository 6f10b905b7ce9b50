//! Checking values against declared key types, shared by worker and
//! connector configs.

use super::Resolved;
use crate::contract::{KeySpec, KeyType};
use std::path::{Path, PathBuf};

/// Checks `raw` against `spec.ty` and returns it normalised (trimmed
/// numbers, absolute paths). The message never repeats a secret's value,
/// and names a value that came from a placeholder by the placeholder.
pub fn check_value(spec: &KeySpec, raw: &Resolved) -> Result<String, String> {
    let shown = |raw: &Resolved| {
        if spec.secret {
            "(secret)".to_owned()
        } else {
            format!("{raw:?}")
        }
    };
    let text = raw.expose();
    match spec.ty {
        KeyType::String | KeyType::List => Ok(text.to_owned()),
        KeyType::Integer => text
            .trim()
            .parse::<i64>()
            .map(|i| i.to_string())
            .map_err(|_| format!("expects an integer, got {}", shown(raw))),
        KeyType::Float => text
            .trim()
            .parse::<f64>()
            .map(|f| f.to_string())
            .map_err(|_| format!("expects a number, got {}", shown(raw))),
        KeyType::Boolean => match text.trim() {
            "true" | "false" => Ok(text.trim().to_owned()),
            _ => Err(format!("expects true or false, got {}", shown(raw))),
        },
        KeyType::FileRead | KeyType::FileWrite => {
            let path = absolute(raw)?;
            let shown = raw.derive(path.display().to_string());
            let Some(dir) = path.parent() else {
                return Err(format!("{shown} names no file"));
            };
            if !dir.is_dir() {
                return Err(match raw.written() {
                    None => format!("directory {} does not exist", dir.display()),
                    Some(_) => format!("the directory of {shown} does not exist"),
                });
            }
            if path.is_dir() {
                return Err(format!("{shown} is a directory, not a file"));
            }
            Ok(path.display().to_string())
        }
        KeyType::DirRead | KeyType::DirWrite => {
            let path = absolute(raw)?;
            if !path.is_dir() {
                let shown = raw.derive(path.display().to_string());
                return Err(format!("directory {shown} does not exist"));
            }
            Ok(path.display().to_string())
        }
    }
}

/// `raw` as an absolute, lexically clean path (relative to the current
/// directory, as Kafka Connect resolves them).
pub fn absolute(raw: &Resolved) -> Result<PathBuf, String> {
    if raw.expose().trim().is_empty() {
        return Err("expects a path, got an empty value".into());
    }
    let path = std::path::absolute(Path::new(raw.expose()))
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
            check_value(&spec(KeyType::Integer, false), &" 42 ".into()).unwrap(),
            "42"
        );
        assert!(check_value(&spec(KeyType::Integer, false), &"4x".into())
            .unwrap_err()
            .contains("\"4x\""));
        assert!(check_value(&spec(KeyType::Boolean, false), &"yes".into()).is_err());
        assert_eq!(
            check_value(&spec(KeyType::Float, false), &"1.5".into()).unwrap(),
            "1.5"
        );
    }

    #[test]
    fn secret_values_stay_out_of_messages() {
        let e = check_value(&spec(KeyType::Integer, true), &"hunter2".into()).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn file_keys_need_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("a/../in.txt");
        assert_eq!(
            check_value(
                &spec(KeyType::FileRead, false),
                &ok.to_str().unwrap().into()
            )
            .unwrap(),
            dir.path().join("in.txt").display().to_string()
        );
        let missing = dir.path().join("nope/in.txt");
        let e = check_value(
            &spec(KeyType::FileWrite, false),
            &missing.to_str().unwrap().into(),
        )
        .unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    /// A value of type `ty` that its check refuses, holding `marker`;
    /// `None` for the types that take any text. A `match` without a
    /// catch-all: a new type needs a case here.
    fn refused(ty: KeyType, marker: &str, dir: &Path) -> Option<String> {
        match ty {
            KeyType::String | KeyType::List => None,
            KeyType::Integer | KeyType::Float | KeyType::Boolean => Some(format!("x-{marker}")),
            KeyType::FileRead | KeyType::FileWrite => {
                Some(dir.join(marker).join("in.txt").display().to_string())
            }
            KeyType::DirRead | KeyType::DirWrite => Some(dir.join(marker).display().to_string()),
        }
    }

    #[test]
    fn a_refused_value_from_a_placeholder_is_named_by_the_placeholder() {
        use KeyType::*;
        let dir = tempfile::tempdir().unwrap();
        let providers = super::super::Providers::default();
        let all = [
            String, Integer, Float, Boolean, List, FileRead, FileWrite, DirRead, DirWrite,
        ];
        let mut checked = 0;
        for ty in all {
            let marker = format!("marker-keys-{}", ty.name());
            let Some(bad) = refused(ty, &marker, dir.path()) else {
                continue;
            };
            let var = format!("TRIBUTARY_KEYS_TEST_{}", ty.name().replace('-', "_"));
            std::env::set_var(&var, &bad);
            let placeholder = format!("${{env:{var}}}");
            let raw = Resolved::resolve(&placeholder, &providers).unwrap();
            for secret in [false, true] {
                let e = check_value(&spec(ty, secret), &raw).unwrap_err();
                assert!(!e.contains(&marker), "{}: {e}", ty.name());
                assert!(
                    secret || e.contains(&placeholder),
                    "{}: {e} does not name {placeholder}",
                    ty.name()
                );
                checked += 1;
            }
            // The same value written literally is named as it is.
            let e = check_value(&spec(ty, false), &bad.as_str().into()).unwrap_err();
            assert!(e.contains(&marker), "{}: {e}", ty.name());
        }
        assert_eq!(
            checked, 14,
            "every type but string and list refuses a value"
        );
    }
}
