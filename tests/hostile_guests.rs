//! Deliberately hostile guests fail alone, with a reason a user can act
//! on, while another connector on the same worker keeps moving records.

mod common;

use common::{line_count, numbered_lines, Site};
use std::time::Duration;

fn hostile(site: &Site, name: &str, mode: &str, extra: &str) -> std::path::PathBuf {
    site.write(
        &format!("{name}.yaml"),
        &format!("name: {name}\nconfig:\n  connector.class: testkit-source\n  mode: {mode}\n  topic: {name}\n  after: 50\n{extra}"),
    )
}

#[test]
fn each_hostile_task_fails_alone_and_the_pipeline_keeps_moving() {
    let site = Site::new(&["tributary_connector_file", "tributary_testkit"]);
    let secret = site.write("outside/secret.txt", "do not read me\n");
    // The file pipeline is granted data/ only; the escaper is granted nothing.
    site.write("data/in.txt", &numbered_lines(0, 20_000, 40));
    let worker = site.worker("task.call.timeout.ms: 2000\ntask.memory.max.mb: 64\n");
    let spin = hostile(&site, "spinner", "spin", "");
    let alloc = hostile(&site, "hog", "alloc", "");
    let escape = hostile(
        &site,
        "escaper",
        "escape",
        &format!("  path: {}\n", secret.display()),
    );
    let panic = hostile(&site, "panicker", "panic", "");
    let src = site.write("source.yaml", "name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: lines\n");
    let sink = site.write("sink.yaml", "name: lines-out\nconfig:\n  connector.class: file-sink\n  file: data/out.txt\n  topics: lines\n");

    let mut running = site.run(&worker, &[&spin, &alloc, &escape, &panic, &src, &sink]);
    running.wait_for("four task failures", Duration::from_secs(120), |log| {
        log.matches("task failed").count() >= 4
    });

    // More input after the failures: the healthy pipeline must still move it.
    let input = site.path("data/in.txt");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    std::io::Write::write_all(&mut f, numbered_lines(20_000, 5_000, 40).as_bytes()).unwrap();
    drop(f);
    let out = site.path("data/out.txt");
    running.wait_for(
        "all 25,000 lines in the sink",
        Duration::from_secs(120),
        |_| line_count(&out) >= 25_000,
    );
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        numbered_lines(0, 25_000, 40)
    );

    let failure = |connector: &str| -> String {
        log.lines()
            .find(|l| l.contains("task failed") && l.contains(&format!("connector={connector}")))
            .unwrap_or_else(|| panic!("no failure logged for {connector}:\n{log}"))
            .to_owned()
    };
    let spin = failure("spinner");
    assert!(
        spin.contains("did not return from `poll` within 2000 ms (task.call.timeout.ms)"),
        "{spin}"
    );
    let hog = failure("hog");
    assert!(
        hog.contains("exceeded its memory limit of 64 MiB in `poll`"),
        "{hog}"
    );
    let escaper = failure("escaper");
    assert!(
        escaper.contains(&format!("cannot read {}", secret.display())),
        "{escaper}"
    );
    let panicker = failure("panicker");
    assert!(
        panicker.contains("crashed in `poll`") && panicker.contains("testkit: deliberate panic"),
        "{panicker}"
    );
    assert!(
        !log.contains("do not read me"),
        "the secret file's content never shows up"
    );
}

/// A panic in the worker's own code on a task's thread (made here with the
/// `task-run` fail point) fails that task, with the panic's message in its
/// status, and the worker goes on serving.
#[test]
fn a_host_side_panic_fails_its_task_and_rest_shows_it() {
    let site = Site::new(&["tributary_connector_file"]);
    site.write("data/in.txt", &numbered_lines(0, 10, 20));
    let worker = common::rest::rest_worker(&site, "");
    let src = site.write(
        "source.yaml",
        "name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: lines\n",
    );
    let env = [(
        "FAILPOINTS".to_owned(),
        "task-run=panic(injected host panic)".to_owned(),
    )];
    let api = common::rest::Api::listening(site.run_with_env(&worker, &[&src], &env));
    let start = std::time::Instant::now();
    let status = loop {
        let (_, status) = api.get("/connectors/lines-in/status");
        if status["tasks"][0]["state"] == "FAILED" {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the task did not fail within a minute of its panic: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("panicked: injected host panic"), "{status}");
    // The worker itself is still up.
    assert_eq!(api.get("/").0, 200);
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}
