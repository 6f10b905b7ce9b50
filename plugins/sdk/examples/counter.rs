//! `counter`: a source that produces the numbers 0 to `count - 1` to a
//! topic, one record each, and resumes after the last committed number.
//! The guide (docs/plugins.md) shows this file.

use tributary_sdk::{info, json_get, Config, Description, Key, PartitionOffset, Scalar};
use tributary_sdk::{Source, SourceBatch, SourceRecord, SourceTask, TaskError};

pub struct Counter;
pub struct CounterTask {
    topic: String,
    count: i64,
    next: i64,
}

impl Source for Counter {
    type Task = CounterTask;
    fn describe() -> Description {
        Description::source("counter", env!("CARGO_PKG_VERSION"))
            .summary("Produces the numbers 0 to count - 1 to a topic, one record each.")
            .key(Key::string("topic").doc("The topic to produce to."))
            .key(
                Key::integer("count")
                    .default("100")
                    .doc("How many numbers to produce."),
            )
    }
}

impl SourceTask for CounterTask {
    fn open(config: Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError> {
        let topic: String = config.get("topic")?;
        let count: i64 = config.get("count")?;
        // One source partition, {"topic": <topic>}; its offset is {"next": <n>}.
        let next = offsets
            .iter()
            .filter(
                |o| matches!(json_get(&o.partition, "topic"), Some(Scalar::Text(t)) if *t == topic),
            )
            .find_map(|o| match json_get(&o.offset, "next") {
                Some(Scalar::Integer(n)) => Some(*n),
                _ => None,
            })
            .unwrap_or(0);
        info!("producing {next}..{count} to {topic}");
        Ok(CounterTask { topic, count, next })
    }

    fn poll(&mut self, max_records: u32) -> Result<SourceBatch, TaskError> {
        let end = self.count.min(self.next + i64::from(max_records));
        let mut batch = SourceBatch::new();
        // Topics and source partitions are listed once; records refer to them by index.
        let topic = batch.add_topic(&self.topic);
        let partition =
            batch.add_partition(vec![("topic".into(), Scalar::Text(self.topic.clone()))]);
        for n in self.next..end {
            let value = n.to_string();
            let record = SourceRecord {
                topic,
                partition,
                value: Some(value.as_bytes()),
                ..SourceRecord::default()
            };
            batch.push(record);
        }
        if end > self.next {
            batch.set_offset(vec![("next".into(), Scalar::Integer(end))]); // on the last record only
        }
        self.next = end;
        Ok(batch)
    }
}

tributary_sdk::export_source!(Counter);

/// Unit tests on the host: `cargo test -p tributary-sdk --example counter`.
#[cfg(test)]
mod tests {
    use super::*;
    use tributary_sdk::{acceptance, testing};

    #[test]
    fn counter_keeps_the_contract() {
        acceptance::description(&Counter::describe());
        let config = testing::config(&Counter::describe().keys, &[("topic", "numbers")]);
        let records =
            acceptance::source_resumes(|offsets| CounterTask::open(config.clone(), offsets), 10, 4);
        assert_eq!(records[9].value_text(), "9");
    }

    #[test]
    fn the_guide_shows_this_file() {
        let guide = include_str!("../../../docs/plugins.md");
        assert!(
            guide.contains(include_str!("counter.rs")),
            "docs/plugins.md must include plugins/sdk/examples/counter.rs as it is"
        );
    }
}
