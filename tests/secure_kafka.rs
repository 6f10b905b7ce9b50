//! The worker against a Kafka that takes only TLS and SASL logins (tansu
//! behind stunnel, tests/common/secure.rs says what each part relies on):
//! a SCRAM-SHA-512 login over TLS from AWS Secrets Manager (moto) moves
//! records; a rotated password is followed under running tasks, whether
//! the version check or a refused login finds it first, with nothing lost,
//! nothing twice and no task restarted; a wrong password, a CA that did
//! not sign the broker's certificate and settings librdkafka refuses stop
//! the worker with the setting to look at, and no password reaches a log;
//! mutual TLS (SSL with a client certificate) moves records, and without
//! the certificate the start stops.

mod common;

use common::db::unique;
use common::moto::{Keys, Moto};
use common::secure::SecureBroker;
use common::{line_count, numbered_lines, Site};
use std::time::Duration;

const PLUGINS: &[&str] = &["tributary_connector_file"];
const WAIT: Duration = Duration::from_secs(180);

fn provider_keys(moto: &Moto, refresh_ms: u64) -> String {
    format!(
        "config.providers.aws-secretsmanager.endpoint: {}\nconfig.providers.aws-secretsmanager.region: us-east-1\nconfig.providers.aws-secretsmanager.refresh.interval.ms: {refresh_ms}\n",
        moto.endpoint()
    )
}

fn task_starts(log: &str, connector: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("starting task") && l.contains(&format!("connector={connector} ")))
        .count()
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Found {
    /// The secrets provider's version check (every second here).
    ByVersionCheck,
    /// A broker refusing the old password (the version check is an hour
    /// away).
    ByRefusedLogin,
}

/// file → Kafka → file over SASL_SSL with SCRAM-SHA-512, the login in an
/// `AmazonMSK_` secret; half the lines, then the password rotates (broker
/// and secret, the way a rotation function does), then every connection
/// is cut (stunnel restarted) so each client must log in again, then the
/// other half. The output must be the input, line for line.
fn rotation(found: Found) {
    let broker = SecureBroker::start();
    let user = unique("tributary");
    let (first, second) = (unique("first-pw"), unique("second-pw"));
    broker.set_scram_password(&user, &first);
    let moto = Moto::start();
    let keys = Keys::any();
    let secret = format!("AmazonMSK_{}", unique("tributary"));
    let login = |pw: &str| format!(r#"{{"username":"{user}","password":"{pw}"}}"#);
    moto.create_secret(&keys, &secret, &login(&first));

    let site = Site::new(PLUGINS);
    let topic = unique("secured");
    let n = 4_000;
    let input = site.write("data/in.txt", &numbered_lines(0, n / 2, 8));
    let refresh_ms = match found {
        Found::ByVersionCheck => 1_000,
        Found::ByRefusedLogin => 3_600_000,
    };
    let worker = site.worker(&format!(
        "{}{}offset.storage.topic: {}\nconfig.storage.topic: {}\nstatus.storage.topic: {}\n",
        broker.worker_keys(
            &format!("${{aws-secretsmanager:{secret}:username}}"),
            &format!("${{aws-secretsmanager:{secret}:password}}"),
            &broker.ca
        ),
        provider_keys(&moto, refresh_ms),
        unique("offsets"),
        unique("configs"),
        unique("status"),
    ));
    let src = site.write(
        "source.yaml",
        &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {topic}\n"),
    );
    let out = site.path("data/out.txt");
    let sink = site.write(
        "sink.yaml",
        &format!("name: lines-out\nconfig:\n  connector.class: file-sink\n  file: data/out.txt\n  topics: {topic}\n"),
    );
    let mut running = site.run_with_env(&worker, &[&src, &sink], &keys.env());
    running.wait_for("the first half through Kafka", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        line_count(&out) >= n / 2
    });

    let mut broker = broker;
    match found {
        // The secret moves first and the broker follows once the worker
        // holds the new login, so no connection can be refused in between
        // (connections logged in before stay up either way).
        Found::ByVersionCheck => {
            moto.rotate(&keys, &secret, &login(&second), || {});
            running.wait_for("the new login taken", WAIT, |log| {
                log.contains("Kafka SASL login renewed")
            });
            broker.set_scram_password(&user, &second);
        }
        // A single-user rotation: the broker changes between the new
        // version's creation and its promotion.
        Found::ByRefusedLogin => {
            moto.rotate(&keys, &secret, &login(&second), || {
                broker.set_scram_password(&user, &second)
            });
        }
    }
    // Every client logs in again: with the old password, tansu refuses it.
    broker.stop_stunnel();
    broker.start_stunnel();
    append(&input, &numbered_lines(n / 2, n / 2, 8));
    running.wait_for("the second half through Kafka", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        line_count(&out) >= n
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");

    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        written,
        numbered_lines(0, n, 8),
        "every line once, in order"
    );
    for connector in ["lines-in", "lines-out"] {
        assert_eq!(task_starts(&log, connector), 1, "no task restart:\n{log}");
    }
    let refused = log.contains("refused the worker's SASL login");
    match found {
        Found::ByVersionCheck => assert!(
            !refused,
            "the version check renewed the login before any broker refused it:\n{log}"
        ),
        Found::ByRefusedLogin => assert!(refused, "{log}"),
    }
    for value in [&first, &second] {
        assert!(
            !log.contains(value.as_str()),
            "a password reached the log:\n{log}"
        );
    }
}

#[test]
fn a_rotated_kafka_password_found_by_the_version_check_is_followed_without_restart() {
    rotation(Found::ByVersionCheck);
}

#[test]
fn a_rotated_kafka_password_found_by_a_refused_login_is_followed_without_restart() {
    rotation(Found::ByRefusedLogin);
}

/// A worker with `keys` (and fresh topic names) that must not start;
/// returns its log.
fn refused_start(site: &Site, keys: &str) -> String {
    let worker = site.worker(&format!(
        "{keys}offset.storage.topic: {}\nconfig.storage.topic: {}\nstatus.storage.topic: {}\n",
        unique("offsets"),
        unique("configs"),
        unique("status"),
    ));
    let (code, log) = site.run(&worker, &[]).wait_exit(WAIT);
    assert_ne!(code, 0, "{log}");
    log
}

#[test]
fn a_wrong_password_and_a_ca_that_did_not_sign_the_broker_stop_the_start_naming_the_setting() {
    let broker = SecureBroker::start();
    let user = unique("tributary");
    let password = unique("right-pw");
    broker.set_scram_password(&user, &password);
    let site = Site::new(PLUGINS);

    let wrong = unique("wrong-pw");
    let log = refused_start(&site, &broker.worker_keys(&user, &wrong, &broker.ca));
    assert!(
        log.contains("refused the worker's SASL login") && log.contains("sasl.password"),
        "{log}"
    );
    assert!(
        !log.contains(&wrong),
        "the password reached the log:\n{log}"
    );

    let log = refused_start(
        &site,
        &broker.worker_keys(&user, &password, &broker.other_ca),
    );
    assert!(
        log.contains("TLS handshake") && log.contains("ssl.ca.location"),
        "{log}"
    );
    assert!(
        !log.contains(&password),
        "the password reached the log:\n{log}"
    );

    // The right login over TLS moves records.
    let log = round_trip(&site, &broker.worker_keys(&user, &password, &broker.ca), 10);
    assert!(
        !log.contains(&password),
        "the password reached the log:\n{log}"
    );
}

/// `n` lines file → Kafka → file with the worker's Kafka keys `keys` (and
/// fresh topics); the output must be the input. Returns the worker's log.
fn round_trip(site: &Site, keys: &str, n: usize) -> String {
    let topic = unique("secured");
    let worker = site.worker(&format!(
        "{keys}offset.storage.topic: {}\nconfig.storage.topic: {}\nstatus.storage.topic: {}\n",
        unique("offsets"),
        unique("configs"),
        unique("status"),
    ));
    site.write("data/in.txt", &numbered_lines(0, n, 8));
    let src = site.write(
        "source.yaml",
        &format!("name: in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {topic}\n"),
    );
    let sink = site.write(
        "sink.yaml",
        &format!("name: out\nconfig:\n  connector.class: file-sink\n  file: data/out.txt\n  topics: {topic}\n"),
    );
    let out = site.path("data/out.txt");
    let mut running = site.run(&worker, &[&src, &sink]);
    running.wait_for("every line through Kafka", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        line_count(&out) >= n
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        numbered_lines(0, n, 8)
    );
    log
}

#[test]
fn mutual_tls_moves_records_with_the_client_certificate_and_stops_the_start_without_it() {
    let broker = SecureBroker::mutual_tls();
    let (cert, key) = broker.client.clone().unwrap();
    let site = Site::new(PLUGINS);
    let tls = format!(
        "bootstrap.servers: {}\nsecurity.protocol: SSL\nssl.ca.location: {}\n",
        broker.bootstrap(),
        broker.ca.display()
    );
    let log = refused_start(&site, &tls);
    assert!(
        log.contains("TLS handshake") && log.contains("ssl.ca.location"),
        "{log}"
    );

    round_trip(
        &site,
        &format!(
            "{tls}ssl.certificate.location: {}\nssl.key.location: {}\n",
            cert.display(),
            key.display()
        ),
        100,
    );
}

#[test]
fn security_settings_librdkafka_refuses_are_problems_with_file_line_and_key() {
    let site = Site::new(PLUGINS);
    let missing = site.path("tls/missing-ca.pem");
    let worker = site.worker(&format!(
        "bootstrap.servers: 127.0.0.1:1\nsecurity.protocol: SASL_SSL\nsasl.mechanism: SCRAM-SHA-1024\nsasl.username: u\nsasl.password: n0t-sh0wn\nssl.ca.location: {}\n",
        missing.display()
    ));
    let out = site.cli(&["validate", "-w", worker.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let problem = |key: &str| {
        lines
            .iter()
            .find(|l| l.contains(&format!("`{key}`")))
            .unwrap_or_else(|| panic!("no problem about {key}:\n{text}"))
            .to_string()
    };
    let mechanism = problem("sasl.mechanism");
    assert!(mechanism.contains("worker.yaml:"), "{mechanism}");
    let ca = problem("ssl.ca.location");
    assert!(ca.contains(missing.to_str().unwrap()), "{ca}");
    assert!(!text.contains("n0t-sh0wn"), "{text}");

    // A secret put where a JAAS line belongs is refused without showing it.
    let worker = site.worker(
        "bootstrap.servers: 127.0.0.1:1\nsecurity.protocol: SASL_SSL\nsasl.mechanism: SCRAM-SHA-512\nsasl.jaas.config: n0t-sh0wn-either\n",
    );
    let out = site.cli(&["validate", "-w", worker.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("`sasl.jaas.config`: expects a PlainLoginModule or ScramLoginModule line"),
        "{text}"
    );
    assert!(!text.contains("n0t-sh0wn-either"), "{text}");

    // The embedded Kafka takes no security settings.
    let worker = site.worker("security.protocol: SSL\n");
    let out = site.cli(&["validate", "-w", worker.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("security.protocol") && text.contains("bootstrap.servers"),
        "{text}"
    );
}
