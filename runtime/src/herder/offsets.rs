//! Reading and changing connectors' offsets: a source's in the offset
//! store, a sink's as its consumer group's committed offsets. Changes only
//! on a STOPPED connector, as in Kafka Connect.

use super::errors::{not_found, Error, Result};
use super::Herder;
use crate::config::ConnectorConfig;
use crate::contract::{json_map_from_value, ConnectorKind, JsonMap, PartitionOffset};
use crate::store::TargetState;

impl Herder {
    /// The config of a sink connector, `None` for a source.
    fn sink_config(&self, name: &str) -> Result<Option<ConnectorConfig>> {
        let state = self.lock();
        let m = state.get(name).ok_or_else(|| not_found(name))?;
        match &m.config {
            Ok(c) if c.description.kind == ConnectorKind::Sink => {
                if c.runtime.topics.is_empty() {
                    return Err(Error::BadRequest(format!(
                        "connector {name} consumes `topics.regex`: its offsets are served only for a `topics` list"
                    )));
                }
                Ok(Some(c.clone()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(Error::BadRequest(format!(
                "connector {name} has no valid config: {e}"
            ))),
        }
    }

    fn must_be_stopped(&self, name: &str) -> Result<()> {
        let state = self.lock();
        let m = state.get(name).ok_or_else(|| not_found(name))?;
        if m.target != TargetState::Stopped {
            return Err(Error::NotStopped(name.to_owned()));
        }
        Ok(())
    }

    /// A connector's committed offsets: a source's from the offset store,
    /// a sink's from its consumer group.
    pub fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>> {
        match self.sink_config(name)? {
            Some(c) => self.worker.sink_offsets(&c).map_err(Error::Internal),
            None => Ok(self.worker.offsets().load(name)),
        }
    }

    /// A sink's offsets edit: `(topic, partition) → offset`, `None` for the
    /// partition's earliest.
    fn sink_changes(
        list: &[serde_json::Value],
    ) -> Result<Vec<(crate::kafka::TopicPartition, Option<i64>)>> {
        let mut out = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let p = entry.get("partition");
            let topic = p
                .and_then(|p| p.get("kafka_topic"))
                .and_then(|t| t.as_str());
            let partition = p
                .and_then(|p| p.get("kafka_partition"))
                .and_then(|n| n.as_i64())
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| *n >= 0);
            let (Some(topic), Some(partition)) = (topic, partition) else {
                return Err(Error::BadRequest(format!(
                    "`offsets[{i}].partition`: a sink's partition is {{\"kafka_topic\": \"…\", \"kafka_partition\": 0}}"
                )));
            };
            let offset = match entry.get("offset") {
                None | Some(serde_json::Value::Null) => None,
                Some(o) => Some(
                    o.get("kafka_offset")
                        .and_then(|n| n.as_i64())
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| {
                            Error::BadRequest(format!(
                                "`offsets[{i}].offset`: a sink's offset is null or {{\"kafka_offset\": 0}} (not negative)"
                            ))
                        })?,
                ),
            };
            out.push(((topic.to_owned(), partition), offset));
        }
        Ok(out)
    }

    /// Writes (`Some`) or deletes (`None`) offsets of a stopped connector
    /// (a sink's `None`: the partition's earliest offset). `offsets` is Kafka Connect's body:
    /// `[{"partition":{…},"offset":{…}|null}]`.
    pub fn alter_offsets(&self, name: &str, offsets: &serde_json::Value) -> Result<()> {
        let _one = self.change();
        self.must_be_stopped(name)?;
        let sink = self.sink_config(name)?;
        let list = offsets.as_array().ok_or_else(|| {
            Error::BadRequest(
                "`offsets`: must be a list of {\"partition\": {…}, \"offset\": {…} or null}".into(),
            )
        })?;
        if list.is_empty() {
            return Err(Error::BadRequest(
                "`offsets`: the list of offsets to alter is empty".into(),
            ));
        }
        if let Some(c) = sink {
            let changes = Herder::sink_changes(list)?;
            self.worker
                .set_sink_offsets(&c, &changes)
                .map_err(Error::Internal)?;
            tracing::info!(
                connector = name,
                partitions = changes.len(),
                "sink offsets altered"
            );
            return Ok(());
        }
        let mut write = Vec::new();
        let mut delete: Vec<JsonMap> = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let partition = entry
                .get("partition")
                .and_then(json_map_from_value)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "`offsets[{i}].partition`: must be an object of plain values (strings, numbers, booleans)"
                    ))
                })?;
            match entry.get("offset") {
                None | Some(serde_json::Value::Null) => delete.push(partition),
                Some(v) => {
                    let offset = json_map_from_value(v).ok_or_else(|| {
                        Error::BadRequest(format!(
                            "`offsets[{i}].offset`: must be null or an object of plain values (strings, numbers, booleans)"
                        ))
                    })?;
                    write.push(PartitionOffset { partition, offset });
                }
            }
        }
        let store = self.worker.offsets();
        if !write.is_empty() {
            store.write(name, &write).map_err(Error::Internal)?;
        }
        if !delete.is_empty() {
            store.delete(name, &delete).map_err(Error::Internal)?;
        }
        tracing::info!(
            connector = name,
            written = write.len(),
            deleted = delete.len(),
            "offsets altered"
        );
        Ok(())
    }

    /// Deletes every offset of a stopped source connector; moves a stopped
    /// sink's consumer group to the earliest offset of every partition.
    pub fn reset_offsets(&self, name: &str) -> Result<()> {
        let _one = self.change();
        self.must_be_stopped(name)?;
        if let Some(c) = self.sink_config(name)? {
            // Every partition back to its earliest offset.
            let committed = self.worker.sink_offsets(&c).map_err(Error::Internal)?;
            let changes: Vec<_> = committed
                .iter()
                .filter_map(|po| {
                    let topic = match po.partition.get("kafka_topic")? {
                        crate::contract::Scalar::Text(t) => t.clone(),
                        _ => return None,
                    };
                    let partition = match po.partition.get("kafka_partition")? {
                        crate::contract::Scalar::Int(n) => *n as i32,
                        _ => return None,
                    };
                    Some(((topic, partition), None))
                })
                .collect();
            self.worker
                .set_sink_offsets(&c, &changes)
                .map_err(Error::Internal)?;
            tracing::info!(
                connector = name,
                partitions = changes.len(),
                "sink offsets reset"
            );
            return Ok(());
        }
        let store = self.worker.offsets();
        let partitions: Vec<JsonMap> = store.load(name).into_iter().map(|p| p.partition).collect();
        if !partitions.is_empty() {
            store.delete(name, &partitions).map_err(Error::Internal)?;
        }
        tracing::info!(
            connector = name,
            partitions = partitions.len(),
            "offsets reset"
        );
        Ok(())
    }
}
