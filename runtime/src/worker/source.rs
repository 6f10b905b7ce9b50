//! Drives one source task: poll a batch, produce it, and once Kafka
//! acknowledged records, make their offsets durable and only then tell the
//! task (`commit`).
//!
//! Order for every record: produced → acknowledged by Kafka → its offset
//! written to the offset store → `commit` to the plugin. An offset is
//! committed only when its record and every record polled before it (in
//! this task) were acknowledged.
//!
//! Two threads per task: the task thread polls the guest and keeps the
//! books (in flight, acknowledgements, offsets, commits); a sender thread
//! hands each polled batch to the producer, in poll order, while the task
//! thread polls the next one.

use super::errors::{ErrorPolicy, FailedRecord};
use super::progress::Progress;
use super::{nap, open_with_retry, Shared};
use crate::config::ConnectorConfig;
use crate::contract::{JsonMap, PartitionOffset, SourceBatch, TaskError};
use crate::kafka::{Ack, RecordProducer};
use crate::metrics::TaskMetrics;
use crate::plugin::{CallError, Plugin, SourceInstance, TaskSandbox};
use crate::retry::Retry;
use crate::store::offset_key;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most records produced but not yet acknowledged before polling pauses.
const MAX_IN_FLIGHT: usize = 500_000;

/// Polled batches waiting for the sender thread before polling pauses.
const SEND_AHEAD: usize = 2;

/// A polled batch on its way to the sender thread.
struct Outgoing {
    batch: SourceBatch,
    /// Sequence number of the batch's first record; the rest follow.
    first_seq: usize,
}

/// Records in flight, in poll order, with the offset each one carries.
#[derive(Default)]
struct InFlight {
    /// Sequence number of `entries[0]`.
    base: usize,
    entries: VecDeque<Pending>,
}

struct Pending {
    acked: bool,
    offset: Option<(Arc<JsonMap>, JsonMap)>,
}

impl InFlight {
    /// The sequence number the next pushed record gets.
    fn next_seq(&self) -> usize {
        self.base + self.entries.len()
    }

    fn push(&mut self, offset: Option<(Arc<JsonMap>, JsonMap)>) -> usize {
        self.entries.push_back(Pending {
            acked: false,
            offset,
        });
        self.base + self.entries.len() - 1
    }

    fn ack(&mut self, seq: usize) {
        if let Some(p) = seq
            .checked_sub(self.base)
            .and_then(|i| self.entries.get_mut(i))
        {
            p.acked = true;
        }
    }

    /// Pops the acknowledged prefix; its offsets become ready to commit.
    fn drain_acked(
        &mut self,
        ready: &mut BTreeMap<String, PartitionOffset>,
        connector: &str,
    ) -> u64 {
        let mut n = 0;
        while self.entries.front().is_some_and(|p| p.acked) {
            let p = self.entries.pop_front().expect("front exists");
            self.base += 1;
            n += 1;
            if let Some((partition, offset)) = p.offset {
                ready.insert(
                    offset_key(connector, &partition),
                    PartitionOffset {
                        partition: (*partition).clone(),
                        offset,
                    },
                );
            }
        }
        n
    }
}

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
    let offsets = shared.offsets.load(name);
    let mut instance = open_with_retry(stop, settings, &metrics, || {
        plugin.open_source(&sandbox, task_config, &offsets)
    })?;
    tracing::info!(resumed_partitions = offsets.len(), "source task running");

    let producer = RecordProducer::new(
        shared.cluster.clone(),
        &shared.worker.producer,
        &connector.runtime.producer_overrides,
    )?;
    let mut driver = Driver {
        shared,
        name,
        metrics: &metrics,
        policy,
        producer: &producer,
        in_flight: InFlight::default(),
        acks: Vec::new(),
        ready: BTreeMap::new(),
    };
    // Set when polling ends (stop, or an error): the sender sends no more;
    // what it did not send stays uncommitted.
    let abort = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let (to_sender, batches) = sync_channel(SEND_AHEAD);
        let (spent_tx, spent) = std::sync::mpsc::channel();
        let sender = std::thread::Builder::new()
            .name(format!("{name}-{task}-send"))
            .spawn_scoped(scope, || {
                send_batches(
                    &producer,
                    batches,
                    spent_tx,
                    [&shared.stop, &abort],
                    &metrics,
                )
            })
            .map_err(|e| format!("cannot start the sender thread: {e}"))?;
        let polled = driver.run(&mut instance, &to_sender, &spent);
        abort.store(true, Ordering::Relaxed);
        drop(to_sender);
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err("the sender thread panicked".into()));
        polled.and(sent)
    });
    let finish = driver.finish(&mut instance);
    instance.close();
    result.and(finish)
}

/// The sender thread: produces each batch's records in order, tagged with
/// their sequence numbers. Ends when the task thread hangs up, when the
/// worker stops, or at `abort` (polling ended).
fn send_batches(
    producer: &RecordProducer,
    batches: Receiver<Outgoing>,
    spent: std::sync::mpsc::Sender<SourceBatch>,
    [stop, abort]: [&AtomicBool; 2],
    metrics: &TaskMetrics,
) -> Result<(), String> {
    for Outgoing { batch, first_seq } in batches {
        let mut bytes = 0;
        for (seq, record) in (first_seq..).zip(batch.records()) {
            // `stop` also ends a wait inside `send` (the embedded Kafka's
            // flow control, whose readers stop too).
            if abort.load(Ordering::Relaxed) || !producer.send(record, seq, stop)? {
                return Ok(()); // stopping: this record and the rest stay uncommitted
            }
            bytes += record.value.map_or(0, <[u8]>::len) as u64;
        }
        TaskMetrics::add(&metrics.bytes_out, bytes);
        // Freed where they were allocated: glibc's malloc makes a thread
        // that frees another thread's memory wait on that thread's arena.
        let _ = spent.send(batch);
    }
    Ok(())
}

struct Driver<'a> {
    shared: &'a Shared,
    name: &'a str,
    metrics: &'a TaskMetrics,
    policy: ErrorPolicy,
    producer: &'a RecordProducer,
    in_flight: InFlight,
    /// Delivery reports being applied (kept for its allocation).
    acks: Vec<Ack>,
    /// Acknowledged offsets not yet durable, by offset key.
    ready: BTreeMap<String, PartitionOffset>,
}

impl Driver<'_> {
    /// Polls until stopped, handing batches to the sender thread.
    fn run(
        &mut self,
        instance: &mut SourceInstance,
        sender: &SyncSender<Outgoing>,
        spent: &Receiver<SourceBatch>,
    ) -> Result<(), String> {
        let worker = &self.shared.worker;
        let stop = &self.shared.stop;
        let mut last_flush = Instant::now();
        let mut progress = Progress::new(worker.metrics_log_interval);
        let mut idle = Duration::from_millis(1);
        let mut retry = Retry::default();
        while !stop.load(Ordering::Relaxed) {
            // Spent batches are freed here; a hung-up channel means the
            // sender ended (its error, if any, comes from joining it).
            loop {
                match spent.try_recv() {
                    Ok(batch) => drop(batch),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(()),
                }
            }
            self.take_acks(Duration::ZERO)?;
            if last_flush.elapsed() >= worker.offset_flush_interval {
                self.commit_offsets(instance)?;
                last_flush = Instant::now();
            }
            let out = TaskMetrics::get(&self.metrics.records_out);
            // Idle tasks stay quiet.
            if let Some(rate) = progress.due(out, !self.in_flight.entries.is_empty()) {
                tracing::info!(
                    polled = TaskMetrics::get(&self.metrics.records_in),
                    acknowledged = out,
                    in_flight = self.in_flight.entries.len(),
                    "{rate:.0} records/s to Kafka"
                );
            }
            if self.in_flight.entries.len() >= MAX_IN_FLIGHT {
                self.take_acks(Duration::from_millis(20))?;
                continue;
            }
            let started = Instant::now();
            let polled = instance.poll(worker.source_poll_max_records);
            self.metrics.call_seconds.observe(
                crate::metrics::CALL_SECONDS_BUCKETS,
                started.elapsed().as_secs_f64(),
            );
            let mut batch = match polled {
                Ok(b) => {
                    retry.reset();
                    b
                }
                Err(CallError::Guest(TaskError::Retriable(m))) => {
                    TaskMetrics::add(&self.metrics.retries, 1);
                    tracing::warn!("poll: {m}; retrying");
                    let Some(delay) = retry.next_delay(
                        self.policy.settings().retry_timeout,
                        self.policy.settings().retry_delay_max,
                    ) else {
                        return Err(format!(
                            "poll: still failing after errors.retry.timeout: {m}"
                        ));
                    };
                    nap(stop, delay);
                    continue;
                }
                Err(e) => return Err(format!("poll: {e}")),
            };
            if batch.is_empty() {
                let done = TaskMetrics::get(&self.metrics.records_out);
                let busy = !self.in_flight.entries.is_empty();
                self.take_acks(progress.wait(idle, done, busy))?;
                idle = (idle * 2).min(Duration::from_millis(100));
                continue;
            }
            idle = Duration::from_millis(1);
            TaskMetrics::add(&self.metrics.batches, 1);
            TaskMetrics::add(&self.metrics.records_in, batch.len() as u64);
            self.metrics
                .batch_records
                .observe(crate::metrics::BATCH_RECORDS_BUCKETS, batch.len() as f64);
            self.producer.prepare(&batch.topics)?;
            // Checked by `poll`: every index points at something.
            let partitions: Vec<Arc<JsonMap>> = std::mem::take(&mut batch.partitions)
                .into_iter()
                .map(Arc::new)
                .collect();
            let mut offsets = std::mem::take(&mut batch.offsets).into_iter().peekable();
            let first_seq = self.in_flight.next_seq();
            for (i, p) in batch.partition.iter().enumerate() {
                let offset = offsets.next_if(|(r, _)| *r as usize == i).map(|(_, o)| o);
                let partition = &partitions[*p as usize];
                self.in_flight.push(offset.map(|o| (partition.clone(), o)));
            }
            let outgoing = Outgoing { batch, first_seq };
            if sender.send(outgoing).is_err() {
                // The sender thread ended (stopping, or an error it returns):
                // what it did not send stays uncommitted.
                break;
            }
        }
        Ok(())
    }

    /// Applies delivery reports: waits up to `wait` for the first.
    fn take_acks(&mut self, wait: Duration) -> Result<(), String> {
        let mut acks = std::mem::take(&mut self.acks);
        self.producer.take_acks(wait, &mut acks);
        // Every report is applied even after one fails the task, so the
        // records acknowledged with it still count as delivered.
        let mut failure = None;
        for ack in acks.drain(..) {
            if let Err(f) = &ack.result {
                // Under errors.tolerance=all a refused record is logged,
                // dead-lettered and counted as done, so offsets move past it.
                let failed = FailedRecord {
                    topic: &f.topic,
                    partition: -1,
                    offset: -1,
                    key: f.key.as_deref(),
                    value: f.value.as_deref(),
                    headers: &[],
                    stage: "KAFKA_PRODUCE",
                    class: "producer",
                    message: &f.error,
                };
                if failure.is_some() {
                    continue; // already failing: the rest are not tolerated
                }
                if let Err(e) = self.policy.tolerate(failed, self.metrics) {
                    failure = Some(e);
                    continue; // not done: its offset must not commit
                }
            }
            self.in_flight.ack(ack.seq);
        }
        self.acks = acks;
        let n = self.in_flight.drain_acked(&mut self.ready, self.name);
        TaskMetrics::add(&self.metrics.records_out, n);
        failure.map_or(Ok(()), Err)
    }

    /// Makes acknowledged offsets durable, then tells the task. A store
    /// failure keeps them pending (retried at the next flush): nothing is
    /// committed to the plugin that is not durable.
    fn commit_offsets(&mut self, instance: &mut SourceInstance) -> Result<(), String> {
        if self.ready.is_empty() {
            return Ok(());
        }
        let offsets: Vec<PartitionOffset> = self.ready.values().cloned().collect();
        if let Err(e) = self.shared.offsets.write(self.name, &offsets) {
            tracing::warn!("offsets not written, will retry: {e}");
            return Ok(());
        }
        self.ready.clear();
        TaskMetrics::add(&self.metrics.commits, 1);
        instance
            .commit(&offsets)
            .map_err(|e| format!("commit: {e}"))
    }

    /// At stop: deliver what is in flight, then commit its offsets.
    fn finish(&mut self, instance: &mut SourceInstance) -> Result<(), String> {
        if let Err(e) = self.producer.flush(self.shared.worker.shutdown_timeout) {
            tracing::warn!("{e}; {} records unacknowledged", self.producer.in_flight());
        }
        let acks = self.take_acks(Duration::ZERO);
        let commit = self.commit_offsets(instance);
        acks.and(commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Scalar;

    fn offset(n: i64) -> JsonMap {
        [("position".to_owned(), Scalar::Int(n))]
            .into_iter()
            .collect()
    }

    #[test]
    fn only_an_acknowledged_prefix_commits() {
        let p = Arc::new(JsonMap::from([(
            "filename".to_owned(),
            Scalar::Text("f".into()),
        )]));
        let mut f = InFlight::default();
        let a = f.push(Some((p.clone(), offset(10))));
        let b = f.push(None);
        let c = f.push(Some((p.clone(), offset(30))));
        let mut ready = BTreeMap::new();
        f.ack(c);
        assert_eq!(
            f.drain_acked(&mut ready, "x"),
            0,
            "record a is not acknowledged yet"
        );
        f.ack(a);
        assert_eq!(f.drain_acked(&mut ready, "x"), 1);
        assert_eq!(ready.values().next().unwrap().offset, offset(10));
        f.ack(b);
        assert_eq!(f.drain_acked(&mut ready, "x"), 2);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready.values().next().unwrap().offset, offset(30));
    }
}
