//! A real Kafka-protocol broker (tansu) for end-to-end tests: its own port,
//! memory or SQLite storage, stopped when dropped, restartable.

use super::db::free_port;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Worker keys that make the worker's producers send one record per
/// batch. tansu 0.6.0 answers a fetch from an offset inside a batch with
/// the batches that *start* at or after it (its storage picks batches by
/// base offset), so a consumer that resumes at a committed offset in the
/// middle of a batch silently skips the rest of that batch; Kafka returns
/// the whole batch and the client skips what precedes the offset. Tests
/// that restart a sink mid-topic use this so no batch has a middle.
pub const ONE_RECORD_BATCHES: &str = "producer.batch.num.messages: 1\n";

/// `fetch.wait.max.ms` for readers of tansu that are timed. tansu 0.6.0
/// sleeps after every fetch round, even one that found records, for what
/// is left of the fetch's wait (half of it when that is 250 ms or more):
/// with librdkafka's 500 ms, each fetch of at most 5 MB costs a quarter of
/// a second and a reader gets ~20 MB/s. Kafka answers at once when it has
/// records.
pub const TANSU_FETCH_WAIT_MS: &str = "10";

pub struct Broker {
    pub port: u16,
    storage: String,
    dir: Option<PathBuf>,
    child: Option<Child>,
}

/// A consumed record, for assertions.
#[derive(Debug)]
pub struct Consumed {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// Waits up to 30 s until a client made from `config` gets the cluster's
/// metadata; `what` names the broker if it never does.
pub fn wait_for_metadata(config: &ClientConfig, what: &str) {
    let consumer: BaseConsumer = config.create().unwrap();
    let start = Instant::now();
    while consumer
        .fetch_metadata(None, Duration::from_secs(1))
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the process in `child`, if any, and reaps it.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

pub fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return p.into();
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin/tansu");
    if home.exists() {
        return home;
    }
    PathBuf::from("tansu")
}

impl Broker {
    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts tansu in memory.
    pub fn memory() -> Broker {
        Broker::start_with(format!("memory://tansu-{}/", free_port()))
    }

    /// Starts tansu on a SQLite file in `dir` (survives a restart).
    pub fn sqlite(dir: &std::path::Path) -> Broker {
        // tansu reads the URL's path relative to its working directory.
        let mut b = Broker {
            port: free_port(),
            storage: "sqlite://tansu.db".into(),
            dir: Some(dir.to_path_buf()),
            child: None,
        };
        b.start();
        b
    }

    fn start_with(storage: String) -> Broker {
        let mut b = Broker {
            port: free_port(),
            storage,
            dir: None,
            child: None,
        };
        b.start();
        b
    }

    /// (Re)starts the broker on its port and waits until it answers.
    pub fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(tansu());
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        let child = cmd
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run tansu ({e}); scripts/test installs it (scripts/tansu install)")
            });
        self.child = Some(child);
        wait_for_metadata(&self.config(), &format!("tansu on port {}", self.port));
    }

    /// Kills the broker (as a crash would).
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    /// Creates a topic with the given configs.
    pub fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().unwrap();
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            topic = topic.set(k, v);
        }
        let result =
            futures::executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
                .unwrap();
        result[0].as_ref().unwrap();
    }

    /// Produces one record and waits for its acknowledgement.
    pub fn produce(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) {
        let producer: BaseProducer = self.config().create().unwrap();
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        record.key = key;
        record.payload = value;
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Produces `values` (no keys), each with the headers `headers(i)`
    /// gives for its index, and waits until every one is acknowledged.
    pub fn produce_with_headers(
        &self,
        topic: &str,
        values: &[String],
        headers: impl Fn(usize) -> Vec<(String, String)>,
    ) {
        use rdkafka::message::{Header, OwnedHeaders};
        let producer: BaseProducer = self.config().create().unwrap();
        for (i, v) in values.iter().enumerate() {
            let mut owned = OwnedHeaders::new();
            for (k, hv) in headers(i) {
                owned = owned.insert(Header {
                    key: &k,
                    value: Some(hv.as_bytes()),
                });
            }
            let record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(topic).payload(v.as_bytes()).headers(owned);
            producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// Produces `values` (no keys) in order with one producer, and waits
    /// until every one is acknowledged.
    pub fn produce_all(&self, topic: &str, values: &[String]) {
        let producer: BaseProducer = self.config().set("linger.ms", "50").create().unwrap();
        for v in values {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
            record.payload = Some(v.as_bytes());
            while let Err((e, r)) = producer.send(record) {
                assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "{e}"
                );
                producer.poll(Duration::from_millis(10));
                record = r;
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// A consumer reading partition 0 of `topic` from the beginning,
    /// assigned directly (it commits nothing and joins no group).
    pub fn reader(&self, topic: &str) -> BaseConsumer {
        self.reader_with(topic, &[])
    }

    /// [`Broker::reader`] with more librdkafka properties.
    pub fn reader_with(&self, topic: &str, properties: &[(&str, &str)]) -> BaseConsumer {
        let mut config = self.config();
        config
            .set("group.id", "test-reader")
            .set("enable.auto.commit", "false");
        for (k, v) in properties {
            config.set(*k, *v);
        }
        let consumer: BaseConsumer = config.create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        consumer
    }

    /// Every record of partition 0 of `topic`, from the beginning.
    pub fn consume_all(&self, topic: &str) -> Vec<Consumed> {
        let consumer = self.reader(topic);
        // A topic that does not exist yet holds nothing.
        let (_, high) = match consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) {
            Ok(w) => w,
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        let start = Instant::now();
        // Read past the high watermark until nothing more comes: some
        // brokers report the end of the last batch, not of its last record.
        let mut next = 0;
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "read {} records of {topic} (high watermark {high})",
                out.len()
            );
            let Some(m) = consumer.poll(Duration::from_millis(300)) else {
                if next >= high {
                    break;
                }
                continue;
            };
            let m = m.unwrap();
            next = m.offset() + 1;
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Consumed {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
            });
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
