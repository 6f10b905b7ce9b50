//! The worker's Kafka security: the properties every client it makes gets
//! (`security.protocol`, `ssl.*`, `sasl.*`), and a SASL login that follows
//! its secret under running clients.
//!
//! A rotated SASL password does not rebuild a client. librdkafka takes new
//! credentials in place (`rd_kafka_sasl_set_credentials`): connections
//! already logged in stay up, and every new connection logs in with the new
//! ones. So a source's records in flight stay in flight, and a sink keeps
//! its group membership and its partitions: nothing is sent twice or lost,
//! and nothing rebalances. The login is resolved again when the secrets
//! provider announces a new version of a secret it reads
//! ([`Security::renew`]), and at once, past the provider's cache, when a
//! broker refuses a login ([`Security::refused`]).

use crate::config::Providers;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A refused login resolves the login again past the cache at most this
/// often: every client of the worker may report the same refusal.
const REFUSAL_SPACING: Duration = Duration::from_secs(2);

/// Whether an error librdkafka reports is a refused login.
pub fn is_refused_login(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        code,
        C::Authentication | C::SaslAuthenticationFailed | C::IllegalSASLState
    )
}

/// What a client context does with an error librdkafka reports outside
/// any request (its error callback): a refused login renews the login; the
/// rest is logged as librdkafka's own log would.
pub fn client_error(
    security: Option<&Arc<Security>>,
    error: &rdkafka::error::KafkaError,
    reason: &str,
) {
    let refused = error.rdkafka_error_code().is_some_and(is_refused_login);
    if let (true, Some(security)) = (refused, security) {
        security.refused(reason);
    } else {
        tracing::warn!(%error, reason, "librdkafka");
    }
}

/// Checks the worker's security properties (`props`, as
/// [`Security::properties`] gives them) the way librdkafka will when the
/// first client is made: each property's name and value, the files they
/// name, and then a client made with the rest (which loads the CA, the
/// certificate and the key, and checks the mechanism). No broker is
/// contacted. Each problem comes with the property it is about.
pub fn check_security(props: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (name, value) in props {
        if let Err(e) = super::check_property(name, value) {
            problems.push((name.clone(), e));
        } else if name.ends_with(".location") && !std::path::Path::new(value).is_file() {
            problems.push((name.clone(), format!("no such file: {value}")));
        }
    }
    // The client is made without the properties already refused, so
    // what else is wrong shows too.
    let mut config = rdkafka::ClientConfig::new();
    for (name, value) in props {
        if !problems.iter().any(|(p, _)| p == name) {
            config.set(name, value);
        }
    }
    config.set("log_level", "0");
    let made: Result<rdkafka::producer::BaseProducer, _> = config.create();
    if let Err(e) = made {
        let message = match e {
            rdkafka::error::KafkaError::ClientCreation(m) => m,
            other => other.to_string(),
        };
        // librdkafka names the property at fault ("ssl.ca.location
        // failed: …") or quotes its value ("Unsupported hash function:
        // SCRAM-SHA-1024"); otherwise the protocol is at fault.
        let secret = |k: &str| k.ends_with("password");
        let key = props
            .keys()
            .filter(|k| message.contains(k.as_str()))
            .max_by_key(|k| k.len())
            .or_else(|| {
                props
                    .iter()
                    .filter(|(k, v)| !secret(k) && !v.is_empty() && message.contains(v.as_str()))
                    .map(|(k, _)| k)
                    .next()
            })
            .cloned()
            .unwrap_or_else(|| "security.protocol".to_owned());
        problems.push((key, format!("librdkafka refuses it: {message}")));
    }
    problems
}

/// What a first connection to a cluster found.
pub enum Contact {
    Answered,
    /// A broker refused the login; librdkafka's reason.
    LoginRefused(String),
    /// The TLS handshake failed; librdkafka's reason.
    TlsFailed(String),
    /// No answer within the time given; the last error seen.
    NoAnswer(String),
}

/// Errors librdkafka reported outside any request, kept for [`first_contact`].
#[derive(Default)]
struct Seen(Mutex<Vec<(rdkafka::types::RDKafkaErrorCode, String)>>);

impl rdkafka::ClientContext for Seen {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if let Some(code) = error.rdkafka_error_code() {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((code, reason.to_owned()));
        }
    }
}

impl rdkafka::producer::ProducerContext for Seen {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

/// Connects with `props` and asks for the cluster's metadata, for up to
/// `timeout`; a refused login or a failed TLS handshake ends the wait.
pub fn first_contact(
    props: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Contact, String> {
    use rdkafka::producer::{Producer, ThreadedProducer};
    use rdkafka::types::RDKafkaErrorCode as C;
    let mut config = rdkafka::ClientConfig::new();
    for (k, v) in props {
        config.set(k, v);
    }
    // librdkafka's own log would repeat what this reports.
    config.set("log_level", "0");
    let producer: ThreadedProducer<Seen> = config
        .create_with_context(Seen::default())
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    let start = Instant::now();
    let mut last = None;
    loop {
        let answer = producer
            .client()
            .fetch_metadata(None, Duration::from_millis(500));
        if answer.is_ok() {
            return Ok(Contact::Answered);
        }
        let seen = std::mem::take(
            &mut *producer
                .context()
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if let Some((_, reason)) = seen.iter().find(|(c, _)| is_refused_login(*c)) {
            return Ok(Contact::LoginRefused(reason.clone()));
        }
        // A handshake that fails is `_SSL`; a TLS 1.3 server that refuses
        // the client's certificate says so in an alert after the
        // handshake, which librdkafka reports as a failed receive.
        if let Some((_, reason)) = seen
            .iter()
            .find(|(c, r)| *c == C::SSL || r.contains("SSL routines"))
        {
            return Ok(Contact::TlsFailed(reason.clone()));
        }
        if let Some((_, reason)) = seen.last() {
            last = Some(reason.clone());
        }
        if start.elapsed() >= timeout {
            let last = last
                .or_else(|| answer.err().map(|e| e.to_string()))
                .unwrap_or_default();
            return Ok(Contact::NoAnswer(last));
        }
    }
}

/// Where the SASL username and password come from, as written.
enum LoginSource {
    /// `sasl.username` and `sasl.password`.
    Pair { username: String, password: String },
    /// Kafka Connect's `sasl.jaas.config`.
    Jaas(String),
}

impl LoginSource {
    fn texts(&self) -> Vec<&str> {
        match self {
            LoginSource::Pair { username, password } => vec![username, password],
            LoginSource::Jaas(text) => vec![text],
        }
    }

    /// The login now, resolved through `providers`.
    fn resolve(&self, providers: &Providers) -> Result<(String, SecretString), String> {
        let resolve = |key: &str, text: &str| {
            providers
                .resolve(text)
                .map_err(|e| format!("{key}: {}", e.message()))
        };
        match self {
            LoginSource::Pair { username, password } => Ok((
                resolve("sasl.username", username)?,
                SecretString::from(resolve("sasl.password", password)?),
            )),
            LoginSource::Jaas(text) => jaas_login(&resolve("sasl.jaas.config", text)?)
                .map_err(|e| format!("sasl.jaas.config: {e}")),
        }
    }
}

/// The username and password of a JAAS login module line, as Kafka
/// Connect users write it for PLAIN and SCRAM:
/// `org.apache.kafka.common.security.scram.ScramLoginModule required
/// username="alice" password="…";`. Errors never quote the text.
pub fn jaas_login(text: &str) -> Result<(String, SecretString), String> {
    let body = text.trim().trim_end_matches(';');
    let mut words = body.splitn(3, char::is_whitespace);
    let module = words.next().unwrap_or_default();
    if !(module.ends_with(".PlainLoginModule") || module.ends_with(".ScramLoginModule")) {
        // The text is not quoted: a password put here by mistake (a
        // whole secret behind a placeholder, say) would be its first word.
        return Err(
            "expects a PlainLoginModule or ScramLoginModule line (`org.apache.kafka.common.security.scram.ScramLoginModule required username=\"…\" password=\"…\";`)"
                .into(),
        );
    }
    let mut options = BTreeMap::new();
    let mut rest = words.skip(1).collect::<Vec<_>>().join(" ");
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let Some((name, after)) = trimmed.split_once('=') else {
            return Err("expects name=\"value\" options after `required`".into());
        };
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let Some(end) = end else {
                    return Err(format!(
                        "the value of option `{}` has no closing quote",
                        name.trim()
                    ));
                };
                (value, quoted[end..].to_owned())
            }
            None => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].to_owned(), after[end..].to_owned())
            }
        };
        options.insert(name.trim().to_owned(), value);
        rest = tail;
    }
    let username = options.remove("username").ok_or("has no username option")?;
    let password = options.remove("password").ok_or("has no password option")?;
    Ok((username, SecretString::from(password)))
}

/// A client whose login follows the worker's (see [`Security::register`]).
struct Client(std::ptr::NonNull<rdkafka::bindings::rd_kafka_t>);

// SAFETY: librdkafka handles are thread-safe; the pointer is only used
// under `Security::clients`' lock while its client is alive (a
// `Registration` leaves the list before its client is dropped).
unsafe impl Send for Client {}

/// The worker's Kafka security settings.
pub struct Security {
    /// Every property but the login, resolved.
    fixed: BTreeMap<String, String>,
    login: Option<Login>,
    providers: Providers,
    clients: Mutex<BTreeMap<u64, Client>>,
    next_id: AtomicU64,
}

struct Login {
    source: LoginSource,
    renewing: Mutex<()>,
    current: Mutex<(String, SecretString)>,
    last_refusal: Mutex<Option<Instant>>,
}

impl Security {
    /// No security settings (the embedded Kafka, or a plaintext cluster).
    pub fn none() -> Security {
        Security {
            fixed: BTreeMap::new(),
            login: None,
            providers: Providers::default(),
            clients: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    /// The settings of the worker keys `written` (as the worker config
    /// keeps them: placeholders unresolved), resolved through `providers`.
    /// Errors name the key, never a value.
    pub fn new(
        written: &BTreeMap<String, String>,
        providers: &Providers,
    ) -> Result<Security, String> {
        let mut fixed = BTreeMap::new();
        let mut login_keys = BTreeMap::new();
        for (key, text) in written {
            match key.as_str() {
                "sasl.username" | "sasl.password" | "sasl.jaas.config" => {
                    login_keys.insert(key.as_str(), text.clone());
                }
                _ => {
                    let value = providers
                        .resolve(text)
                        .map_err(|e| format!("{key}: {}", e.message()))?;
                    if value.trim().is_empty() {
                        continue;
                    }
                    // librdkafka's name for Kafka Connect's.
                    let name = if key == "sasl.mechanism" {
                        "sasl.mechanisms"
                    } else {
                        key
                    };
                    fixed.insert(name.to_owned(), value);
                }
            }
        }
        let source = match (
            login_keys.remove("sasl.jaas.config"),
            login_keys.remove("sasl.username"),
            login_keys.remove("sasl.password"),
        ) {
            (Some(jaas), _, _) => Some(LoginSource::Jaas(jaas)),
            (None, None, None) => None,
            (None, username, password) => Some(LoginSource::Pair {
                username: username.unwrap_or_default(),
                password: password.unwrap_or_default(),
            }),
        };
        let login = match source {
            None => None,
            Some(source) => {
                let current = source.resolve(providers)?;
                check_nul(&current)?;
                Some(Login {
                    source,
                    renewing: Mutex::new(()),
                    current: Mutex::new(current),
                    last_refusal: Mutex::new(None),
                })
            }
        };
        Ok(Security {
            fixed,
            login,
            providers: providers.clone(),
            clients: Mutex::default(),
            next_id: AtomicU64::new(0),
        })
    }

    /// The properties a new client gets: every setting and the login as it
    /// is now.
    pub fn properties(&self) -> BTreeMap<String, String> {
        let mut props = self.fixed.clone();
        if let Some(login) = &self.login {
            let current = login.current.lock().unwrap_or_else(PoisonError::into_inner);
            props.insert("sasl.username".into(), current.0.clone());
            props.insert("sasl.password".into(), current.1.expose_secret().to_owned());
        }
        props
    }

    /// Whether the login reads `id` of `provider` (a secret whose new
    /// version calls for [`Security::renew`]).
    pub fn reads(&self, provider: &str, id: &str) -> bool {
        self.login.as_ref().is_some_and(|l| {
            l.source
                .texts()
                .iter()
                .any(|t| self.providers.reads(t, provider, id))
        })
    }

    /// The texts of the settings as written, for providers that forget
    /// what nothing reads any more.
    pub fn written_login(&self) -> Vec<String> {
        self.login
            .as_ref()
            .map(|l| l.source.texts().into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The login follows the worker's from now on, until the returned
    /// registration is dropped.
    ///
    /// # Safety
    ///
    /// The registration must be dropped before `client`'s librdkafka
    /// handle is destroyed: a renewal hands the login to every registered
    /// handle. Register a client last, once nothing can fail before the
    /// struct that holds both is built, and keep the registration in a
    /// field declared before the client's.
    pub unsafe fn register<C: rdkafka::ClientContext>(
        self: &Arc<Self>,
        client: &rdkafka::client::Client<C>,
    ) -> Option<Registration> {
        let login = self.login.as_ref()?;
        let client = Client(std::ptr::NonNull::new(client.native_ptr())?);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        // The client was made with the login of a moment ago: a renewal in
        // between would have passed it by.
        let current = login
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Err(e) = set_credentials(&client, &current) {
            tracing::error!("{e}");
        }
        clients.insert(id, client);
        Some(Registration {
            security: self.clone(),
            id,
        })
    }

    /// Resolves the login again (`force`: past the providers' caches); when
    /// it changed, every registered client takes it for its next login.
    /// `Ok(true)`: it changed.
    pub fn renew(&self, force: bool) -> Result<bool, String> {
        let Some(login) = &self.login else {
            return Ok(false);
        };
        // One renewal at a time, from fetch to hand-over: one that fetched
        // an older value cannot hand it over after a newer one.
        let _one_at_a_time = login
            .renewing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if force {
            for text in login.source.texts() {
                self.providers
                    .refresh(text)
                    .map_err(|e| format!("renewing the Kafka login: {}", e.message()))?;
            }
        }
        let fresh = login
            .source
            .resolve(&self.providers)
            .map_err(|e| format!("renewing the Kafka login: {e}"))?;
        check_nul(&fresh)?;
        // Under the clients' lock: a client registered meanwhile takes the
        // login as it is when it registers.
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut current = login.current.lock().unwrap_or_else(PoisonError::into_inner);
            if current.0 == fresh.0 && current.1.expose_secret() == fresh.1.expose_secret() {
                return Ok(false);
            }
            *current = fresh.clone();
        }
        // Every client, whatever one of them says.
        let refusals: Vec<String> = clients
            .values()
            .filter_map(|client| set_credentials(client, &fresh).err())
            .collect();
        tracing::info!(
            clients = clients.len(),
            "Kafka SASL login renewed: new connections log in with it"
        );
        match refusals.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    /// A broker refused a login (`reason`, librdkafka's words): the login
    /// is resolved again past the caches, on a thread of its own (this is
    /// called from librdkafka's threads), at most every few seconds.
    pub fn refused(self: &Arc<Self>, reason: &str) {
        let Some(login) = &self.login else {
            return;
        };
        {
            let mut last = login
                .last_refusal
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REFUSAL_SPACING) {
                return;
            }
            *last = Some(Instant::now());
        }
        tracing::warn!(
            reason,
            "a Kafka broker refused the worker's SASL login (sasl.username / sasl.password): fetching the login again"
        );
        let security = self.clone();
        let spawned = std::thread::Builder::new()
            .name("kafka-login".into())
            .spawn(move || match security.renew(true) {
                Ok(true) => {}
                Ok(false) => tracing::error!(
                    "a Kafka broker refuses the worker's SASL login and its source holds no newer one: check sasl.username and sasl.password"
                ),
                Err(e) => tracing::error!("{e}"),
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a thread to renew the Kafka login: {e}");
        }
    }

    /// Whether there is a login to follow.
    pub fn has_login(&self) -> bool {
        self.login.is_some()
    }
}

/// A login librdkafka can take: no NUL byte in either half. Never quotes it.
fn check_nul(login: &(String, SecretString)) -> Result<(), String> {
    if login.0.contains('\0') {
        return Err("the SASL username holds a NUL byte".into());
    }
    if login.1.expose_secret().contains('\0') {
        return Err("the SASL password holds a NUL byte".into());
    }
    Ok(())
}

/// Gives `client` the login `(username, password)` for its next logins.
fn set_credentials(client: &Client, login: &(String, SecretString)) -> Result<(), String> {
    let user = CString::new(login.0.as_str()).map_err(|_| "the SASL username holds a NUL byte")?;
    let password =
        CString::new(login.1.expose_secret()).map_err(|_| "the SASL password holds a NUL byte")?;
    // SAFETY: a registered client is alive (its registration leaves the
    // list, under the list's lock, before it is dropped, and callers hold
    // that lock); the strings are NUL-terminated and outlive the call,
    // which copies them. librdkafka documents the call as safe from any
    // thread.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_sasl_set_credentials(
            client.0.as_ptr(),
            user.as_ptr(),
            password.as_ptr(),
        )
    };
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is an error object the caller owns; its
    // string lives until it is destroyed, after the copy.
    let message = unsafe {
        let text = std::ffi::CStr::from_ptr(rdkafka::bindings::rd_kafka_error_string(error))
            .to_string_lossy()
            .into_owned();
        rdkafka::bindings::rd_kafka_error_destroy(error);
        text
    };
    Err(format!(
        "librdkafka refuses the renewed SASL login: {message}"
    ))
}

/// A client registered with [`Security::register`]; dropping it ends the
/// registration.
pub struct Registration {
    security: Arc<Security>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.security
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_give_their_username_and_password() {
        let (user, password) = jaas_login(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p\"w d";"#,
        )
        .unwrap();
        assert_eq!(user, "alice");
        assert_eq!(password.expose_secret(), "p\"w d");
        let (user, _) = jaas_login(
            "org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=bob\n  password=\"x\";",
        )
        .unwrap();
        assert_eq!(user, "bob");
    }

    #[test]
    fn a_jaas_line_that_cannot_be_read_is_refused_without_its_values() {
        for (text, expected) in [
            ("com.sun.security.auth.module.Krb5LoginModule required;", "ScramLoginModule line"),
            ("s3cr3t", "ScramLoginModule line"),
            (r#"{"username":"u","password":"s3cr3t"}"#, "ScramLoginModule line"),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\";",
                "no password",
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"s3cr3t;",
                "no closing quote",
            ),
        ] {
            let e = jaas_login(text).unwrap_err();
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn properties_carry_the_login_in_librdkafka_names() {
        let written: BTreeMap<String, String> = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let security = Security::new(&written, &Providers::default()).unwrap();
        let props = security.properties();
        assert_eq!(props["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(props["sasl.username"], "u");
        assert_eq!(props["sasl.password"], "p");
        assert!(!props.contains_key("sasl.jaas.config"));
        assert!(!props.contains_key("sasl.mechanism"));
    }
}
