//! Drives one sink task: consume a batch, `put` it, `flush` on the offset
//! flush interval, and commit the consumer offsets of exactly what was
//! flushed.
//!
//! Records a task reports as retriable are offered again (alone, with
//! backoff) before anything new, and nothing is flushed or committed while
//! any wait: a committed offset never passes a record that is not written.

use super::{backoff, nap, Shared};
use crate::config::ConnectorConfig;
use crate::contract::{PutResult, SinkRecord, TaskError};
use crate::kafka::{RecordConsumer, TopicPartition};
use crate::metrics::TaskMetrics;
use crate::plugin::{CallError, Plugin, SinkInstance, TaskSandbox};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(super) fn run(
    shared: &Shared,
    plugin: &Plugin,
    connector: &ConnectorConfig,
    sandbox: TaskSandbox,
    task_config: &Vec<(String, String)>,
) -> Result<(), String> {
    let metrics = sandbox.metrics.clone();
    let name = connector.name.as_str();
    let task = sandbox.task;
    let stop = &shared.stop;

    let mut attempt = 0;
    let mut instance = loop {
        match plugin.open_sink(&sandbox, task_config) {
            Ok(i) => break i,
            Err(CallError::Guest(TaskError::Retriable(m))) if !stop.load(Ordering::Relaxed) => {
                TaskMetrics::add(&metrics.retries, 1);
                tracing::warn!(connector = name, task, "open: {m}; retrying");
                nap(stop, backoff(attempt, Duration::from_secs(10)));
                attempt += 1;
            }
            Err(e) => return Err(format!("open: {e}")),
        }
    };
    let group = format!("{}{}", shared.worker.sink_group_id_prefix, name);
    let consumer = RecordConsumer::new(
        &shared.cluster,
        &shared.worker.consumer,
        &connector.runtime.consumer_overrides,
        &group,
        &connector.runtime.topics,
        connector.runtime.topics_regex.as_deref(),
    );
    let consumer = match consumer {
        Ok(c) => c,
        Err(e) => {
            instance.close();
            return Err(e);
        }
    };
    tracing::info!(connector = name, task, group = %group, "sink task running");
    let mut driver = Driver {
        shared,
        name,
        task,
        metrics: &metrics,
        consumer,
        unflushed: BTreeMap::new(),
        waiting: Vec::new(),
    };
    let result = driver.run(&mut instance);
    let finish = if result.is_ok() {
        driver.flush_and_commit(&mut instance)
    } else {
        Ok(())
    };
    instance.close();
    result.and(finish)
}

struct Driver<'a> {
    shared: &'a Shared,
    name: &'a str,
    task: u32,
    metrics: &'a TaskMetrics,
    consumer: RecordConsumer,
    /// Next offset to commit per partition, for records put but not flushed.
    unflushed: BTreeMap<TopicPartition, i64>,
    /// Records the task asked to be offered again.
    waiting: Vec<SinkRecord>,
}

impl Driver<'_> {
    fn run(&mut self, instance: &mut SinkInstance) -> Result<(), String> {
        let worker = &self.shared.worker;
        let stop = &self.shared.stop;
        let mut last_flush = Instant::now();
        let mut last_log = Instant::now();
        let mut logged_out = 0;
        let mut attempt = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if self.waiting.is_empty() && last_flush.elapsed() >= worker.offset_flush_interval {
                self.flush_and_commit(instance)?;
                last_flush = Instant::now();
            }
            if !worker.metrics_log_interval.is_zero()
                && last_log.elapsed() >= worker.metrics_log_interval
            {
                let out = TaskMetrics::get(&self.metrics.records_out);
                let rate = (out - logged_out) as f64 / last_log.elapsed().as_secs_f64();
                tracing::info!(
                    connector = self.name,
                    task = self.task,
                    consumed = TaskMetrics::get(&self.metrics.records_in),
                    written = out,
                    "{rate:.0} records/s from Kafka"
                );
                logged_out = out;
                last_log = Instant::now();
            }
            let batch = if self.waiting.is_empty() {
                let batch = self
                    .consumer
                    .poll_batch(worker.sink_batch_max_records, Duration::from_millis(100));
                TaskMetrics::add(&self.metrics.records_in, batch.len() as u64);
                batch
            } else {
                nap(stop, backoff(attempt, Duration::from_secs(10)));
                attempt += 1;
                std::mem::take(&mut self.waiting)
            };
            if batch.is_empty() {
                continue;
            }
            TaskMetrics::add(&self.metrics.batches, 1);
            let (records, outcome) = instance.put(batch);
            let results = match outcome {
                Ok(r) => r,
                Err(CallError::Guest(TaskError::Retriable(m))) => {
                    TaskMetrics::add(&self.metrics.retries, 1);
                    tracing::warn!(
                        connector = self.name,
                        task = self.task,
                        "put: {m}; retrying the batch"
                    );
                    self.waiting = records;
                    continue;
                }
                Err(e) => return Err(format!("put: {e}")),
            };
            let mut accepted = 0;
            for (record, result) in records.into_iter().zip(results) {
                match result {
                    PutResult::Ok if self.waiting.is_empty() => {
                        accepted += 1;
                        TaskMetrics::add(
                            &self.metrics.bytes_out,
                            record.value.as_ref().map_or(0, Vec::len) as u64,
                        );
                        self.unflushed
                            .insert((record.topic, record.partition), record.offset + 1);
                    }
                    // Once one record waits, those after it wait too, so
                    // that they are written (and committed) in order.
                    PutResult::Ok => self.waiting.push(record),
                    PutResult::Retriable(m) => {
                        if self.waiting.is_empty() {
                            TaskMetrics::add(&self.metrics.retries, 1);
                            tracing::debug!(
                                connector = self.name,
                                task = self.task,
                                "put: record {}[{}]@{} retriable: {m}",
                                record.topic,
                                record.partition,
                                record.offset
                            );
                        }
                        self.waiting.push(record);
                    }
                    PutResult::BadRecord(reason) => {
                        return Err(format!(
                            "bad record {}[{}]@{}: {reason} (errors.tolerance is none)",
                            record.topic, record.partition, record.offset
                        ));
                    }
                }
            }
            if self.waiting.is_empty() {
                attempt = 0;
            }
            TaskMetrics::add(&self.metrics.records_out, accepted);
        }
        Ok(())
    }

    /// `flush`, then commit what it made durable.
    fn flush_and_commit(&mut self, instance: &mut SinkInstance) -> Result<(), String> {
        if self.unflushed.is_empty() || !self.waiting.is_empty() {
            return Ok(());
        }
        match instance.flush() {
            Ok(()) => {}
            Err(CallError::Guest(TaskError::Retriable(m))) => {
                TaskMetrics::add(&self.metrics.retries, 1);
                tracing::warn!(
                    connector = self.name,
                    task = self.task,
                    "flush: {m}; will retry"
                );
                return Ok(());
            }
            Err(e) => return Err(format!("flush: {e}")),
        }
        match self.consumer.commit(&self.unflushed) {
            Ok(()) => {
                TaskMetrics::add(&self.metrics.commits, 1);
                self.unflushed.clear();
            }
            // The records are durable; committing again later is harmless.
            Err(e) => tracing::warn!(connector = self.name, task = self.task, "{e}; will retry"),
        }
        Ok(())
    }
}
