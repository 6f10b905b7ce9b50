//! `tributary health`, the check a container engine runs against a worker
//! (an image without a shell or curl), and a log without colour escapes
//! when it is not read at a terminal.

use crate::common::rest::{shared, Shared, PLUGINS};
use crate::common::Site;
use std::process::{Command, Output};

fn health(url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["health", url])
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn health_exits_0_when_a_worker_answers() {
    let Shared { api, .. } = shared();
    let url = format!("{}/health", api.base);
    let out = health(&url);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout, format!("{url}: HTTP/1.1 200 OK\n"));
}

#[test]
fn health_fails_with_one_line_when_nothing_listens() {
    // A port the system handed out and that nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/health");
    let out = health(&url);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {url}: cannot connect to 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn health_fails_on_an_answer_outside_2xx() {
    let Shared { api, .. } = shared();
    let url = format!("{}/nothing-here", api.base);
    let out = health(&url);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("error: {url}: answered HTTP/1.1 404 Not Found\n")
    );
}

#[test]
fn health_refuses_a_url_it_cannot_ask() {
    let out = health("https://127.0.0.1:8443/health");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expects an http:// URL"));
}

#[test]
fn a_log_read_through_a_pipe_holds_no_colour_escapes() {
    let site = Site::new(PLUGINS);
    let worker = site.worker("");
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .current_dir(site.dir.path())
        .env(
            "TRIBUTARY_LOG",
            "debug,cranelift_codegen=warn,wasmtime=warn",
        )
        .env_remove("NO_COLOR")
        .args(["plugins", "-w"])
        .arg(&worker)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DEBUG") && stderr.contains("loaded plugin"),
        "the plugin registry logs at debug: {stderr}"
    );
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}
