//! `${provider:reference}` placeholders, as in Kafka Connect's config
//! providers: `${env:HOME}`, `${file:/run/secrets/db.properties:password}`,
//! `${aws-secretsmanager:prod/db:password}`. What a reference means is up to
//! its provider (an ARN holds colons of its own); the providers that read
//! files and AWS Secrets Manager live in `crate::secrets`.
//!
//! Errors name the placeholder, never a resolved value.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a placeholder did not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderError {
    /// The placeholder or what it points at is wrong and stays wrong until
    /// the config changes: a malformed reference, a file outside the
    /// allowed directories, a key asked of a secret that is not JSON.
    Invalid(String),
    /// What it points at cannot be had now: a missing secret or key,
    /// denied access, an unreachable service. Fails only the connector
    /// that needs it.
    Unavailable(String),
}

impl ProviderError {
    pub fn message(&self) -> &str {
        match self {
            ProviderError::Invalid(m) | ProviderError::Unavailable(m) => m,
        }
    }

    fn map(self, f: impl FnOnce(String) -> String) -> ProviderError {
        match self {
            ProviderError::Invalid(m) => ProviderError::Invalid(f(m)),
            ProviderError::Unavailable(m) => ProviderError::Unavailable(f(m)),
        }
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Resolves the placeholders of one provider.
pub trait ConfigProvider: Send + Sync {
    /// The value `reference` (the placeholder's text after `provider:`)
    /// stands for. Messages never hold a value.
    fn resolve(&self, reference: &str) -> Result<String, ProviderError>;

    /// Reads what `reference` points at again now, bypassing any cache;
    /// true when its value changed. Providers without a cache have nothing
    /// to do.
    fn refresh(&self, _reference: &str) -> Result<bool, ProviderError> {
        Ok(false)
    }

    /// Whether `reference` reads the source called `id` (for a secrets
    /// manager: the secret), so a change to `id` can find what it touches.
    fn reads(&self, _reference: &str, _id: &str) -> bool {
        false
    }

    /// Drops what it keeps (cached values, counts) for every source `id`
    /// for which `still_read(id)` is false: no connector reads it any more.
    /// Providers without a cache have nothing to do.
    fn forget_unread(&self, _still_read: &dyn Fn(&str) -> bool) {}
}

/// `${env:VAR}`: the worker's environment.
pub struct EnvProvider;

impl ConfigProvider for EnvProvider {
    fn resolve(&self, reference: &str) -> Result<String, ProviderError> {
        if reference.contains(':') {
            return Err(ProviderError::Invalid(
                "the env provider takes a variable name only: ${env:VAR}".into(),
            ));
        }
        std::env::var(reference).map_err(|_| {
            ProviderError::Invalid(format!("environment variable `{reference}` is not set"))
        })
    }
}

/// One placeholder found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder<'a> {
    pub provider: &'a str,
    pub reference: &'a str,
}

/// The placeholders of `text`, in order; `$${` escapes and `${name}`
/// without a colon (Kafka Connect's rule: not a placeholder) are skipped.
/// An unclosed one is an error naming it.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder<'_>>, String> {
    let mut found = Vec::new();
    scan::<String>(text, |p| {
        found.push(p);
        Ok(String::new())
    })?;
    Ok(found)
}

/// The part of `text` written literally: `text` without its placeholders.
/// An unclosed one is an error naming it.
pub fn literal_part(text: &str) -> Result<String, String> {
    scan::<String>(text, |_| Ok(String::new()))
}

/// Walks `text`, handing each placeholder to `each` and gluing the text
/// around them to what it returns.
fn scan<'a, E: From<String>>(
    text: &'a str,
    mut each: impl FnMut(Placeholder<'a>) -> Result<String, E>,
) -> Result<String, E> {
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
            return Err(format!("unclosed placeholder `{}`", &rest[start..]).into());
        };
        let body = &rest[body_start..body_start + len];
        match body.split_once(':') {
            Some((provider, reference)) => out.push_str(&each(Placeholder {
                provider,
                reference,
            })?),
            // Not a placeholder: `${topic}` in a table name format stays for
            // the connector.
            None => out.push_str(&rest[start..body_start + len + 1]),
        }
        rest = &rest[body_start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
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

impl From<String> for ProviderError {
    fn from(m: String) -> Self {
        ProviderError::Invalid(m)
    }
}

impl Providers {
    pub fn register(&mut self, name: &str, provider: Arc<dyn ConfigProvider>) {
        self.by_name.insert(name.to_owned(), provider);
    }

    fn provider(&self, p: &Placeholder) -> Result<&Arc<dyn ConfigProvider>, ProviderError> {
        self.by_name.get(p.provider).ok_or_else(|| {
            let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            ProviderError::Invalid(format!(
                "placeholder `${{{}:{}}}` names unknown provider `{}` (known: {})",
                p.provider,
                p.reference,
                p.provider,
                known.join(", ")
            ))
        })
    }

    /// Replaces every `${provider:reference}` in `text`. `$${` escapes a
    /// literal `${`. Errors name the placeholder, never a resolved value.
    pub fn resolve(&self, text: &str) -> Result<String, ProviderError> {
        scan(text, |p| {
            self.provider(&p)?.resolve(p.reference).map_err(|e| {
                e.map(|m| format!("placeholder `${{{}:{}}}`: {m}", p.provider, p.reference))
            })
        })
    }

    /// Re-reads every placeholder of `text` past any cache; true when one
    /// of them changed.
    pub fn refresh(&self, text: &str) -> Result<bool, ProviderError> {
        let mut changed = false;
        for p in placeholders(text)? {
            changed |= self.provider(&p)?.refresh(p.reference).map_err(|e| {
                e.map(|m| format!("placeholder `${{{}:{}}}`: {m}", p.provider, p.reference))
            })?;
        }
        Ok(changed)
    }

    /// Lets every provider forget the sources that no placeholder of
    /// `texts` (the configs still in use) reads.
    pub fn forget_unread(&self, texts: &[&str]) {
        for (name, provider) in &self.by_name {
            provider.forget_unread(&|id| texts.iter().any(|t| self.reads(t, name, id)));
        }
    }

    /// Whether a placeholder of `text` reads `id` of `provider`.
    pub fn reads(&self, text: &str, provider: &str, id: &str) -> bool {
        placeholders(text).unwrap_or_default().iter().any(|p| {
            p.provider == provider
                && self
                    .by_name
                    .get(provider)
                    .is_some_and(|pr| pr.reads(p.reference, id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl ConfigProvider for Fixed {
        fn resolve(&self, reference: &str) -> Result<String, ProviderError> {
            match reference {
                "gone" => Err(ProviderError::Unavailable("no such secret".into())),
                r => Ok(format!("<{r}>")),
            }
        }
    }

    #[test]
    fn resolves_env_and_provider_placeholders() {
        let mut p = Providers::default();
        p.register("fixed", Arc::new(Fixed));
        std::env::set_var("TRIBUTARY_TEST_PLACEHOLDER", "v1");
        assert_eq!(
            p.resolve("a=${env:TRIBUTARY_TEST_PLACEHOLDER},b=${fixed:db/prod:password}")
                .unwrap(),
            "a=v1,b=<db/prod:password>"
        );
        assert_eq!(p.resolve("$${env:X}").unwrap(), "${env:X}");
        assert_eq!(p.resolve("${topic}_x").unwrap(), "${topic}_x");
    }

    #[test]
    fn errors_name_the_placeholder_and_their_kind() {
        let mut p = Providers::default();
        p.register("fixed", Arc::new(Fixed));
        let e = p.resolve("${env:TRIBUTARY_SURELY_UNSET_VAR}").unwrap_err();
        assert!(
            e.message().contains("TRIBUTARY_SURELY_UNSET_VAR") && e.message().contains("not set"),
            "{e}"
        );
        let e = p.resolve("${vault:x}").unwrap_err();
        assert!(
            matches!(&e, ProviderError::Invalid(m) if m.contains("unknown provider `vault`") && m.contains("env, fixed")),
            "{e:?}"
        );
        assert!(p
            .resolve("${env:X")
            .unwrap_err()
            .message()
            .contains("unclosed"));
        assert_eq!(
            p.resolve("x${fixed:gone}").unwrap_err(),
            ProviderError::Unavailable("placeholder `${fixed:gone}`: no such secret".into())
        );
    }

    #[test]
    fn placeholders_are_listed_with_their_provider() {
        let found = placeholders("u=${env:A} ${topic} $${env:B} ${aws-secretsmanager:arn:aws:x:y}")
            .unwrap();
        assert_eq!(
            found,
            vec![
                Placeholder {
                    provider: "env",
                    reference: "A"
                },
                Placeholder {
                    provider: "aws-secretsmanager",
                    reference: "arn:aws:x:y"
                },
            ]
        );
    }
}
