//! Drives one sink task: consume a batch, `put` it, `flush` on the offset
//! flush interval, and commit the consumer offsets of exactly what was
//! flushed: past every record done, except where the task's commit limits
//! hold a partition back (records it keeps in progress across flushes, such
//! as the open object of `s3-sink`).
//!
//! Records a task reports as retriable are offered again (alone, with
//! backoff) before anything new; the records it accepted stay accepted.
//! Nothing is flushed or committed while any record waits: a committed
//! offset never passes a record that is not written or, under
//! `errors.tolerance=all`, dead-lettered.

use super::errors::{ErrorPolicy, FailedRecord};
use super::progress::Progress;
use super::{nap, open_with_retry, Shared};
use crate::config::ConnectorConfig;
use crate::contract::{PutResult, SinkBatch, SinkRecord, TaskError};
use crate::kafka::{BatchLimits, RecordConsumer, TopicPartition};
use crate::metrics::TaskMetrics;
use crate::plugin::{CallError, Plugin, SinkInstance, TaskSandbox};
use crate::retry::Retry;
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
    let settings = &connector.runtime.errors;
    let policy = ErrorPolicy::for_connector(shared, connector, task)?;

    let mut instance = open_with_retry(stop, settings, &metrics, || {
        plugin.open_sink(&sandbox, task_config)
    })?;
    let group = format!("{}{}", shared.worker.sink_group_id_prefix, name);
    let limits = BatchLimits {
        records: connector
            .runtime
            .sink_batch_max_records
            .unwrap_or(shared.worker.sink_batch_max_records),
        bytes: shared.worker.sink_batch_max_bytes,
        // The sink reads them, or the dead letter queue keeps them.
        headers: connector.description.reads_headers || policy.dead_letters(),
    };
    let consumer = RecordConsumer::new(
        &shared.cluster,
        &shared.worker.consumer,
        &connector.runtime.consumer_overrides,
        &group,
        &connector.runtime.topics,
        connector.runtime.topics_regex.as_deref(),
        limits,
    );
    let consumer = match consumer {
        Ok(c) => c,
        Err(e) => {
            instance.close();
            // The text names the subscription: a pattern that came from a
            // placeholder is shown as the placeholder.
            let regex = connector.runtime.topics_regex.as_deref();
            return Err(regex.map_or(e.clone(), |r| {
                connector.resolved("topics.regex", r).mask(&e)
            }));
        }
    };
    tracing::info!(group = %group, "sink task running");
    let mut driver = Driver {
        shared,
        metrics: &metrics,
        policy,
        consumer,
        unflushed: BTreeMap::new(),
        committed: BTreeMap::new(),
        positions: BTreeMap::new(),
        waiting: SinkBatch::default(),
        waiting_reason: String::new(),
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
    metrics: &'a TaskMetrics,
    policy: ErrorPolicy,
    consumer: RecordConsumer,
    /// Next offset to commit per partition, for records done (written or
    /// tolerated) but not flushed, or flushed but held back by the task's
    /// commit limits.
    unflushed: BTreeMap<TopicPartition, i64>,
    /// The offset this task last committed per partition.
    committed: BTreeMap<TopicPartition, i64>,
    /// Next offset to consume per partition, for the lag.
    positions: BTreeMap<TopicPartition, i64>,
    /// Records the task asked to be offered again, in order.
    waiting: SinkBatch,
    waiting_reason: String,
}

impl Driver<'_> {
    fn run(&mut self, instance: &mut SinkInstance) -> Result<(), String> {
        let worker = &self.shared.worker;
        let stop = &self.shared.stop;
        let mut last_flush = Instant::now();
        let mut progress = Progress::new(worker.metrics_log_interval);
        let mut batch_retry = Retry::default();
        let mut record_retry = Retry::default();
        while !stop.load(Ordering::Relaxed) {
            if self.waiting.is_empty() && last_flush.elapsed() >= worker.offset_flush_interval {
                self.flush_and_commit(instance)?;
                last_flush = Instant::now();
            }
            let out = TaskMetrics::get(&self.metrics.records_out);
            if let Some(rate) = progress.due(out, false) {
                tracing::info!(
                    consumed = TaskMetrics::get(&self.metrics.records_in),
                    written = out,
                    "{rate:.0} records/s from Kafka"
                );
            }
            let mut batch = if self.waiting.is_empty() {
                let wait = progress.wait(Duration::from_millis(100), out, false);
                let batch = self.consumer.next_batch(wait)?;
                TaskMetrics::add(&self.metrics.records_in, batch.len() as u64);
                if !batch.is_empty() {
                    let mut positions = Runs::replacing(&mut self.positions);
                    batch.records().for_each(|r| positions.note(r));
                    drop(positions);
                    let lag = self.consumer.lag(&self.positions);
                    self.metrics.consumer_lag.store(lag, Ordering::Relaxed);
                }
                batch
            } else {
                match record_retry.next_delay(
                    self.policy.settings().retry_timeout,
                    self.policy.settings().retry_delay_max,
                ) {
                    Some(delay) => {
                        nap(stop, delay);
                        std::mem::take(&mut self.waiting)
                    }
                    None => {
                        // errors.retry.timeout ran out: the waiting records failed.
                        let message = format!(
                            "still retriable after errors.retry.timeout: {}",
                            self.waiting_reason
                        );
                        let mut done = Runs::over(&mut self.unflushed);
                        let waiting = std::mem::take(&mut self.waiting);
                        for record in waiting.records() {
                            tolerate(&self.policy, self.metrics, record, "retriable", &message)?;
                            done.note(record);
                        }
                        record_retry.reset();
                        continue;
                    }
                }
            };
            if batch.is_empty() {
                continue;
            }
            TaskMetrics::add(&self.metrics.batches, 1);
            let batch_len = batch.len();
            let started = Instant::now();
            let outcome = instance.put(&mut batch);
            self.metrics.call_seconds.observe(
                crate::metrics::CALL_SECONDS_BUCKETS,
                started.elapsed().as_secs_f64(),
            );
            self.metrics
                .batch_records
                .observe(crate::metrics::BATCH_RECORDS_BUCKETS, batch_len as f64);
            let results = match outcome {
                Ok(r) => {
                    batch_retry.reset();
                    r
                }
                Err(CallError::Guest(TaskError::Retriable(m))) => {
                    TaskMetrics::add(&self.metrics.retries, 1);
                    let Some(delay) = batch_retry.next_delay(
                        self.policy.settings().retry_timeout,
                        self.policy.settings().retry_delay_max,
                    ) else {
                        return Err(format!(
                            "put: still failing after errors.retry.timeout: {m}"
                        ));
                    };
                    tracing::warn!("put: {m}; retrying the batch");
                    nap(stop, delay);
                    self.waiting = batch;
                    self.waiting_reason = m;
                    continue;
                }
                Err(e) => return Err(format!("put: {e}")),
            };
            let (mut accepted, mut bytes) = (0, 0);
            let mut done = Runs::over(&mut self.unflushed);
            for (record, result) in batch.records().zip(results) {
                match result {
                    // Accepted, even after a retriable one: offering it again
                    // would write it twice. (A sink that needs order returns
                    // retriable for the records after one it cannot take.)
                    PutResult::Ok => {
                        accepted += 1;
                        bytes += record.value.map_or(0, <[u8]>::len) as u64;
                        done.note(record);
                    }
                    PutResult::Retriable(m) => {
                        if self.waiting.is_empty() {
                            TaskMetrics::add(&self.metrics.retries, 1);
                            tracing::debug!(
                                "put: record {}[{}]@{} retriable: {m}",
                                record.topic,
                                record.partition,
                                record.offset
                            );
                            self.waiting_reason = m;
                        }
                        self.waiting.push(record);
                    }
                    PutResult::BadRecord(reason) => {
                        tolerate(&self.policy, self.metrics, record, "bad-record", &reason)?;
                        done.note(record);
                    }
                }
            }
            drop(done);
            self.consumer.recycle(batch);
            TaskMetrics::add(&self.metrics.bytes_out, bytes);
            if self.waiting.is_empty() {
                record_retry.reset();
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
        let limits = match instance.flush() {
            Ok(limits) => limits,
            Err(CallError::Guest(TaskError::Retriable(m))) => {
                TaskMetrics::add(&self.metrics.retries, 1);
                tracing::warn!("flush: {m}; will retry");
                return Ok(());
            }
            Err(e) => return Err(format!("flush: {e}")),
        };
        // Per partition: past every record done, or up to the task's limit
        // when it holds some back. Nothing is committed that was committed
        // already, and a limit never moves a commit backwards.
        let targets: BTreeMap<TopicPartition, i64> = self
            .unflushed
            .iter()
            .map(|(tp, next)| {
                (
                    tp.clone(),
                    limits.get(tp).map_or(*next, |l| (*l).min(*next)),
                )
            })
            .filter(|(tp, target)| self.committed.get(tp).is_none_or(|c| target > c))
            .collect();
        for (tp, limit) in &limits {
            if let Some(next) = self.unflushed.get(tp).filter(|next| limit < *next) {
                tracing::debug!(
                    "{}[{}]: the task holds offsets {limit}..{next} back (not durable yet)",
                    tp.0,
                    tp.1
                );
            }
        }
        match self.consumer.commit(&targets) {
            Ok(()) => {
                if !targets.is_empty() {
                    TaskMetrics::add(&self.metrics.commits, 1);
                }
                self.committed.extend(targets);
                // What is committed up to the last record done is settled;
                // a partition held back stays until a later flush lets it go.
                let committed = &self.committed;
                self.unflushed
                    .retain(|tp, next| committed.get(tp).is_none_or(|c| c < next));
            }
            // The records are durable; committing again later is harmless.
            Err(e) => tracing::warn!("{e}; will retry"),
        }
        Ok(())
    }
}

/// Offers a record the task could not take to the connector's error policy.
fn tolerate(
    policy: &ErrorPolicy,
    metrics: &TaskMetrics,
    record: SinkRecord<'_>,
    class: &str,
    message: &str,
) -> Result<(), String> {
    let failed = FailedRecord {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        key: record.key,
        value: record.value,
        headers: record.headers,
        stage: "TASK_PUT",
        class,
        message,
    };
    policy.tolerate(failed, metrics)
}

/// Moves the next offset of each partition past the records noted, with
/// one map update per run of records of one partition (a batch is made of
/// such runs) instead of one per record.
struct Runs<'m> {
    next: &'m mut BTreeMap<TopicPartition, i64>,
    open: Option<(TopicPartition, i64)>,
    /// Replace what the map held (a consumer position, which a rebalance
    /// can move back) instead of only moving it forward.
    replace: bool,
}

impl<'m> Runs<'m> {
    /// Moves entries forward only: records done.
    fn over(next: &'m mut BTreeMap<TopicPartition, i64>) -> Self {
        Runs {
            next,
            open: None,
            replace: false,
        }
    }

    /// Sets entries to the records noted: positions, for the lag.
    fn replacing(next: &'m mut BTreeMap<TopicPartition, i64>) -> Self {
        Runs {
            next,
            open: None,
            replace: true,
        }
    }

    fn note(&mut self, record: SinkRecord<'_>) {
        let after = record.offset + 1;
        match &mut self.open {
            Some(((topic, partition), n))
                if *partition == record.partition && *topic == record.topic =>
            {
                *n = (*n).max(after);
            }
            _ => {
                self.close_run();
                self.open = Some(((record.topic.to_owned(), record.partition), after));
            }
        }
    }

    fn close_run(&mut self) {
        if let Some((tp, after)) = self.open.take() {
            let n = self.next.entry(tp).or_insert(after);
            *n = if self.replace { after } else { (*n).max(after) };
        }
    }
}

impl Drop for Runs<'_> {
    fn drop(&mut self) {
        self.close_run();
    }
}
