//! The embedded Kafka: librdkafka's mock cluster on its own thread. It
//! speaks the Kafka protocol on a local port, keeps everything in memory
//! and forgets it when the worker stops. For demos and tests; a real
//! cluster is one `bootstrap.servers` line away.

use rdkafka::mocking::MockCluster;
use std::sync::mpsc;
use std::thread::JoinHandle;

enum Request {
    CreateTopic(String, i32, mpsc::Sender<Result<(), String>>),
}

/// A running embedded Kafka. Stops when dropped.
pub struct EmbeddedKafka {
    bootstrap: String,
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedKafka {
    /// Starts a one-broker mock cluster.
    pub fn start() -> Result<EmbeddedKafka, String> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                // The mock cluster is not Send: it lives and dies here.
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot start the embedded Kafka: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                for request in rx {
                    match request {
                        Request::CreateTopic(name, partitions, reply) => {
                            let _ = reply.send(
                                cluster
                                    .create_topic(&name, partitions, 1)
                                    .map_err(|e| e.to_string()),
                            );
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| "the embedded Kafka thread died".to_string())??;
        Ok(EmbeddedKafka {
            bootstrap,
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic (an existing one is left as it is).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.requests
            .as_ref()
            .ok_or("the embedded Kafka is stopped")?
            .send(Request::CreateTopic(name.to_owned(), partitions, tx))
            .map_err(|_| "the embedded Kafka is stopped".to_string())?;
        rx.recv()
            .map_err(|_| "the embedded Kafka is stopped".to_string())?
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
