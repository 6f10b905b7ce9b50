//! Kafka Connect's error handling (`errors.*`) for one task: which failed
//! records are tolerated, logged and dead-lettered, and how long failing
//! operations are retried.

use crate::config::ErrorSettings;
use crate::contract::Header;
use crate::kafka::{KafkaCluster, OutRecord, SyncProducer};
use crate::metrics::TaskMetrics;
use std::collections::BTreeMap;
use std::time::Duration;

/// A record that could not be written or produced, and why.
pub(super) struct FailedRecord<'a> {
    pub topic: &'a str,
    /// -1 when the record never had a Kafka position (source records).
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// Kafka Connect's stage names: `TASK_PUT`, `KAFKA_PRODUCE`.
    pub stage: &'a str,
    pub class: &'a str,
    pub message: &'a str,
}

/// The error policy of one task.
pub(super) struct ErrorPolicy {
    settings: ErrorSettings,
    connector: String,
    task: u32,
    dlq: Option<SyncProducer>,
}

impl ErrorPolicy {
    pub fn new(
        settings: &ErrorSettings,
        connector: &str,
        task: u32,
        cluster: &KafkaCluster,
        producer_props: &[&BTreeMap<String, String>],
    ) -> Result<ErrorPolicy, String> {
        let dlq = match (&settings.dlq_topic, settings.tolerate_all) {
            (Some(topic), true) => {
                cluster.ensure_topic(topic)?;
                Some(SyncProducer::new(cluster, producer_props)?)
            }
            _ => None,
        };
        Ok(ErrorPolicy {
            settings: settings.clone(),
            connector: connector.to_owned(),
            task,
            dlq,
        })
    }

    /// Applies `errors.tolerance` to a failed record. `Ok`: tolerated (the
    /// record is done: logged and dead-lettered as configured). `Err`: the
    /// task must fail, with this reason.
    pub fn tolerate(&self, r: FailedRecord<'_>, metrics: &TaskMetrics) -> Result<(), String> {
        let place = if r.partition < 0 {
            format!("for topic {}", r.topic)
        } else {
            format!("{}[{}]@{}", r.topic, r.partition, r.offset)
        };
        if !self.settings.tolerate_all {
            return Err(format!(
                "{} failed for record {place}: {} (errors.tolerance is none)",
                r.stage, r.message
            ));
        }
        TaskMetrics::add(&metrics.records_failed, 1);
        if self.settings.log {
            if self.settings.log_messages {
                let show = |b: Option<&[u8]>| {
                    b.map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|| "null".into())
                };
                tracing::warn!(stage = r.stage, key = %show(r.key), value = %show(r.value), "tolerated error for record {place}: {}", r.message);
            } else {
                tracing::warn!(
                    stage = r.stage,
                    "tolerated error for record {place}: {}",
                    r.message
                );
            }
        }
        if let (Some(dlq), Some(topic)) = (&self.dlq, &self.settings.dlq_topic) {
            let mut headers = r.headers.to_vec();
            if self.settings.dlq_context_headers {
                let mut add = |k: &str, v: String| {
                    headers.push(Header {
                        key: format!("__connect.errors.{k}"),
                        value: Some(v.into_bytes()),
                    })
                };
                add("topic", r.topic.to_owned());
                add("partition", r.partition.to_string());
                add("offset", r.offset.to_string());
                add("connector.name", self.connector.clone());
                add("task.id", self.task.to_string());
                add("stage", r.stage.to_owned());
                add("class.name", r.class.to_owned());
                add("exception.message", r.message.to_owned());
            }
            let record = OutRecord {
                topic,
                key: r.key,
                value: r.value,
                headers,
            };
            dlq.send_all(&[record], Duration::from_secs(30))
                .map_err(|e| format!("dead letter queue `{topic}` refused record {place}: {e}"))?;
            TaskMetrics::add(&metrics.records_dlq, 1);
        }
        Ok(())
    }

    /// The policy of `connector`'s task `task`; dead letters go through a
    /// producer with the worker's and the connector's producer properties.
    pub fn for_connector(
        shared: &super::Shared,
        connector: &crate::config::ConnectorConfig,
        task: u32,
    ) -> Result<ErrorPolicy, String> {
        let props = [
            &shared.worker.producer,
            &connector.runtime.producer_overrides,
        ];
        ErrorPolicy::new(
            &connector.runtime.errors,
            &connector.name,
            task,
            &shared.cluster,
            &props,
        )
    }

    pub fn settings(&self) -> &ErrorSettings {
        &self.settings
    }

    /// Tolerated records go to a dead letter queue.
    pub fn dead_letters(&self) -> bool {
        self.dlq.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_record() -> FailedRecord<'static> {
        FailedRecord {
            topic: "t",
            partition: 2,
            offset: 9,
            key: None,
            value: None,
            headers: &[],
            stage: "TASK_PUT",
            class: "bad-record",
            message: "not JSON",
        }
    }

    #[test]
    fn tolerance_none_fails_with_the_record_and_stage() {
        let cluster = KafkaCluster::external("127.0.0.1:1", None, crate::kafka::Security::none());
        let metrics = TaskMetrics::default();
        let none = ErrorPolicy::new(&ErrorSettings::default(), "c", 0, &cluster, &[]).unwrap();
        let e = none.tolerate(bad_record(), &metrics).unwrap_err();
        assert_eq!(
            e,
            "TASK_PUT failed for record t[2]@9: not JSON (errors.tolerance is none)"
        );
        let all = ErrorSettings {
            tolerate_all: true,
            ..Default::default()
        };
        let all = ErrorPolicy::new(&all, "c", 0, &cluster, &[]).unwrap();
        all.tolerate(bad_record(), &metrics).unwrap();
        assert_eq!(TaskMetrics::get(&metrics.records_failed), 1);
    }
}
