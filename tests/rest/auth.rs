//! Who may use the API and how it is served: a bearer token, TLS. Each
//! test configures its own worker.

use crate::common::rest::{assert_error, rest_worker, Api, PLUGINS};
use crate::common::Site;
use reqwest::blocking::Client;
use serde_json::json;
use std::time::Duration;

#[test]
fn a_bearer_token_guards_every_endpoint_but_health_and_secrets_stay_hidden() {
    let site = Site::new(PLUGINS);
    let var = "TRIBUTARY_REST_TEST_TOKEN";
    std::env::set_var(var, "s3cret-token-value");
    std::env::set_var("TRIBUTARY_REST_TEST_TOPIC", "resolved-topic-name");
    let worker = rest_worker(
        &site,
        &format!("rest.auth.token: ${{env:{var}}}\nconfig.providers.env.allowlist.pattern: TRIBUTARY_REST_TEST_.*\n"),
    );
    let mut api = Api::start(&site, &worker, &[]);
    assert_eq!(api.get("/health").0, 200, "health needs no token");
    assert_error(&api.get("/connectors"), 401, "Authorization: Bearer");
    api.token = Some("wrong".into());
    assert_error(&api.get("/connectors"), 401, "not valid");
    assert_error(&api.get("/metrics"), 401, "not valid");
    api.token = Some("s3cret-token-value".into());
    assert_eq!(api.get("/connectors"), (200, json!([])));
    // The scheme is case-insensitive (RFC 7235); every 401 names it.
    let raw = |authorization: &str| {
        Client::new()
            .get(format!("{}/connectors", api.base))
            .header("authorization", authorization)
            .send()
            .unwrap()
    };
    assert_eq!(raw("bearer s3cret-token-value").status(), 200);
    assert_eq!(raw("BEARER  s3cret-token-value").status(), 200);
    for refused in ["Bearer wrong", "Basic czNjcmV0", "s3cret-token-value"] {
        let r = raw(refused);
        assert_eq!(r.status(), 401, "{refused}");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{refused}"
        );
    }

    // A secret key's literal value is hidden; a placeholder shows as written.
    let (code, info) = api.call("POST", "/connectors", Some(json!({"name": "gen", "initial_state": "STOPPED", "config": {"connector.class": "testkit-source", "mode": "generate", "token": "hunter2"}})));
    assert_eq!(code, 201, "{info}");
    assert_eq!(info["config"]["token"], "[hidden]");
    assert_eq!(
        api.get("/connectors/gen/status").1["connector"]["state"],
        "STOPPED",
        "initial_state"
    );
    let (code, info) = api.call(
        "PATCH",
        "/connectors/gen/config",
        Some(json!({"token": format!("${{env:{var}}}")})),
    );
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["config"]["token"], format!("${{env:{var}}}"));
    // Task configs show placeholders as submitted, too.
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "gen2", "initial_state": "PAUSED", "config": {"connector.class": "testkit-source", "mode": "generate", "topic": "${env:TRIBUTARY_REST_TEST_TOPIC}"}})),
    );
    assert_eq!(code, 201, "{info}");
    let (code, tasks) = api.get("/connectors/gen2/tasks");
    assert_eq!(code, 200);
    assert_eq!(
        tasks[0]["config"]["topic"],
        "${env:TRIBUTARY_REST_TEST_TOPIC}"
    );
    assert!(
        !tasks.to_string().contains("resolved-topic-name"),
        "{tasks}"
    );
    let (_, v) = api.call(
        "PUT",
        "/connector-plugins/testkit-source/config/validate",
        Some(json!({"mode": "generate", "token": "hunter2"})),
    );
    assert!(!v.to_string().contains("hunter2"), "{v}");
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        !log.contains("s3cret-token-value") && !log.contains("hunter2"),
        "{log}"
    );
}

#[test]
fn the_api_serves_https_with_the_configured_certificate() {
    let site = Site::new(PLUGINS);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_file = site.write("tls/cert.pem", &cert.cert.pem());
    let key_file = site.write("tls/key.pem", &cert.key_pair.serialize_pem());
    let worker = site.worker_with_rest(&format!(
        "listeners: https://127.0.0.1:0\nrest.tls.certificate.file: {}\nrest.tls.key.file: {}\nrest.auth.token: t0ken\n",
        cert_file.display(),
        key_file.display()
    ));
    let mut api = Api::start(&site, &worker, &[]);
    assert!(api.base.starts_with("https://127.0.0.1:"), "{}", api.base);
    api.client = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(api.get("/health").0, 200);
    assert_error(&api.get("/connectors"), 401, "Bearer");
    api.token = Some("t0ken".into());
    assert_eq!(api.get("/connectors"), (200, json!([])));
    // Plain HTTP on the TLS port gets no answer.
    let plain = api.base.replace("https://", "http://");
    assert!(Client::new().get(format!("{plain}/health")).send().is_err());
    // A client that does not trust the certificate is refused.
    assert!(Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
        .get(format!("{}/health", api.base))
        .send()
        .is_err());
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_bad_tls_key_file_stops_the_worker_at_start_with_its_name() {
    let site = Site::new(PLUGINS);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_file = site.write("tls/cert.pem", &cert.cert.pem());
    let key_file = site.write("tls/key.pem", "not a key\n");
    let worker = site.worker_with_rest(&format!(
        "listeners: https://127.0.0.1:0\nrest.tls.certificate.file: {}\nrest.tls.key.file: {}\n",
        cert_file.display(),
        key_file.display()
    ));
    let (code, log) = site.run(&worker, &[]).wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(
        log.contains("rest.tls.key.file") && log.contains("key.pem"),
        "{log}"
    );
}
