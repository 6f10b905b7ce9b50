//! `${provider:path:key}` placeholders, as in Kafka Connect's config
//! providers. `${env:HOME}` (no path) reads an environment variable. Later
//! providers (AWS Secrets Manager) plug in through [`ConfigProvider`].

use std::collections::BTreeMap;
use std::sync::Arc;

/// Resolves the placeholders of one provider.
pub trait ConfigProvider: Send + Sync {
    /// `path` is `None` for the two-part form `${provider:key}`.
    fn resolve(&self, path: Option<&str>, key: &str) -> Result<String, String>;
}

/// `${env:VAR}`: the worker's environment.
pub struct EnvProvider;

impl ConfigProvider for EnvProvider {
    fn resolve(&self, path: Option<&str>, key: &str) -> Result<String, String> {
        if let Some(path) = path {
            return Err(format!(
                "the env provider takes no path (got `{path}`); write ${{env:{key}}}"
            ));
        }
        std::env::var(key).map_err(|_| format!("environment variable `{key}` is not set"))
    }
}

/// The providers a worker knows, by name.
#[derive(Clone)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn ConfigProvider>>,
}

impl Default for Providers {
    fn default() -> Self {
        let mut p = Providers {
            by_name: BTreeMap::new(),
        };
        p.register("env", Arc::new(EnvProvider));
        p
    }
}

impl Providers {
    pub fn register(&mut self, name: &str, provider: Arc<dyn ConfigProvider>) {
        self.by_name.insert(name.to_owned(), provider);
    }

    /// Replaces every `${provider:[path:]key}` in `text`. `$${` escapes a
    /// literal `${`. Errors name the placeholder, never a resolved value.
    pub fn resolve(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let body_start = start + 2;
            let Some(len) = rest[body_start..].find('}') else {
                return Err(format!("unclosed placeholder `{}`", &rest[start..]));
            };
            let body = &rest[body_start..body_start + len];
            if !body.contains(':') {
                // Not a placeholder (Kafka Connect's rule): `${topic}` in a
                // table name format stays for the connector.
                out.push_str(&rest[start..body_start + len + 1]);
                rest = &rest[body_start + len + 1..];
                continue;
            }
            out.push_str(&self.resolve_one(body)?);
            rest = &rest[body_start + len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve_one(&self, body: &str) -> Result<String, String> {
        let parts: Vec<&str> = body.splitn(3, ':').collect();
        let (name, path, key) = match parts.as_slice() {
            [name, key] => (*name, None, *key),
            [name, path, key] => (*name, Some(*path), *key),
            _ => {
                return Err(format!(
                    "placeholder `${{{body}}}` must look like ${{provider:key}} or ${{provider:path:key}}"
                ))
            }
        };
        let provider = self.by_name.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            format!(
                "placeholder `${{{body}}}` names unknown provider `{name}` (known: {})",
                known.join(", ")
            )
        })?;
        provider
            .resolve(path, key)
            .map_err(|e| format!("placeholder `${{{body}}}`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl ConfigProvider for Fixed {
        fn resolve(&self, path: Option<&str>, key: &str) -> Result<String, String> {
            Ok(format!("{}/{key}", path.unwrap_or("-")))
        }
    }

    #[test]
    fn resolves_env_and_three_part_placeholders() {
        let mut p = Providers::default();
        p.register("fixed", Arc::new(Fixed));
        std::env::set_var("TRIBUTARY_TEST_PLACEHOLDER", "v1");
        assert_eq!(
            p.resolve("a=${env:TRIBUTARY_TEST_PLACEHOLDER},b=${fixed:db/prod:password}")
                .unwrap(),
            "a=v1,b=db/prod/password"
        );
        assert_eq!(p.resolve("$${env:X}").unwrap(), "${env:X}");
    }

    #[test]
    fn errors_name_the_placeholder() {
        let p = Providers::default();
        let e = p.resolve("${env:TRIBUTARY_SURELY_UNSET_VAR}").unwrap_err();
        assert!(
            e.contains("TRIBUTARY_SURELY_UNSET_VAR") && e.contains("not set"),
            "{e}"
        );
        let e = p.resolve("${vault:x}").unwrap_err();
        assert!(
            e.contains("unknown provider `vault`") && e.contains("env"),
            "{e}"
        );
        assert!(p.resolve("${env:X").unwrap_err().contains("unclosed"));
    }
}
