//! A producer whose `send_all` returns only when Kafka acknowledged every
//! record: for offsets and dead letter queues, where "queued" is not enough.

use super::security::client_error;
use super::{
    client_config, owned_headers, props, send_when_room, KafkaCluster, Registration, Security,
};
use crate::contract::Header;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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
    /// When the producer follows the worker's login.
    security: Option<Arc<Security>>,
}

impl ClientContext for FailureContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        client_error(self.security.as_ref(), &error, reason);
    }
}

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
    /// Before `producer`: dropped first (see [`Security::register`]).
    _login: Option<Registration>,
    producer: ThreadedProducer<FailureContext>,
    /// One `send_all` at a time, so a failure is never blamed on another.
    lock: Mutex<()>,
}

impl SyncProducer {
    /// `layers_in` (worker and connector properties) under `acks=all` and
    /// idempotence, which are not overridable here.
    pub fn new(
        cluster: &KafkaCluster,
        layers_in: &[&BTreeMap<String, String>],
    ) -> Result<SyncProducer, String> {
        let bootstrap = cluster.client_properties();
        let fixed = props(&[("acks", "all"), ("enable.idempotence", "true")]);
        let mut layers = vec![&bootstrap];
        layers.extend_from_slice(layers_in);
        layers.push(&fixed);
        let security = super::producer::follows_login(cluster, layers_in);
        let producer: ThreadedProducer<FailureContext> = client_config(&layers)
            .create_with_context(FailureContext {
                failures: Mutex::default(),
                security: security.clone(),
            })
            .map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
        Ok(SyncProducer {
            // SAFETY: registered last, and `_login` is declared before
            // `producer`, so it is dropped first.
            _login: unsafe { super::producer::login_of(security.as_ref(), producer.client()) },
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
            record.headers = owned_headers(&r.headers);
            send_when_room(&self.producer, record)
                .map_err(|e| format!("producing to `{}`: {e}", r.topic))?;
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
