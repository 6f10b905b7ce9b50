//! Producing source records, with a delivery report for each.

use super::security::client_error;
use super::{
    client_config, owned_headers, props, send_when_room, KafkaCluster, Registration, Security,
};
use crate::contract::SourceRecord;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The fate of the record sent with sequence number `seq`.
#[derive(Debug)]
pub struct Ack {
    pub seq: usize,
    /// `Err`: Kafka refused it (after librdkafka's own retries).
    pub result: Result<(), Box<FailedDelivery>>,
}

/// A record Kafka refused, with what the error policy needs to report it.
#[derive(Debug)]
pub struct FailedDelivery {
    pub error: String,
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Delivery reports on their way from librdkafka's polling thread to the
/// task: the task takes all that arrived in one swap, not one message each.
struct AckContext {
    acks: Mutex<Vec<Ack>>,
    arrived: Condvar,
    /// When the producer follows the worker's login.
    security: Option<Arc<Security>>,
}

impl ClientContext for AckContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        client_error(self.security.as_ref(), &error, reason);
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, m)| {
            Box::new(FailedDelivery {
                error: e.to_string(),
                topic: m.topic().to_owned(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            })
        });
        let mut acks = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
        acks.push(Ack { seq, result });
        if acks.len() == 1 {
            self.arrived.notify_one();
        }
    }
}

/// The worker's security settings, when a client made from `layers`
/// follows the worker's login: not when a later layer of its properties
/// (`producer.*`, `consumer.*`, a connector's overrides) gives it a login of
/// its own (then its refusals are not the worker's either).
pub(super) fn follows_login(
    cluster: &KafkaCluster,
    layers: &[&BTreeMap<String, String>],
) -> Option<Arc<Security>> {
    let own_login = layers.iter().any(|layer| {
        ["sasl.username", "sasl.password"]
            .iter()
            .any(|k| layer.contains_key(*k))
    });
    (!own_login && cluster.security().has_login()).then(|| cluster.security().clone())
}

/// Registers `client` with `security` (see [`follows_login`]).
///
/// # Safety
///
/// As [`Security::register`]: the registration is dropped before the
/// client's handle is destroyed.
pub(super) unsafe fn login_of<C: ClientContext>(
    security: Option<&Arc<Security>>,
    client: &rdkafka::client::Client<C>,
) -> Option<Registration> {
    // SAFETY: passed on to the caller.
    security.and_then(|s| unsafe { s.register(client) })
}

/// Sends records to Kafka and reports their deliveries.
pub struct RecordProducer {
    /// Before `producer`: dropped first (see [`Security::register`]).
    _login: Option<Registration>,
    producer: ThreadedProducer<AckContext>,
    cluster: Arc<KafkaCluster>,
}

/// Properties the worker sets unless the user does: no record is lost or
/// reordered by retries.
fn producer_defaults(cluster: &KafkaCluster) -> BTreeMap<String, String> {
    let mut defaults = cluster.client_properties();
    defaults.extend(props(&[
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("batch.size", "1000000"),
        ("queue.buffering.max.kbytes", "262144"),
    ]));
    defaults
}

impl RecordProducer {
    /// A producer for one task: worker-wide `producer.*` properties, then
    /// the connector's `producer.override.*`.
    pub fn new(
        cluster: Arc<KafkaCluster>,
        worker: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<RecordProducer, String> {
        let defaults = producer_defaults(&cluster);
        let security = follows_login(&cluster, &[worker, overrides]);
        let producer: ThreadedProducer<AckContext> = client_config(&[&defaults, worker, overrides])
            .create_with_context(AckContext {
                acks: Mutex::default(),
                arrived: Condvar::new(),
                security: security.clone(),
            })
            .map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
        Ok(RecordProducer {
            // SAFETY: registered last, and `_login` is declared before
            // `producer`, so it is dropped first.
            _login: unsafe { login_of(security.as_ref(), producer.client()) },
            producer,
            cluster,
        })
    }

    /// Makes sure `topics` exist before records go to them (see
    /// [`KafkaCluster::ensure_topic`]); call once per batch.
    pub fn prepare(&self, topics: &[String]) -> Result<(), String> {
        topics.iter().try_for_each(|t| self.cluster.ensure_topic(t))
    }

    /// Queues `record` for Kafka (its topic prepared), tagged `seq`. Waits while librdkafka's
    /// queue is full (or, on the embedded Kafka, while the topic's readers
    /// lag too far); never drops a record. `Ok(false)`: `cancel` was set
    /// while waiting and the record was not sent.
    pub fn send(
        &self,
        record: SourceRecord<'_>,
        seq: usize,
        cancel: &AtomicBool,
    ) -> Result<bool, String> {
        let topic = record.topic;
        let size = record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len);
        if !self.cluster.reserve(topic, size as u64, cancel) {
            return Ok(false);
        }
        let mut base: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, seq);
        base.key = record.key;
        base.payload = record.value;
        base.timestamp = record.timestamp;
        base.headers = owned_headers(record.headers);
        send_when_room(&self.producer, base)
            .map_err(|e| format!("cannot produce to topic `{topic}`: {e}"))?;
        Ok(true)
    }

    /// Moves the delivery reports that arrived into `into` (which must be
    /// empty), waiting up to `wait` when none has.
    pub fn take_acks(&self, wait: Duration, into: &mut Vec<Ack>) {
        debug_assert!(into.is_empty());
        let context = self.producer.context();
        let mut acks = context.acks.lock().unwrap_or_else(PoisonError::into_inner);
        if acks.is_empty() && !wait.is_zero() {
            acks = context
                .arrived
                .wait_timeout_while(acks, wait, |a| a.is_empty())
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut *acks, into);
    }

    /// Waits until everything queued was delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        self.producer
            .flush(timeout)
            .map_err(|e| format!("flushing the producer: {e}"))
    }

    /// Records queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
