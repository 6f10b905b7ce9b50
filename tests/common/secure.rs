//! A Kafka that takes only TLS and SASL logins, for the tests of the
//! worker's Kafka security: tansu with `--authentication` on SQLite
//! storage, behind Debian's `stunnel4` for TLS.
//!
//! What each part relies on, in tansu 0.6.0:
//! - TLS: tansu takes `--cert` and `--key` but serves plaintext all the
//!   same (its broker builds the TLS acceptor and never uses it), so
//!   stunnel terminates TLS in front of it, and tansu advertises stunnel's
//!   port. A client that speaks plaintext to that port fails its handshake.
//! - SCRAM: tansu checks SCRAM-SHA-256/512 logins against credentials it
//!   keeps in its storage, set with AlterUserScramCredentials; memory
//!   storage keeps none, so the broker runs on SQLite.
//! - PLAIN: not offered (its SASL library is built without it; a PLAIN
//!   handshake ends the connection). So the administrator's SCRAM login,
//!   which the tests use to set other users' credentials, is made with
//!   `tansu user create` while the broker still runs without
//!   `--authentication`; then the broker restarts with it.

use super::db::free_port;
use rdkafka::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "tributary-test-admin";
const ADMIN_PASSWORD: &str = "tributary-test-admin-password";

pub struct SecureBroker {
    dir: tempfile::TempDir,
    /// The port clients use: stunnel's, TLS.
    pub port: u16,
    tansu_port: u16,
    tansu: Option<Child>,
    stunnel: Option<Child>,
    /// PEM of the certificate the broker presents (its own CA).
    pub ca: PathBuf,
    /// PEM of a certificate that did not sign the broker's.
    pub other_ca: PathBuf,
    /// The client certificate and key stunnel requires, for mutual TLS
    /// ([`SecureBroker::mutual_tls`]); `None`: SASL logins instead.
    pub client: Option<(PathBuf, PathBuf)>,
}

fn stunnel() -> &'static str {
    if Command::new("stunnel4").arg("-version").output().is_ok() {
        "stunnel4"
    } else {
        "stunnel"
    }
}

impl SecureBroker {
    /// Starts the broker for SASL_SSL logins (SCRAM) and waits until a
    /// login reaches it.
    pub fn start() -> SecureBroker {
        let mut broker = SecureBroker::new(false);
        broker.create_admin();
        broker.start_tansu(true);
        broker.start_stunnel();
        broker.wait_until_it_answers();
        broker
    }

    /// Starts the broker for mutual TLS (`SSL`, no SASL): stunnel takes
    /// only clients that present the certificate in `client`.
    pub fn mutual_tls() -> SecureBroker {
        let mut broker = SecureBroker::new(true);
        broker.start_tansu(false);
        broker.start_stunnel();
        broker.wait_until_it_answers();
        broker
    }

    fn new(mutual: bool) -> SecureBroker {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let server = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let ca = write("ca.pem", &server.cert.pem());
        let other_ca = write("other-ca.pem", &other.cert.pem());
        write("server.pem", &server.cert.pem());
        write("server.key", &server.key_pair.serialize_pem());
        let client = mutual.then(|| {
            let client = rcgen::generate_simple_self_signed(vec!["tributary".to_owned()]).unwrap();
            (
                write("client.pem", &client.cert.pem()),
                write("client.key", &client.key_pair.serialize_pem()),
            )
        });
        SecureBroker {
            dir,
            port: free_port(),
            tansu_port: free_port(),
            tansu: None,
            stunnel: None,
            ca,
            other_ca,
            client,
        }
    }

    /// The administrator's SCRAM-SHA-512 login, made on the broker's
    /// storage while it runs without authentication, which then stops.
    fn create_admin(&mut self) {
        self.start_tansu(false);
        let url = format!("tcp://127.0.0.1:{}", self.tansu_port);
        let mut plain = ClientConfig::new();
        plain.set(
            "bootstrap.servers",
            format!("127.0.0.1:{}", self.tansu_port),
        );
        super::broker::wait_for_metadata(&plain, "tansu without authentication");
        let status = Command::new(super::broker::tansu())
            .args([
                "user",
                "create",
                "--broker",
                &url,
                "--mechanism",
                "scram512",
                ADMIN,
                ADMIN_PASSWORD,
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "tansu user create: {status}");
        super::broker::kill(&mut self.tansu);
    }

    fn start_tansu(&mut self, authentication: bool) {
        let listener = format!("tcp://127.0.0.1:{}", self.tansu_port);
        // Clients come through stunnel; only the administrator's creation
        // (SCRAM, before authentication is on) talks to tansu directly.
        let advertised = if authentication || self.client.is_some() {
            format!("tcp://127.0.0.1:{}", self.port)
        } else {
            listener.clone()
        };
        let mut args = vec![
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            "sqlite://tansu.db",
        ];
        if authentication {
            args.push("--authentication");
        }
        let child = Command::new(super::broker::tansu())
            .current_dir(self.dir.path())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run tansu; scripts/test installs it (scripts/tansu install)");
        self.tansu = Some(child);
    }

    /// (Re)starts stunnel on the broker's port: every client connection
    /// is cut when it stops, and clients log in again when they reconnect.
    pub fn start_stunnel(&mut self) {
        let mut conf = format!(
            "foreground = yes\npid =\noutput = {}\n[kafka]\naccept = 127.0.0.1:{}\nconnect = 127.0.0.1:{}\ncert = {}\nkey = {}\n",
            self.dir.path().join("stunnel.log").display(),
            self.port,
            self.tansu_port,
            self.dir.path().join("server.pem").display(),
            self.dir.path().join("server.key").display(),
        );
        if let Some((cert, _)) = &self.client {
            // Only the client certificate (self-signed: its own CA).
            conf.push_str(&format!("verify = 2\nCAfile = {}\n", cert.display()));
        }
        let path = self.dir.path().join("stunnel.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(stunnel())
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run stunnel; scripts/test installs it (apt-get install stunnel4)");
        self.stunnel = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "stunnel does not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops stunnel: every connection through it is cut.
    pub fn stop_stunnel(&mut self) {
        super::broker::kill(&mut self.stunnel);
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// An administrator's client: SASL_SSL with its SCRAM-SHA-512 login,
    /// or SSL with the client certificate for mutual TLS.
    pub fn admin_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        if let Some((cert, key)) = &self.client {
            c.set("bootstrap.servers", self.bootstrap())
                .set("security.protocol", "SSL")
                .set("ssl.ca.location", self.ca.to_str().unwrap())
                .set("ssl.certificate.location", cert.to_str().unwrap())
                .set("ssl.key.location", key.to_str().unwrap());
            return c;
        }
        c.set("bootstrap.servers", self.bootstrap())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", ADMIN)
            .set("sasl.password", ADMIN_PASSWORD)
            .set("ssl.ca.location", self.ca.to_str().unwrap());
        c
    }

    fn wait_until_it_answers(&self) {
        super::broker::wait_for_metadata(
            &self.admin_config(),
            &format!("tansu behind stunnel on port {}", self.port),
        );
    }

    /// Sets the SCRAM-SHA-512 password of `user` (creating the user).
    pub fn set_scram_password(&self, user: &str, password: &str) {
        set_scram_password(&self.admin_config(), user, password);
    }

    /// The worker keys of a SASL_SSL SCRAM-SHA-512 login, with this
    /// broker's CA, and `extra` lines.
    pub fn worker_keys(&self, username: &str, password: &str, ca: &Path) -> String {
        format!(
            "bootstrap.servers: {}\nsecurity.protocol: SASL_SSL\nsasl.mechanism: SCRAM-SHA-512\nsasl.username: {username}\nsasl.password: {password}\nssl.ca.location: {}\n",
            self.bootstrap(),
            ca.display()
        )
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        self.stop_stunnel();
        super::broker::kill(&mut self.tansu);
    }
}

/// AlterUserScramCredentials through librdkafka's admin API, which rdkafka
/// does not wrap: upserts `user`'s SCRAM-SHA-512 credential (librdkafka
/// salts and hashes the password) and waits for the broker's answer.
fn set_scram_password(config: &ClientConfig, user: &str, password: &str) {
    use rdkafka::bindings as rd;
    use rdkafka::client::DefaultClientContext;
    use std::ffi::{CStr, CString};
    let admin: rdkafka::admin::AdminClient<DefaultClientContext> = config.create().unwrap();
    let rk = admin.inner().native_ptr();
    let c_user = CString::new(user).unwrap();
    // SAFETY: every pointer handed to librdkafka is valid for the call:
    // `rk` lives as long as `admin`; the strings and the password bytes
    // outlive the calls that copy them; the alteration array is built here
    // and destroyed after the request took copies; the queue and the
    // event are destroyed once read; result strings are copied before the
    // event is destroyed.
    unsafe {
        let alteration = rd::rd_kafka_UserScramCredentialUpsertion_new(
            c_user.as_ptr(),
            rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_512,
            4096,
            password.as_ptr(),
            password.len(),
            std::ptr::null(),
            0,
        );
        let mut alterations = [alteration];
        let queue = rd::rd_kafka_queue_new(rk);
        rd::rd_kafka_AlterUserScramCredentials(
            rk,
            alterations.as_mut_ptr(),
            1,
            std::ptr::null(),
            queue,
        );
        rd::rd_kafka_UserScramCredentialAlteration_destroy_array(alterations.as_mut_ptr(), 1);
        let event = rd::rd_kafka_queue_poll(queue, 30_000);
        assert!(!event.is_null(), "no answer to AlterUserScramCredentials");
        let err = rd::rd_kafka_event_error(event);
        let message = if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let result = rd::rd_kafka_event_AlterUserScramCredentials_result(event);
            let mut count = 0usize;
            let responses =
                rd::rd_kafka_AlterUserScramCredentials_result_responses(result, &mut count);
            (0..count)
                .filter_map(|i| {
                    let e = rd::rd_kafka_AlterUserScramCredentials_result_response_error(
                        *responses.add(i),
                    );
                    (rd::rd_kafka_error_code(e)
                        != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                        .then(|| {
                            CStr::from_ptr(rd::rd_kafka_error_string(e))
                                .to_string_lossy()
                                .into_owned()
                        })
                })
                .next()
        } else {
            Some(
                CStr::from_ptr(rd::rd_kafka_event_error_string(event))
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_queue_destroy(queue);
        if let Some(m) = message {
            panic!("AlterUserScramCredentials for `{user}` failed: {m}");
        }
    }
}
