//! Consuming a sink connector's topics and committing what was flushed.

use super::{client_config, is_refused_login, props, KafkaCluster, Registration, Security};
use crate::contract::{SinkBatch, SinkRecord};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a sink subscribes to for `topics.regex` `regex`: librdkafka treats
/// a topic starting with `^` as a pattern, so the pattern is anchored.
fn pattern_subscription(regex: &str) -> String {
    if regex.starts_with('^') {
        regex.to_owned()
    } else {
        format!("^{regex}")
    }
}

/// Checks a sink's `topics.regex` as librdkafka's subscribe does when a
/// task starts (it compiles the pattern); no broker is contacted.
pub fn check_topic_pattern(regex: &str) -> Result<(), String> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("group.id", "tributary-topic-pattern-check")
        .set("log_level", "0")
        .create()
        .map_err(|e| format!("cannot create a Kafka consumer to check it: {e}"))?;
    let subscription = pattern_subscription(regex);
    consumer
        .subscribe(&[subscription.as_str()])
        .map_err(|e| format!("librdkafka refuses it: {e}"))
}

/// A Kafka topic and partition.
pub type TopicPartition = (String, i32);

/// What goes into the batches handed to a sink task.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    /// Most records.
    pub records: usize,
    /// A batch ends with the record whose key and value bring it here.
    pub bytes: usize,
    /// Records carry their headers. librdkafka decodes a record's headers
    /// only when asked, and asking has a price per record even for records
    /// without any (it sets up a parser for the header count; measured in
    /// ADR 0008). Without, every record's headers are empty.
    pub headers: bool,
}

/// A consumer in a sink connector's group.
///
/// A thread of its own polls librdkafka and builds the next batches while
/// the task writes the last one, so consuming no longer adds to the time
/// the task spends writing (docs/benchmarks.md). Offsets are committed from
/// the task's thread, only for what it says is flushed, so fetching ahead
/// changes nothing in what is committed: a batch fetched but not written is
/// read again after a restart.
pub struct RecordConsumer {
    /// Before `consumer`: dropped first (see [`Security::register`]).
    _login: Option<Registration>,
    consumer: Arc<BaseConsumer>,
    batches: Option<Receiver<SinkBatch>>,
    /// Batches the task is done with, back to the fetch thread to be
    /// filled again ([`RecordConsumer::recycle`]).
    spares: SyncSender<SinkBatch>,
    quit: Arc<AtomicBool>,
    fetcher: Option<JoinHandle<()>>,
}

impl RecordConsumer {
    /// Joins `group_id`, subscribes to `topics` (or to the pattern
    /// `regex`) and starts fetching batches within `limits`. Offsets are
    /// committed only by [`RecordConsumer::commit`].
    pub fn new(
        cluster: &Arc<KafkaCluster>,
        worker: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
        group_id: &str,
        topics: &[String],
        regex: Option<&str>,
        limits: BatchLimits,
    ) -> Result<RecordConsumer, String> {
        for topic in topics {
            cluster.ensure_topic(topic)?;
            cluster.register_consumer(topic, group_id);
        }
        let mut defaults = cluster.client_properties();
        defaults.extend(props(&[
            ("auto.offset.reset", "earliest"),
            ("topic.metadata.refresh.interval.ms", "5000"),
            // librdkafka stops fetching a partition for this long whenever
            // its local queue holds `queued.min.messages` (100,000)
            // records. Its default, 1 s, starves any sink that writes
            // faster than 100,000 records a second (the PostgreSQL sink
            // benchmark's numbers: docs/benchmarks.md, "a streaming
            // `COPY`"). A check every 10 ms while the queue is full costs
            // nothing that shows.
            ("fetch.queue.backoff.ms", "10"),
        ]));
        if cluster.is_embedded() {
            // The embedded Kafka holds a group rebalancing for about the
            // session timeout after a member leaves: with Kafka's 45 s a
            // sink stopped and started again (or its offsets changed)
            // would wait that long. In process, nothing needs 45 s.
            //
            // And the embedded Kafka answers a fetch that finds nothing new
            // only after `fetch.wait.max.ms`, even when records arrive
            // meanwhile: with librdkafka's 500 ms a sink that keeps up with
            // its source waits half a second per fetch (measured in
            // docs/benchmarks.md, "sink fed by a file source on the
            // embedded Kafka"). A fetch in process costs next to nothing.
            defaults.extend(props(&[
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                ("fetch.wait.max.ms", "10"),
            ]));
        }
        // Not overridable: they are what makes delivery at-least-once.
        let fixed = props(&[
            ("group.id", group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ]);
        let consumer: BaseConsumer = client_config(&[&defaults, worker, overrides, &fixed])
            .create()
            .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
        let subscription: Vec<String> = match regex {
            Some(r) => vec![pattern_subscription(r)],
            None => topics.to_vec(),
        };
        let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| format!("cannot subscribe to {}: {e}", subscription.join(", ")))?;
        let security = super::producer::follows_login(cluster, &[worker, overrides]);
        let consumer = Arc::new(consumer);
        let quit = Arc::new(AtomicBool::new(false));
        // While the task writes a batch, one more waits in the channel and
        // the thread builds (then holds) the one after: at most two batches
        // the task has not seen, each within `limits`. A rendezvous (one
        // ahead) was slower, with no less memory (docs/benchmarks.md, "how
        // far the fetch thread reads ahead"): a put's time varies, and the
        // second batch covers it.
        let (sender, batches) = mpsc::sync_channel(1);
        // Two spares at most: as many as the fetch thread can fill ahead.
        let (spares, spare) = mpsc::sync_channel(2);
        let fetch = Fetch {
            consumer: consumer.clone(),
            spare,
            cluster: cluster.clone(),
            security: security.clone(),
            group: group_id.to_owned(),
            limits,
            last_warning: None,
        };
        let fetcher = std::thread::Builder::new()
            .name(format!("fetch {group_id}"))
            .spawn({
                let quit = quit.clone();
                move || fetch.run(&sender, &quit)
            })
            .map_err(|e| format!("cannot start the fetch thread of group `{group_id}`: {e}"))?;
        Ok(RecordConsumer {
            // SAFETY: registered last, once nothing can fail; `_login` is
            // declared before `consumer`, and `Drop` joins the fetch thread
            // (the only other owner of the consumer) before the fields drop.
            _login: unsafe { super::producer::login_of(security.as_ref(), consumer.client()) },
            consumer,
            batches: Some(batches),
            spares,
            quit,
            fetcher: Some(fetcher),
        })
    }

    /// The next batch, waiting up to `wait` for one; empty when none came.
    pub fn next_batch(&mut self, wait: Duration) -> Result<SinkBatch, String> {
        let batches = self.batches.as_ref().expect("receiver lives until drop");
        match batches.recv_timeout(wait) {
            Ok(batch) => Ok(batch),
            Err(RecvTimeoutError::Timeout) => Ok(SinkBatch::default()),
            Err(RecvTimeoutError::Disconnected) => {
                Err("the Kafka consumer's fetch thread ended".to_owned())
            }
        }
    }

    /// Hands a batch the task is done with back to the fetch thread, which
    /// fills it again: its columns keep their allocations, so a batch does
    /// not cost fresh memory (page faults, a megabyte or more) each time.
    /// Beyond two spare batches (the task also makes batches of its own,
    /// of records to offer again) it is dropped here.
    pub fn recycle(&self, batch: SinkBatch) {
        let _ = self.spares.try_send(batch);
    }

    /// Records not consumed yet in these partitions, given the next offset
    /// to read of each: from the high watermarks librdkafka learnt with its
    /// last fetches (a local lookup, no request). Partitions whose
    /// watermark is not known yet count 0.
    pub fn lag(&self, next: &BTreeMap<TopicPartition, i64>) -> u64 {
        next.iter()
            .filter_map(|((topic, partition), next)| {
                let high = self.cached_high_watermark(topic, *partition)?;
                Some((high - next).max(0) as u64)
            })
            .sum()
    }

    /// librdkafka's cached high watermark (`rd_kafka_get_watermark_offsets`,
    /// which rdkafka does not wrap); `None` when it is not known yet.
    fn cached_high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let topic = std::ffi::CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer lives as long as `self.consumer`; the
        // topic is a NUL-terminated string that outlives the call; `low`
        // and `high` are valid for writes. The call only reads librdkafka's
        // own cached state.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high)
    }

    /// Commits, for each partition, the offset of the next record to read.
    pub fn commit(&self, next: &BTreeMap<TopicPartition, i64>) -> Result<(), String> {
        if next.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| format!("commit of {topic}[{partition}]: {e}"))?;
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|e| format!("committing consumer offsets: {e}"))
    }
}

impl Drop for RecordConsumer {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        // A fetcher waiting to hand over a batch sees the receiver gone.
        drop(self.batches.take());
        if let Some(fetcher) = self.fetcher.take() {
            let _ = fetcher.join();
        }
    }
}

/// The fetch thread's side of a [`RecordConsumer`].
struct Fetch {
    consumer: Arc<BaseConsumer>,
    /// Batches to fill again.
    spare: Receiver<SinkBatch>,
    cluster: Arc<KafkaCluster>,
    /// When the consumer follows the worker's login.
    security: Option<Arc<Security>>,
    group: String,
    limits: BatchLimits,
    last_warning: Option<(String, Instant)>,
}

impl Fetch {
    fn run(mut self, batches: &SyncSender<SinkBatch>, quit: &AtomicBool) {
        let mut next = SinkBatch::default();
        while !quit.load(Ordering::Relaxed) {
            self.poll_batch(&mut next, Duration::from_millis(100));
            if next.is_empty() {
                continue;
            }
            let mut spare = self.spare.try_recv().unwrap_or_default();
            spare.clear();
            if batches.send(std::mem::replace(&mut next, spare)).is_err() {
                return;
            }
        }
    }

    /// Fills the empty `batch` with up to `limits.records` records, ending
    /// with the one that brings their keys and values to `limits.bytes`:
    /// waits up to `wait` for the first, then takes what is already there.
    fn poll_batch(&mut self, batch: &mut SinkBatch, wait: Duration) {
        let mut timeout = wait;
        while batch.len() < self.limits.records && batch.bytes() < self.limits.bytes {
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => {
                    // Once: each call checks the name is UTF-8 again.
                    let topic = m.topic();
                    let (key, value) = (m.key(), m.payload());
                    let size = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
                    self.cluster.consumed(topic, &self.group, size as u64);
                    batch.push(SinkRecord {
                        topic,
                        partition: m.partition(),
                        offset: m.offset(),
                        key,
                        value,
                        headers: &[],
                        timestamp: m.timestamp().to_millis(),
                    });
                    if self.limits.headers {
                        for h in m.headers().iter().flat_map(|hs| hs.iter()) {
                            batch.push_header(h.key, h.value);
                        }
                    }
                }
                Some(Err(e)) => {
                    if let (true, Some(security)) = (
                        e.rdkafka_error_code().is_some_and(is_refused_login),
                        &self.security,
                    ) {
                        security.refused(&e.to_string());
                    }
                    // Transient (a topic not there yet, a broker away, a
                    // login refused until it is renewed): librdkafka
                    // retries by itself. Say so, once a minute.
                    let text = e.to_string();
                    let repeat = matches!(&self.last_warning, Some((t, at)) if *t == text && at.elapsed() < Duration::from_secs(60));
                    if !repeat {
                        tracing::warn!(error = %text, group = %self.group, "Kafka consumer");
                        self.last_warning = Some((text, Instant::now()));
                    }
                    break;
                }
            }
            timeout = Duration::ZERO;
        }
    }
}

/// A consumer in `group` that never joins it: for reading and changing
/// the group's committed offsets while no member is active.
fn group_client(
    cluster: &KafkaCluster,
    layers: &[&BTreeMap<String, String>],
    group: &str,
) -> Result<BaseConsumer, String> {
    let bootstrap = cluster.client_properties();
    // A short session: a join waits at most about this long for members
    // that are gone but not yet timed out.
    let fixed = props(&[
        ("group.id", group),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ]);
    let mut all = vec![&bootstrap];
    all.extend_from_slice(layers);
    all.push(&fixed);
    client_config(&all)
        .create()
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The committed offsets of consumer group `group` on every partition of
/// `topics` (partitions without a committed offset are left out).
pub fn group_offsets(
    cluster: &KafkaCluster,
    layers: &[&BTreeMap<String, String>],
    group: &str,
    topics: &[String],
) -> Result<Vec<(TopicPartition, i64)>, String> {
    let consumer = group_client(cluster, layers, group)?;
    let mut list = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
            .map_err(|e| format!("reading the partitions of `{topic}`: {e}"))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                list.add_partition(topic, p.id());
            }
        }
    }
    if list.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer
        .committed_offsets(list, ADMIN_TIMEOUT)
        .map_err(|e| format!("reading the committed offsets of group `{group}`: {e}"))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(n) => Some(((e.topic().to_owned(), e.partition()), n)),
            _ => None,
        })
        .collect())
}

/// Commits offsets for consumer group `group`, which must have no active
/// member (it joins the group alone to commit). `None`: the partition's earliest offset (a reset: the sink
/// reads it from the beginning).
pub fn set_group_offsets(
    cluster: &KafkaCluster,
    layers: &[&BTreeMap<String, String>],
    group: &str,
    offsets: &[(TopicPartition, Option<i64>)],
) -> Result<(), String> {
    if offsets.is_empty() {
        return Ok(());
    }
    let consumer = group_client(cluster, layers, group)?;
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        let offset = match offset {
            Some(n) => *n,
            None => {
                consumer
                    .fetch_watermarks(topic, *partition, ADMIN_TIMEOUT)
                    .map_err(|e| format!("reading the start of {topic}[{partition}]: {e}"))?
                    .0
            }
        };
        list.add_partition_offset(topic, *partition, Offset::Offset(offset))
            .map_err(|e| format!("offset of {topic}[{partition}]: {e}"))?;
    }
    // Some brokers accept commits only from a member: join the (empty)
    // group alone, then commit.
    let mut topics: Vec<&str> = offsets.iter().map(|((t, _), _)| t.as_str()).collect();
    topics.sort();
    topics.dedup();
    consumer
        .subscribe(&topics)
        .map_err(|e| format!("joining group `{group}`: {e}"))?;
    let start = Instant::now();
    while consumer.assignment().map_or(0, |a| a.count()) == 0 {
        if start.elapsed() > ADMIN_TIMEOUT {
            return Err(format!(
                "could not join group `{group}` within {} s: is a member still active?",
                ADMIN_TIMEOUT.as_secs()
            ));
        }
        let _ = consumer.poll(Duration::from_millis(100));
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .map_err(|e| format!("committing offsets of group `{group}`: {e}"))
}
