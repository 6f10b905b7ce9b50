//! A producer whose `send_all` returns only when Kafka acknowledged every
//! record: for offsets and dead letter queues, where "queued" is not enough.

use super::{client_config, KafkaCluster};
use crate::contract::Header;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// One record to write.
pub struct OutRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<Header>,
}

struct FailureContext {
    failures: Mutex<Vec<String>>,
}

impl ClientContext for FailureContext {}

impl ProducerContext for FailureContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }
    }
}

/// Writes records and waits for their acknowledgement.
pub struct SyncProducer {
    producer: ThreadedProducer<FailureContext>,
    /// One `send_all` at a time, so a failure is never blamed on another.
    lock: Mutex<()>,
}

impl SyncProducer {
    /// `props` (worker and connector layers) under `acks=all` and
    /// idempotence, which are not overridable here.
    pub fn new(
        cluster: &KafkaCluster,
        props: &[&BTreeMap<String, String>],
    ) -> Result<SyncProducer, String> {
        let bootstrap: BTreeMap<String, String> = [(
            "bootstrap.servers".to_owned(),
            cluster.bootstrap_servers().to_owned(),
        )]
        .into();
        let fixed: BTreeMap<String, String> = [("acks", "all"), ("enable.idempotence", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut layers = vec![&bootstrap];
        layers.extend_from_slice(props);
        layers.push(&fixed);
        let producer = client_config(&layers)
            .create_with_context(FailureContext {
                failures: Mutex::default(),
            })
            .map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
        Ok(SyncProducer {
            producer,
            lock: Mutex::new(()),
        })
    }

    /// Sends every record and waits (up to `timeout`) until Kafka
    /// acknowledged all of them.
    pub fn send_all(&self, records: &[OutRecord<'_>], timeout: Duration) -> Result<(), String> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        for r in records {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(r.topic);
            record.key = r.key;
            record.payload = r.value;
            if !r.headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
                for header in &r.headers {
                    h = h.insert(KafkaHeader {
                        key: &header.key,
                        value: header.value.as_deref(),
                    });
                }
                record.headers = Some(h);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(format!("producing to `{}`: {e}", r.topic)),
                }
            }
        }
        self.producer
            .flush(timeout)
            .map_err(|e| format!("not acknowledged within {} s: {e}", timeout.as_secs()))?;
        let failures = std::mem::take(
            &mut *self
                .producer
                .context()
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        match failures.first() {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        }
    }
}
