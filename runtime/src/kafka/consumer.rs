//! Consuming a sink connector's topics and committing what was flushed.

use super::{client_config, props, KafkaCluster};
use crate::contract::{Header, SinkRecord};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Kafka topic and partition.
pub type TopicPartition = (String, i32);

/// A consumer in a sink connector's group.
pub struct RecordConsumer {
    consumer: BaseConsumer,
    cluster: Arc<KafkaCluster>,
    group: String,
    last_warning: Option<(String, Instant)>,
}

impl RecordConsumer {
    /// Joins `group_id` and subscribes to `topics` (or to the pattern
    /// `regex`). Offsets are committed only by [`RecordConsumer::commit`].
    pub fn new(
        cluster: &Arc<KafkaCluster>,
        worker: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
        group_id: &str,
        topics: &[String],
        regex: Option<&str>,
    ) -> Result<RecordConsumer, String> {
        for topic in topics {
            cluster.ensure_topic(topic)?;
            cluster.register_consumer(topic, group_id);
        }
        let defaults = props(&[
            ("bootstrap.servers", cluster.bootstrap_servers()),
            ("auto.offset.reset", "earliest"),
            ("topic.metadata.refresh.interval.ms", "5000"),
        ]);
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
            // librdkafka treats a topic starting with `^` as a pattern.
            Some(r) => vec![if r.starts_with('^') {
                r.to_owned()
            } else {
                format!("^{r}")
            }],
            None => topics.to_vec(),
        };
        let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| format!("cannot subscribe to {}: {e}", subscription.join(", ")))?;
        Ok(RecordConsumer {
            consumer,
            cluster: cluster.clone(),
            group: group_id.to_owned(),
            last_warning: None,
        })
    }

    /// Up to `max` records: waits up to `wait` for the first, then takes
    /// what is already there.
    pub fn poll_batch(&mut self, max: usize, wait: Duration) -> Vec<SinkRecord> {
        let mut batch = Vec::new();
        let mut timeout = wait;
        while batch.len() < max {
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => {
                    let size = m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
                    self.cluster.consumed(m.topic(), &self.group, size as u64);
                    batch.push(SinkRecord {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: m
                            .headers()
                            .map(|hs| {
                                hs.iter()
                                    .map(|h| Header {
                                        key: h.key.to_owned(),
                                        value: h.value.map(<[u8]>::to_vec),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        timestamp: m.timestamp().to_millis(),
                    })
                }
                Some(Err(e)) => {
                    // Transient (a topic not there yet, a broker away):
                    // librdkafka retries by itself. Say so, once a minute.
                    let text = e.to_string();
                    let repeat = matches!(&self.last_warning, Some((t, at)) if *t == text && at.elapsed() < Duration::from_secs(60));
                    if !repeat {
                        tracing::warn!(error = %text, "Kafka consumer");
                        self.last_warning = Some((text, Instant::now()));
                    }
                    break;
                }
            }
            timeout = Duration::ZERO;
        }
        batch
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
