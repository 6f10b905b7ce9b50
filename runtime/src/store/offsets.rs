//! Where source offsets are kept, in Kafka Connect's format: the key is the
//! JSON `["<connector>",{<source partition>}]`, the value the JSON offset
//! map, both serialised canonically (sorted keys, no whitespace) so one
//! partition always gives the same key bytes. The codec lives in the crate
//! `tributary-offsets` (no Kafka in it, so the fuzz target `offsets` builds
//! it alone).
//!
//! A store's `write` returns only once the offsets are durable; the worker
//! tells a task its offsets are committed only after that.

use crate::contract::{JsonMap, PartitionOffset};
use std::collections::BTreeMap;
use std::sync::Mutex;
pub use tributary_offsets::{
    canonical_offset_key, decode_offsets, offset_file_line, offset_key, offset_record_value,
    offset_value, parse_offset_key, read_offset_file,
};

/// Durable storage of source offsets.
pub trait OffsetStore: Send + Sync {
    /// The last durable offsets of every partition of `connector`.
    fn load(&self, connector: &str) -> Vec<PartitionOffset>;
    /// Makes `offsets` durable; returns only when they are.
    fn write(&self, connector: &str, offsets: &[PartitionOffset]) -> Result<(), String>;
    /// Forgets the offsets of these partitions of `connector` (Kafka
    /// Connect's null value); returns only when that is durable.
    fn delete(&self, connector: &str, partitions: &[JsonMap]) -> Result<(), String>;
}

/// Offsets in memory: lost when the worker stops. With the embedded Kafka,
/// whose records are lost with them.
#[derive(Default)]
pub struct MemoryOffsetStore {
    entries: Mutex<BTreeMap<String, String>>,
}

impl OffsetStore for MemoryOffsetStore {
    fn load(&self, connector: &str) -> Vec<PartitionOffset> {
        decode_offsets(
            connector,
            &self.entries.lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    fn write(&self, connector: &str, offsets: &[PartitionOffset]) -> Result<(), String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for po in offsets {
            entries.insert(
                offset_key(connector, &po.partition),
                offset_value(&po.offset),
            );
        }
        Ok(())
    }

    fn delete(&self, connector: &str, partitions: &[JsonMap]) -> Result<(), String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for p in partitions {
            entries.remove(&offset_key(connector, p));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Scalar;

    #[test]
    fn keys_are_canonical_whatever_the_order() {
        let a: JsonMap = [
            ("table".to_owned(), Scalar::Text("t".into())),
            ("db".to_owned(), Scalar::Text("d".into())),
        ]
        .into_iter()
        .collect();
        let b: JsonMap = [
            ("db".to_owned(), Scalar::Text("d".into())),
            ("table".to_owned(), Scalar::Text("t".into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(offset_key("c", &a), r#"["c",{"db":"d","table":"t"}]"#);
        assert_eq!(offset_key("c", &a), offset_key("c", &b));
        let off: JsonMap = [("position".to_owned(), Scalar::Int(42))]
            .into_iter()
            .collect();
        assert_eq!(offset_value(&off), r#"{"position":42}"#);
    }

    #[test]
    fn kafka_connect_keys_parse() {
        let (name, partition) =
            parse_offset_key(r#"["local-file-source",{"filename":"/tmp/in.txt"}]"#).unwrap();
        assert_eq!(name, "local-file-source");
        assert_eq!(
            partition.get("filename"),
            Some(&Scalar::Text("/tmp/in.txt".into()))
        );
        assert!(parse_offset_key("not json").is_none());
        assert!(parse_offset_key(r#"["c",{"nested":{"x":1}}]"#).is_none());
        assert_eq!(
            offset_record_value(br#"{"position":7}"#),
            Some(r#"{"position":7}"#)
        );
        for bad in [&b"[1]"[..], b"7", b"not json", b"\xff"] {
            assert_eq!(offset_record_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_store_keeps_the_latest_per_partition() {
        let store = MemoryOffsetStore::default();
        let p: JsonMap = [("f".to_owned(), Scalar::Text("a".into()))]
            .into_iter()
            .collect();
        let at = |n| PartitionOffset {
            partition: p.clone(),
            offset: [("position".to_owned(), Scalar::Int(n))]
                .into_iter()
                .collect(),
        };
        store.write("c", &[at(1)]).unwrap();
        store.write("c", &[at(7)]).unwrap();
        store.write("other", &[at(3)]).unwrap();
        assert_eq!(store.load("c"), vec![at(7)]);
        store.delete("c", std::slice::from_ref(&p)).unwrap();
        assert_eq!(store.load("c"), vec![]);
        assert_eq!(
            store.load("other"),
            vec![at(3)],
            "other connectors keep theirs"
        );
    }
}
