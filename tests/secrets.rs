//! Credentials from AWS Secrets Manager (a moto server of the test's own):
//! pipelines keep running through a rotation of a database password (on a
//! private PostgreSQL that checks passwords) and of S3 access keys (moto
//! checking signatures), without a task restart and without a lost row;
//! a missing secret fails its connector alone; a changed value that is not
//! a credential restarts only its connector's tasks; no secret value ever
//! reaches the log.

mod common;

use common::db::{exec, texts, unique, PrivatePostgres};
use common::moto::{Keys, Moto};
use common::{Running, Site};
use std::path::Path;
use std::time::Duration;

const PLUGINS: &[&str] = &[
    "tributary_connector_file",
    "tributary_connector_database",
    "tributary_connector_s3",
];
const WAIT: Duration = Duration::from_secs(180);

/// `{"id":i,"name":"row-i"}` for each i of `ids`, one per line.
fn json_rows(ids: std::ops::RangeInclusive<u64>) -> String {
    ids.map(|i| format!("{{\"id\":{i},\"name\":\"row-{i}\"}}\n"))
        .collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The worker keys that point the `aws-secretsmanager` provider at `moto`.
fn provider_keys(moto: &Moto, refresh_ms: u64) -> String {
    format!(
        "config.providers.aws-secretsmanager.endpoint: {}\nconfig.providers.aws-secretsmanager.region: us-east-1\nconfig.providers.aws-secretsmanager.refresh.interval.ms: {refresh_ms}\n",
        moto.endpoint()
    )
}

/// How many times the log says a task of `connector` started.
fn task_starts(log: &str, connector: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("starting task") && l.contains(&format!("connector={connector} ")))
        .count()
}

fn count(url: &str, sql: &str) -> u64 {
    texts(url, sql)[0][0].as_deref().unwrap().parse().unwrap()
}

/// Logging in as `user` with `password` fails with PostgreSQL's
/// authentication error.
fn assert_refused(pg: &PrivatePostgres, user: &str, password: &str) {
    let url = pg.url(user, password, "postgres");
    let outcome = common::db::block(async {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&url).await.map(|_| ())
    });
    match outcome {
        Err(e) => assert!(
            e.to_string().contains("password authentication failed"),
            "expected an authentication failure, got: {e}"
        ),
        Ok(()) => panic!("the old password still logs in"),
    }
}

/// How a test rotates the database login.
#[derive(Clone, Copy, PartialEq)]
enum Rotation {
    /// One role, a new password; the periodic version check finds it.
    SingleUserFoundByRefresh,
    /// One role, a new password; the refused login finds it at once.
    SingleUserFoundByLoginFailure,
    /// Two roles; the secret switches to the other one (found by the
    /// periodic check: the old role still logs in).
    AlternatingUsers,
}

/// File → Kafka → PostgreSQL with the sink's login from a JSON secret.
/// Halfway the login rotates in AWS's order (AWSPENDING, the change in the
/// database, AWSCURRENT); then every session of the old login is cut (and,
/// for alternating users, the old role loses its rights on the table), so
/// the rest of the rows can only be written with the new login.
fn database_rotation(rotation: Rotation) {
    let pg = PrivatePostgres::start();
    let admin = pg.admin_url();
    let role = unique("writer");
    let clone = format!("{role}_clone");
    let table = unique("rotated");
    let (first, second) = (unique("first-pw"), unique("second-pw"));
    exec(
        &admin,
        &format!("CREATE ROLE {role} LOGIN PASSWORD '{first}'"),
    );
    exec(
        &admin,
        &format!("CREATE ROLE {clone} LOGIN PASSWORD '{}'", unique("unused")),
    );
    exec(
        &admin,
        &format!("CREATE TABLE {table} (id BIGINT NOT NULL, name TEXT)"),
    );
    exec(&admin, &format!("GRANT ALL ON {table} TO {role}, {clone}"));

    let moto = Moto::start();
    let keys = Keys::any();
    let secret = unique("tributary/db");
    let login = |user: &str, pw: &str| format!(r#"{{"username":"{user}","password":"{pw}"}}"#);
    moto.create_secret(&keys, &secret, &login(&role, &first));

    let site = Site::new(PLUGINS);
    let n = 20_000;
    let input = site.write("data/in.txt", &json_rows(1..=n / 2));
    let refresh_ms = match rotation {
        Rotation::SingleUserFoundByLoginFailure => 3_600_000,
        _ => 1_000,
    };
    let worker = site.worker(&provider_keys(&moto, refresh_ms));
    let src = site.write(
        "source.yaml",
        "name: rows-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: rows\n",
    );
    let sink = site.write(
        "sink.yaml",
        &format!(
            "name: rows-out\nconfig:\n  connector.class: database-sink\n  topics: rows\n  connection.url: postgres://127.0.0.1:{}/postgres\n  connection.user: ${{aws-secretsmanager:{secret}:username}}\n  connection.password: ${{aws-secretsmanager:{secret}:password}}\n  table.name.format: {table}\n  insert.mode: insert\n",
            pg.port
        ),
    );
    let mut running = site.run_with_env(&worker, &[&src, &sink], &keys.env());
    let rows = format!("SELECT count(*) FROM {table}");
    running.wait_for("the first half in the table", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        count(&admin, &rows) >= n / 2
    });

    if rotation == Rotation::AlternatingUsers {
        moto.rotate(&keys, &secret, &login(&clone, &second), || {
            exec(&admin, &format!("ALTER ROLE {clone} PASSWORD '{second}'"))
        });
    } else {
        moto.rotate(&keys, &secret, &login(&role, &second), || {
            exec(&admin, &format!("ALTER ROLE {role} PASSWORD '{second}'"))
        });
        assert_refused(&pg, &role, &first);
    }
    if rotation != Rotation::SingleUserFoundByLoginFailure {
        running.wait_for("the rotation to be noticed", WAIT, |log| {
            log.contains("secret rotated: credentials renewed under the running tasks")
        });
    }
    if rotation == Rotation::AlternatingUsers {
        exec(&admin, &format!("REVOKE ALL ON {table} FROM {role}"));
    }
    exec(
        &admin,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
    );
    append(&input, &json_rows(n / 2 + 1..=n));
    running.wait_for("every row in the table", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        count(&admin, &rows) >= n
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");

    assert_eq!(count(&admin, &rows), n, "no row twice");
    assert_eq!(
        count(
            &admin,
            &format!("SELECT count(DISTINCT id) FROM {table} WHERE id BETWEEN 1 AND {n}")
        ),
        n,
        "every row"
    );
    assert_eq!(task_starts(&log, "rows-out"), 1, "no task restart:\n{log}");
    assert!(
        log.contains("connection rebuilt with renewed credentials"),
        "{log}"
    );
    if rotation == Rotation::SingleUserFoundByLoginFailure {
        assert!(
            log.contains("renewing the credentials from their secrets")
                && log.contains("succeeded with renewed credentials"),
            "{log}"
        );
    } else {
        assert!(
            !log.contains("renewing the credentials from their secrets"),
            "the refresh renewed the pool before any login failed:\n{log}"
        );
    }
    for value in [&first, &second] {
        assert!(
            !log.contains(value.as_str()),
            "a password reached the log:\n{log}"
        );
    }
}

#[test]
fn a_database_password_rotation_is_picked_up_by_the_version_check() {
    database_rotation(Rotation::SingleUserFoundByRefresh);
}

#[test]
fn a_database_login_failure_renews_the_password_at_once() {
    database_rotation(Rotation::SingleUserFoundByLoginFailure);
}

#[test]
fn alternating_users_rotation_moves_the_sink_to_the_other_login() {
    database_rotation(Rotation::AlternatingUsers);
}

/// moto checking every request after the set-up's first three actions
/// (an admin user, its policy, its access key): returns the server and the
/// admin's keys.
fn strict_moto() -> (Moto, Keys) {
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let iam = moto.iam(&Keys::any());
    let all =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let admin = moto.rt.block_on(async {
        iam.create_user().user_name("admin").send().await.unwrap();
        iam.put_user_policy()
            .user_name("admin")
            .policy_name("all")
            .policy_document(all)
            .send()
            .await
            .unwrap();
        let key = iam
            .create_access_key()
            .user_name("admin")
            .send()
            .await
            .unwrap();
        let key = key.access_key().unwrap();
        Keys {
            id: key.access_key_id().to_owned(),
            secret: key.secret_access_key().to_owned(),
        }
    });
    (moto, admin)
}

/// A new access key of `user`.
fn access_key(moto: &Moto, admin: &Keys, user: &str) -> Keys {
    moto.rt.block_on(async {
        let key = moto
            .iam(admin)
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap();
        let key = key.access_key().unwrap();
        Keys {
            id: key.access_key_id().to_owned(),
            secret: key.secret_access_key().to_owned(),
        }
    })
}

/// Every line of every object under `prefix`.
fn lines_in_s3(moto: &Moto, keys: &Keys, bucket: &str, prefix: &str) -> Vec<String> {
    moto.rt.block_on(async {
        let s3 = moto.s3(keys);
        let listing = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        let mut lines = Vec::new();
        for o in listing.contents() {
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(o.key().unwrap())
                .send()
                .await
                .unwrap();
            let bytes = body.body.collect().await.unwrap().into_bytes();
            lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_owned));
        }
        lines
    })
}

#[test]
fn s3_access_keys_rotate_under_a_running_sink() {
    let (moto, admin) = strict_moto();
    let iam = moto.iam(&admin);
    let user = unique("writer");
    moto.rt.block_on(async {
        iam.create_user().user_name(&user).send().await.unwrap();
        iam.put_user_policy()
            .user_name(&user)
            .policy_name("s3")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        moto.s3(&admin).create_bucket().bucket("rotating").send().await.unwrap();
    });
    let old = access_key(&moto, &admin, &user);
    let secret = unique("tributary/s3");
    let pair = |k: &Keys| format!(r#"{{"id":"{}","secret":"{}"}}"#, k.id, k.secret);
    moto.create_secret(&admin, &secret, &pair(&old));

    let site = Site::new(PLUGINS);
    let n = 6_000u64;
    let line = |i: u64| format!("line-{i:06}");
    let lines = |r: std::ops::RangeInclusive<u64>| r.map(|i| line(i) + "\n").collect::<String>();
    let input = site.write("data/in.txt", &lines(1..=n / 2));
    // Long refresh interval: the sink notices the rotation by the refusal.
    let worker = site.worker(&provider_keys(&moto, 3_600_000));
    let src = site.write(
        "source.yaml",
        "name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: lines\n",
    );
    let sink = site.write(
        "sink.yaml",
        &format!(
            "name: lines-to-s3\nconfig:\n  connector.class: s3-sink\n  topics: lines\n  format: bytes\n  flush.size: 500\n  store.bucket: rotating\n  store.endpoint: {}\n  store.path.style: true\n  store.region: us-east-1\n  store.access.key.id: ${{aws-secretsmanager:{secret}:id}}\n  store.secret.access.key: ${{aws-secretsmanager:{secret}:secret}}\n",
            moto.endpoint()
        ),
    );
    let mut running = site.run_with_env(&worker, &[&src, &sink], &admin.env());
    running.wait_for("the first half in S3", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        lines_in_s3(&moto, &admin, "rotating", "topics/").len() as u64 >= n / 2
    });

    // Rotation of an access key: a new key, the secret moves to it, the
    // old key is deleted.
    let new = access_key(&moto, &admin, &user);
    moto.rotate(&admin, &secret, &pair(&new), || {});
    moto.rt.block_on(async {
        iam.delete_access_key()
            .user_name(&user)
            .access_key_id(&old.id)
            .send()
            .await
            .unwrap();
        let refused = moto
            .s3(&old)
            .list_objects_v2()
            .bucket("rotating")
            .send()
            .await;
        let e = refused.expect_err("the deleted key is refused");
        assert!(format!("{:?}", e).contains("InvalidAccessKeyId"), "{e:?}");
    });
    append(&input, &lines(n / 2 + 1..=n));
    running.wait_for("every line in S3", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        lines_in_s3(&moto, &admin, "rotating", "topics/").len() as u64 >= n
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");

    let mut got = lines_in_s3(&moto, &admin, "rotating", "topics/");
    got.sort();
    let want: Vec<String> = (1..=n).map(line).collect();
    assert_eq!(got, want, "every line once");
    assert_eq!(
        task_starts(&log, "lines-to-s3"),
        1,
        "no task restart:\n{log}"
    );
    assert!(
        log.contains("InvalidAccessKeyId")
            && log.contains("client rebuilt with renewed credentials")
            && log.contains("succeeded with renewed credentials"),
        "{log}"
    );
    for value in [&old.secret, &new.secret] {
        assert!(
            !log.contains(value.as_str()),
            "a secret key reached the log:\n{log}"
        );
    }
}

/// A running worker's log once `connector` logged `what`.
fn wait_log(running: &mut Running, what: &str) {
    running.wait_for(what, WAIT, |log| log.contains(what));
}

#[test]
fn a_missing_secret_fails_its_connector_alone_and_bad_placeholders_stop_the_start() {
    let moto = Moto::start();
    let keys = Keys::any();
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &json_rows(1..=100));
    let worker = site.worker(&provider_keys(&moto, 1_000));
    let good = site.write(
        "good.yaml",
        "name: good\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: t\n",
    );
    let missing = site.write(
        "missing.yaml",
        "name: needs-secret\nconfig:\n  connector.class: database-sink\n  topics: t\n  connection.url: postgres://127.0.0.1:5432/test\n  connection.password: ${aws-secretsmanager:no/such/secret:password}\n",
    );
    let mut running = site.run_with_env(&worker, &[&good, &missing], &keys.env());
    wait_log(&mut running, "source task running");
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("connector=needs-secret")
            && log.contains("missing.yaml:6: `connection.password`: placeholder `${aws-secretsmanager:no/such/secret:password}`: secret `no/such/secret` does not exist"),
        "{log}"
    );
    assert_eq!(task_starts(&log, "good"), 1, "{log}");
    assert_eq!(task_starts(&log, "needs-secret"), 0, "{log}");

    // Alone, without a REST API to fix it through, it ends the run as a
    // failure.
    let (code, log) = site
        .run_with_env(&worker, &[&missing], &keys.env())
        .wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("failed: needs-secret:"), "{log}");

    // A key asked of a plain-string secret, an unknown provider and a
    // malformed placeholder: the worker does not start, and says where.
    moto.create_secret(&keys, "plain", "just-a-string-value");
    let bad = site.write(
        "bad.yaml",
        "name: bad\nconfig:\n  connector.class: database-sink\n  topics: t\n  connection.url: postgres://127.0.0.1:5432/test\n  connection.password: ${aws-secretsmanager:plain:password}\n  connection.user: ${vault:secret/db:user}\n  table.name.format: ${env:UNCLOSED\n",
    );
    let (code, log) = site
        .run_with_env(&worker, &[&good, &bad], &keys.env())
        .wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0, "{log}");
    for expected in [
        "bad.yaml:6: `connection.password`: placeholder `${aws-secretsmanager:plain:password}`: secret `plain` is not JSON",
        "bad.yaml:7: `connection.user`: placeholder `${vault:secret/db:user}` names unknown provider `vault`",
        "bad.yaml:8: `table.name.format`: unclosed placeholder",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    assert!(!log.contains("just-a-string-value"), "{log}");
    assert!(!log.contains("starting task"), "{log}");
}

/// A file source of `rows` from data/in.txt, and a file sink whose output
/// file is key `out` of the JSON secret `secret`: the connector files.
fn file_pipeline_reading(site: &Site, secret: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = site.write(
        "source.yaml",
        "name: rows-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: rows\n",
    );
    let sink = site.write(
        "sink.yaml",
        &format!("name: rows-out\nconfig:\n  connector.class: file-sink\n  topics: rows\n  file: ${{aws-secretsmanager:{secret}:out}}\n"),
    );
    (src, sink)
}

#[test]
fn a_rotated_value_that_is_not_a_credential_restarts_only_its_connector() {
    let moto = Moto::start();
    let keys = Keys::any();
    let secret = unique("tributary/paths");
    moto.create_secret(&keys, &secret, r#"{"out":"data/first.txt"}"#);
    let site = Site::new(PLUGINS);
    let input = site.write("data/in.txt", &json_rows(1..=1000));
    let worker = site.worker_with_rest(&format!(
        "listeners: http://127.0.0.1:0\n{}",
        provider_keys(&moto, 1_000)
    ));
    let (src, sink) = file_pipeline_reading(&site, &secret);
    let other = site.write(
        "other.yaml",
        "name: rows-copy\nconfig:\n  connector.class: file-sink\n  topics: rows\n  file: data/copy.txt\n",
    );
    let mut running = site.run_with_env(&worker, &[&src, &sink, &other], &keys.env());
    let lines = |f: &str| common::line_count(&site.path(f));
    running.wait_for("the first file written", WAIT, |_| {
        lines("data/first.txt") >= 1000
    });
    moto.rotate(&keys, &secret, r#"{"out":"data/second.txt"}"#, || {});
    running.wait_for("the restarted sink", WAIT, |log| {
        task_starts(log, "rows-out") == 2
    });
    append(&input, &json_rows(1001..=2000));
    let start = std::time::Instant::now();
    while lines("data/second.txt") < 1000 || lines("data/copy.txt") < 2000 {
        assert!(
            start.elapsed() < WAIT,
            "after {WAIT:?}: first.txt {}, second.txt {}, copy.txt {} lines; log:\n{}",
            lines("data/first.txt"),
            lines("data/second.txt"),
            lines("data/copy.txt"),
            running.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // REST shows the placeholder; /metrics counts the rotation.
    let base = running
        .log()
        .lines()
        .find_map(|l| {
            l.split("REST API listening on ")
                .nth(1)
                .map(|b| b.trim().to_owned())
        })
        .unwrap();
    let config = reqwest::blocking::get(format!("{base}/connectors/rows-out/config"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        config.contains(&format!("${{aws-secretsmanager:{secret}:out}}"))
            && !config.contains("second.txt"),
        "{config}"
    );
    let metrics = reqwest::blocking::get(format!("{base}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "tributary_secret_rotations_total{{secret=\"{secret}\"}} 1"
        )),
        "{metrics}"
    );
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(task_starts(&log, "rows-out"), 2, "{log}");
    assert_eq!(task_starts(&log, "rows-copy"), 1, "{log}");
    assert_eq!(task_starts(&log, "rows-in"), 1, "{log}");
    assert_eq!(lines("data/first.txt"), 1000, "{log}");
}

#[test]
fn a_secrets_manager_outage_keeps_the_values_in_use() {
    let moto = Moto::start();
    let keys = Keys::any();
    let secret = unique("tributary/out");
    moto.create_secret(&keys, &secret, r#"{"out":"data/out.txt"}"#);
    let site = Site::new(PLUGINS);
    let input = site.write("data/in.txt", &json_rows(1..=500));
    let worker = site.worker(&provider_keys(&moto, 500));
    let (src, sink) = file_pipeline_reading(&site, &secret);
    let mut running = site.run_with_env(&worker, &[&src, &sink], &keys.env());
    let lines = || common::line_count(&site.path("data/out.txt"));
    running.wait_for("the first lines", WAIT, |_| lines() >= 500);
    drop(moto);
    wait_log(
        &mut running,
        "checking the secret for a new version failed; the value in use stays",
    );
    append(&input, &json_rows(501..=1000));
    running.wait_for("the lines written during the outage", WAIT, |_| {
        lines() >= 1000
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(task_starts(&log, "rows-out"), 1, "{log}");
    assert!(log.contains(&format!("secret={secret}")), "{log}");
}

/// A secret that only deleted connectors read leaves the provider's
/// cache: it is no longer checked for new versions, and `/metrics` stops
/// counting it. A secret a remaining connector still reads stays.
#[test]
fn secrets_no_config_reads_after_a_delete_or_a_new_config_are_forgotten() {
    let moto = Moto::start();
    let keys = Keys::any();
    let only = unique("tributary/only");
    let shared = unique("tributary/shared");
    moto.create_secret(&keys, &only, r#"{"out":"data/only.txt"}"#);
    moto.create_secret(&keys, &shared, r#"{"out":"data/shared.txt"}"#);
    let site = Site::new(PLUGINS);
    std::fs::create_dir_all(site.path("data")).unwrap();
    let worker = site.worker_with_rest(&format!(
        "listeners: http://127.0.0.1:0\nfile.allowed.paths: {}\n{}",
        site.path("data").display(),
        provider_keys(&moto, 300)
    ));
    let sink = |name: &str, secret: &str| {
        site.write(
            &format!("{name}.yaml"),
            &format!("name: {name}\nconfig:\n  connector.class: file-sink\n  topics: rows\n  file: ${{aws-secretsmanager:{secret}:out}}\n"),
        )
    };
    let (gone, twin, kept) = (
        sink("gone", &only),
        sink("twin", &shared),
        sink("kept", &shared),
    );
    let running = site.run_with_env(&worker, &[&gone, &twin, &kept], &keys.env());
    let api = common::rest::Api::listening(running);
    let counted = |secret: &str| {
        let metrics = api.req("GET", "/metrics").send().unwrap().text().unwrap();
        metrics.contains(&format!(
            "tributary_secret_checks_total{{secret=\"{secret}\"}}"
        ))
    };
    let start = std::time::Instant::now();
    while !(counted(&only) && counted(&shared)) {
        assert!(start.elapsed() < WAIT, "both secrets counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    for name in ["gone", "twin"] {
        let (status, body) = api.call("DELETE", &format!("/connectors/{name}"), None);
        assert!(status < 300, "{status} {body}");
    }
    let start = std::time::Instant::now();
    while counted(&only) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the deleted connector's secret is still counted; log:\n{}",
            api.run.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(counted(&shared), "the secret `kept` still reads stays");
    // A new config of `kept` that reads no secret: the last one goes.
    let literal = serde_json::json!({"connector.class": "file-sink", "topics": "rows", "file": site.path("data/kept.txt").display().to_string()});
    let (status, body) = api.call("PUT", "/connectors/kept/config", Some(literal));
    assert_eq!(status, 200, "{body}");
    let start = std::time::Instant::now();
    while counted(&shared) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a secret no config reads any more is still counted; log:\n{}",
            api.run.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}
