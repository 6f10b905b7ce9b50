//! Where Kafka is.

use super::EmbeddedKafka;
use std::collections::HashSet;
use std::sync::Mutex;

/// The Kafka the worker talks to.
pub struct KafkaCluster {
    bootstrap: String,
    embedded: Option<EmbeddedKafka>,
    partitions: i32,
    created: Mutex<HashSet<String>>,
}

impl KafkaCluster {
    /// A configured cluster.
    pub fn external(bootstrap: &str) -> KafkaCluster {
        KafkaCluster { bootstrap: bootstrap.to_owned(), embedded: None, partitions: 1, created: Mutex::default() }
    }

    /// Starts the embedded cluster; its topics get `partitions` partitions.
    pub fn embedded(partitions: i32) -> Result<KafkaCluster, String> {
        let embedded = EmbeddedKafka::start()?;
        Ok(KafkaCluster {
            bootstrap: embedded.bootstrap_servers().to_owned(),
            embedded: Some(embedded),
            partitions,
            created: Mutex::default(),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// On the embedded cluster, creates `topic` before first use, with the
    /// configured partition count (the mock's auto-creation would pick 4,
    /// which reorders records without keys). A configured cluster creates
    /// topics by its own rules.
    pub fn ensure_topic(&self, topic: &str) -> Result<(), String> {
        let Some(embedded) = &self.embedded else { return Ok(()) };
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if created.contains(topic) {
            return Ok(());
        }
        embedded.create_topic(topic, self.partitions)?;
        created.insert(topic.to_owned());
        Ok(())
    }
}
