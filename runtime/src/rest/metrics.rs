//! `GET /metrics`: the worker's counters in Prometheus' text format
//! (version 0.0.4), per connector and task.

use crate::herder::Herder;
use crate::metrics::{Histogram, TaskMetrics, BATCH_RECORDS_BUCKETS, CALL_SECONDS_BUCKETS};
use std::fmt::Write;

/// A label value, escaped as the text format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Kafka Connect's states, each a 0/1 gauge per task.
const STATES: &[&str] = &["RUNNING", "PAUSED", "FAILED", "UNASSIGNED"];

pub fn render(herder: &Herder, secrets: Option<&crate::secrets::SecretsManager>) -> String {
    let mut out = String::new();
    if let Some(secrets) = secrets {
        render_secrets(&mut out, &secrets.counts());
    }
    let mut tasks = herder.worker().statuses();
    tasks.sort_by(|a, b| (&a.connector, a.task).cmp(&(&b.connector, b.task)));
    type Get = fn(&TaskMetrics) -> u64;
    let counters: &[(&str, &str, Get)] = &[
        (
            "tributary_task_records_polled_total",
            "Source: records returned by poll. Sink: records consumed from Kafka.",
            |m| TaskMetrics::get(&m.records_in),
        ),
        (
            "tributary_task_records_written_total",
            "Source: records Kafka acknowledged. Sink: records the plugin accepted.",
            |m| TaskMetrics::get(&m.records_out),
        ),
        (
            "tributary_task_records_failed_total",
            "Records that failed and were tolerated (errors.tolerance=all).",
            |m| TaskMetrics::get(&m.records_failed),
        ),
        (
            "tributary_task_records_dlq_total",
            "Records written to the dead letter queue.",
            |m| TaskMetrics::get(&m.records_dlq),
        ),
        (
            "tributary_task_bytes_total",
            "Bytes of record values moved.",
            |m| TaskMetrics::get(&m.bytes_out),
        ),
        (
            "tributary_task_batches_total",
            "Batches the plugin returned (poll) or took (put).",
            |m| TaskMetrics::get(&m.batches),
        ),
        (
            "tributary_task_commits_total",
            "Offset commits (source: offsets made durable; sink: consumer commits).",
            |m| TaskMetrics::get(&m.commits),
        ),
        (
            "tributary_task_retries_total",
            "Retriable errors seen.",
            |m| TaskMetrics::get(&m.retries),
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for t in &tasks {
            let _ = writeln!(
                out,
                "{name}{{connector=\"{}\",task=\"{}\"}} {}",
                label(&t.connector),
                t.task,
                get(&t.metrics)
            );
        }
    }
    type Family = (
        &'static str,
        &'static str,
        &'static [f64],
        fn(&TaskMetrics) -> &Histogram,
    );
    let _ = writeln!(out, "# HELP tributary_task_consumer_lag Sink: records in the task's partitions not consumed yet, as of its last batch.\n# TYPE tributary_task_consumer_lag gauge");
    for t in tasks
        .iter()
        .filter(|t| t.kind == crate::contract::ConnectorKind::Sink)
    {
        let _ = writeln!(
            out,
            "tributary_task_consumer_lag{{connector=\"{}\",task=\"{}\"}} {}",
            label(&t.connector),
            t.task,
            TaskMetrics::get(&t.metrics.consumer_lag)
        );
    }
    let histograms: &[Family] = &[
        (
            "tributary_task_plugin_call_seconds",
            "Time of each batch call into the plugin (poll, put).",
            CALL_SECONDS_BUCKETS,
            |m| &m.call_seconds,
        ),
        (
            "tributary_task_batch_records",
            "Records per batch.",
            BATCH_RECORDS_BUCKETS,
            |m| &m.batch_records,
        ),
    ];
    for (name, help, bounds, get) in histograms {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for t in &tasks {
            let labels = format!("connector=\"{}\",task=\"{}\"", label(&t.connector), t.task);
            let (cumulative, count, sum) = get(&t.metrics).snapshot(bounds);
            for (i, c) in cumulative.iter().enumerate() {
                let le = bounds.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {c}");
            }
            let _ = writeln!(
                out,
                "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}"
            );
        }
    }
    let _ = writeln!(out, "# HELP tributary_task_plugin_counter A counter the plugin reported (counter-add).\n# TYPE tributary_task_plugin_counter counter");
    for t in &tasks {
        for (counter, v) in t.metrics.plugin_counters() {
            let _ = writeln!(
                out,
                "tributary_task_plugin_counter{{connector=\"{}\",task=\"{}\",counter=\"{}\"}} {v}",
                label(&t.connector),
                t.task,
                label(&counter)
            );
        }
    }
    let _ = writeln!(out, "# HELP tributary_task_state 1 for the state each task is in.\n# TYPE tributary_task_state gauge");
    let mut connector_lines = String::new();
    for name in herder.connectors() {
        let Ok(status) = herder.status(&name) else {
            continue;
        };
        for (id, s) in &status.tasks {
            for st in STATES {
                let _ = writeln!(
                    out,
                    "tributary_task_state{{connector=\"{}\",task=\"{id}\",state=\"{st}\"}} {}",
                    label(&name),
                    u8::from(s.name() == *st)
                );
            }
        }
        for st in ["RUNNING", "PAUSED", "STOPPED", "FAILED"] {
            let _ = writeln!(
                connector_lines,
                "tributary_connector_state{{connector=\"{}\",state=\"{st}\"}} {}",
                label(&name),
                u8::from(status.connector.name() == st)
            );
        }
    }
    let _ = writeln!(out, "# HELP tributary_connector_state 1 for the state each connector is in.\n# TYPE tributary_connector_state gauge");
    out.push_str(&connector_lines);
    out
}

/// Per secret (by name, never a value): reads of Secrets Manager, new
/// versions taken into use, failed reads.
fn render_secrets(
    out: &mut String,
    counts: &std::collections::BTreeMap<String, crate::secrets::SecretCounts>,
) {
    type Get = fn(&crate::secrets::SecretCounts) -> u64;
    let families: &[(&str, &str, Get)] = &[
        (
            "tributary_secret_checks_total",
            "Reads of AWS Secrets Manager for the secret: version checks and value fetches.",
            |c| c.checks,
        ),
        (
            "tributary_secret_rotations_total",
            "New AWSCURRENT values of the secret taken into use.",
            |c| c.rotations,
        ),
        (
            "tributary_secret_check_failures_total",
            "Reads of the secret that failed (the value in use stayed).",
            |c| c.failures,
        ),
    ];
    for (name, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (secret, c) in counts {
            let _ = writeln!(out, "{name}{{secret=\"{}\"}} {}", label(secret), get(c));
        }
    }
}
