//! `${file:PATH:KEY}`: a key of a properties or JSON file, as Kafka
//! Connect's `FileConfigProvider` reads it, limited to the directories the
//! worker config allows (`config.providers.file.allowed.paths`), so a
//! connector config submitted over REST cannot read any file the worker
//! can.

use crate::config::{ConfigProvider, ProviderError};
use std::path::{Path, PathBuf};

pub struct FileProvider {
    /// Canonical directories; empty: none allowed.
    allowed: Vec<PathBuf>,
}

impl FileProvider {
    /// Directories that do not exist are kept as given (nothing under them
    /// resolves until they do).
    pub fn new(allowed: &[PathBuf]) -> FileProvider {
        FileProvider {
            allowed: allowed
                .iter()
                .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()))
                .collect(),
        }
    }

    fn check_allowed(&self, path: &Path) -> Result<PathBuf, ProviderError> {
        if self.allowed.is_empty() {
            return Err(ProviderError::Invalid(
                "the file provider reads only under the directories the worker config lists in `config.providers.file.allowed.paths`, and it lists none".into(),
            ));
        }
        let real = path.canonicalize().map_err(|e| {
            ProviderError::Unavailable(format!("cannot read `{}`: {e}", path.display()))
        })?;
        if !self.allowed.iter().any(|d| real.starts_with(d)) {
            return Err(ProviderError::Invalid(format!(
                "`{}` is outside the directories `config.providers.file.allowed.paths` allows ({})",
                path.display(),
                self.allowed
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(real)
    }
}

impl ConfigProvider for FileProvider {
    fn resolve(&self, reference: &str) -> Result<String, ProviderError> {
        let Some((path, key)) = reference
            .rsplit_once(':')
            .filter(|(p, k)| !p.is_empty() && !k.is_empty())
        else {
            return Err(ProviderError::Invalid(
                "expects ${file:PATH:KEY}, a key of a properties or JSON file".into(),
            ));
        };
        let real = self.check_allowed(Path::new(path))?;
        let text = std::fs::read_to_string(&real)
            .map_err(|e| ProviderError::Unavailable(format!("cannot read `{path}`: {e}")))?;
        let missing = || ProviderError::Unavailable(format!("`{path}` has no key `{key}`"));
        let is_json =
            real.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        if is_json {
            // serde's messages hold no content, but say only where.
            let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                ProviderError::Invalid(format!(
                    "`{path}` is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            return match doc.get(key) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(missing()),
            };
        }
        let map = java_properties::read(text.as_bytes()).map_err(|e| {
            ProviderError::Invalid(format!(
                "`{path}` is not a valid properties file (line {})",
                e.line_number().map_or("?".into(), |l| l.to_string())
            ))
        })?;
        map.get(key).cloned().ok_or_else(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_properties_and_json_keys_only_in_allowed_directories() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(
            secrets.join("db.properties"),
            "# comment\nuser = app\npassword=s3:cr=t\n",
        )
        .unwrap();
        std::fs::write(secrets.join("db.json"), r#"{"password":"j","port":5432}"#).unwrap();
        std::fs::write(dir.path().join("outside.properties"), "password=x\n").unwrap();
        let p = FileProvider::new(std::slice::from_ref(&secrets));
        let at = |f: &str, k: &str| format!("{}:{k}", secrets.join(f).display());
        assert_eq!(
            p.resolve(&at("db.properties", "password")).unwrap(),
            "s3:cr=t"
        );
        assert_eq!(p.resolve(&at("db.properties", "user")).unwrap(), "app");
        assert_eq!(p.resolve(&at("db.json", "password")).unwrap(), "j");
        assert_eq!(p.resolve(&at("db.json", "port")).unwrap(), "5432");
        assert!(matches!(
            p.resolve(&at("db.json", "nope")),
            Err(ProviderError::Unavailable(m)) if m.contains("no key `nope`")
        ));
        let outside = format!(
            "{}:password",
            dir.path().join("outside.properties").display()
        );
        assert!(matches!(
            p.resolve(&outside),
            Err(ProviderError::Invalid(m)) if m.contains("outside the directories")
        ));
        // `..` does not climb out.
        let climbing = format!("{}/../outside.properties:password", secrets.display());
        assert!(matches!(
            p.resolve(&climbing),
            Err(ProviderError::Invalid(_))
        ));
        assert!(matches!(
            FileProvider::new(&[]).resolve(&at("db.json", "password")),
            Err(ProviderError::Invalid(m)) if m.contains("allowed.paths")
        ));
        assert!(matches!(
            p.resolve("no-key"),
            Err(ProviderError::Invalid(_))
        ));
    }
}
