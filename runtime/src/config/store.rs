//! Object stores a connector config names: `store.*` keys.
//!
//! `store.bucket`, `store.region`, `store.endpoint`, … describe the store
//! called `default`; `store.<name>.bucket`, … describe others. The worker
//! builds a client for each (see `crate::blob`); the guest only ever sees
//! the name and the bucket. The secret access key and session token are
//! kept as secrets: they never reach a log line, an error or the guest.

use super::Resolved;
use secrecy::SecretString;
use std::collections::BTreeMap;

/// The settings of one store, as the connector config gives them.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub name: String,
    pub bucket: Option<String>,
    /// `None`: the default AWS chain's region, else `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most
    /// S3-compatible stores need.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
    /// Objects larger than this go up in parts of this size.
    pub part_size: usize,
}

impl StoreSettings {
    fn new(name: &str) -> StoreSettings {
        StoreSettings {
            name: name.to_owned(),
            bucket: None,
            region: None,
            endpoint: None,
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            part_size: 8 << 20,
        }
    }
}

/// Every field a store takes, with its doc line.
pub const STORE_FIELDS: &[(&str, &str)] = &[
    ("bucket", "The bucket (required)."),
    ("region", "The bucket's region; default: the AWS default chain's (AWS_REGION, profile), else us-east-1."),
    ("endpoint", "An S3-compatible endpoint, e.g. `http://127.0.0.1:9000`; default: AWS."),
    ("path.style", "Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores (default false)."),
    ("access.key.id", "Access key id; without it the default AWS chain provides credentials."),
    ("secret.access.key", "Secret access key; a secret (use a `${provider:…}` placeholder). Needs `access.key.id`."),
    ("session.token", "Session token of temporary credentials; a secret."),
    ("part.size.mb", "Objects larger than this go up as a multipart upload in parts of this size, 5 to 5120 MiB (default 8)."),
];

/// Collects `store.*` keys into named stores. `set` takes the key without
/// its `store.` prefix.
#[derive(Default, Debug, Clone)]
pub struct Stores(pub BTreeMap<String, StoreSettings>);

impl Stores {
    /// Takes one key (without `store.`); an error says what is wrong.
    pub fn set(&mut self, rest: &str, value: &Resolved) -> Result<(), String> {
        let (name, field) = super::connection::named_field("store", rest, STORE_FIELDS)?;
        let s = self
            .0
            .entry(name.to_owned())
            .or_insert_with(|| StoreSettings::new(name));
        let shown = value.trimmed();
        let v = shown.expose();
        let text = || -> Result<String, String> {
            if v.is_empty() {
                Err("expects a value, got an empty one".to_owned())
            } else {
                Ok(v.to_owned())
            }
        };
        match field {
            "bucket" => s.bucket = Some(text()?),
            "region" => s.region = Some(text()?),
            "endpoint" => {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(format!(
                        "expects a URL starting with http:// or https://, got {shown:?}"
                    ));
                }
                s.endpoint = Some(v.trim_end_matches('/').to_owned());
            }
            "path.style" => {
                s.path_style = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("expects true or false, got {shown:?}")),
                }
            }
            "access.key.id" => s.access_key_id = Some(text()?),
            // Never echo a secret, not even when it is malformed.
            "secret.access.key" => s.secret_access_key = Some(SecretString::from(v.to_owned())),
            "session.token" => s.session_token = Some(SecretString::from(v.to_owned())),
            "part.size.mb" => match v.parse::<usize>() {
                Ok(n) if (5..=5120).contains(&n) => s.part_size = n << 20,
                _ => return Err(format!("expects an integer from 5 to 5120, got {shown:?}")),
            },
            _ => unreachable!("field checked above"),
        }
        Ok(())
    }

    /// Problems only visible once every key is in: a store without a
    /// bucket, a secret key without its id.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, s) in &self.0 {
            let key = |f: &str| {
                if name == "default" {
                    format!("store.{f}")
                } else {
                    format!("store.{name}.{f}")
                }
            };
            if s.bucket.is_none() {
                problems.push((key("bucket"), format!("store `{name}` needs `bucket`")));
            }
            match (&s.access_key_id, &s.secret_access_key) {
                (Some(_), None) => problems.push((
                    key("secret.access.key"),
                    format!("store `{name}` has `access.key.id` but no `secret.access.key`"),
                )),
                (None, Some(_)) => problems.push((
                    key("access.key.id"),
                    format!("store `{name}` has `secret.access.key` but no `access.key.id`"),
                )),
                _ => {}
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn default_and_named_stores() {
        let mut s = Stores::default();
        s.set("bucket", &"data".into()).unwrap();
        s.set("endpoint", &"http://127.0.0.1:9000/".into()).unwrap();
        s.set("path.style", &"true".into()).unwrap();
        s.set("access.key.id", &"AKIDEXAMPLE".into()).unwrap();
        s.set("secret.access.key", &"wJalrXUtnFEMI".into()).unwrap();
        s.set("archive.bucket", &"old".into()).unwrap();
        s.set("archive.part.size.mb", &"16".into()).unwrap();
        let d = &s.0["default"];
        assert_eq!(d.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(d.path_style);
        assert_eq!(
            d.secret_access_key.as_ref().unwrap().expose_secret(),
            "wJalrXUtnFEMI"
        );
        assert_eq!(s.0["archive"].part_size, 16 << 20);
        assert!(s.check().is_empty());
        assert!(!format!("{s:?}").contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn problems_name_the_key() {
        let mut s = Stores::default();
        assert!(s.set("endpoint", &"127.0.0.1:9000".into()).is_err());
        assert!(s.set("path.style", &"yes".into()).is_err());
        let e = s.set("bucket.name", &"x".into()).unwrap_err();
        assert!(e.contains("secret.access.key"), "{e}");
        let mut s = Stores::default();
        s.set("secret.access.key", &"hunter2".into()).unwrap();
        let p = s.check();
        assert_eq!(p[0].0, "store.bucket");
        assert_eq!(p[1].0, "store.access.key.id");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
