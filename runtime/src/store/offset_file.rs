//! Offsets in a local file, like Kafka Connect's standalone mode
//! (`offset.storage.file.filename`). One JSON object per line:
//! `{"key":"[\"c\",{…}]","value":"{…}"}`, rewritten whole and renamed into
//! place on every write, after an fsync.

use super::offsets::{
    decode_offsets, offset_file_line, offset_key, offset_value, read_offset_file, OffsetStore,
};
use crate::contract::{JsonMap, PartitionOffset};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A file-backed offset store.
pub struct FileOffsetStore {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, String>>,
}

impl FileOffsetStore {
    /// Opens (or starts) the file. A line that cannot be read is logged
    /// with its number and skipped; keys are kept in their canonical form.
    pub fn open(path: &Path) -> Result<FileOffsetStore, String> {
        let entries = match std::fs::read_to_string(path) {
            Ok(text) => {
                let (entries, skipped) = read_offset_file(&text);
                for line in skipped {
                    tracing::warn!(file = %path.display(), line, "skipping an offset line that is not {{\"key\":…,\"value\":…}} with a [\"connector\",{{…}}] key");
                }
                entries
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read offset file {}: {e}", path.display())),
        };
        Ok(FileOffsetStore {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    fn persist(&self, entries: &BTreeMap<String, String>) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for (k, v) in entries {
            out.write_all(offset_file_line(k, v).as_bytes())?;
            out.write_all(b"\n")?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl OffsetStore for FileOffsetStore {
    fn load(&self, connector: &str) -> Vec<PartitionOffset> {
        decode_offsets(
            connector,
            &self.entries.lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    fn write(&self, connector: &str, offsets: &[PartitionOffset]) -> Result<(), String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = entries.clone();
        for po in offsets {
            next.insert(
                offset_key(connector, &po.partition),
                offset_value(&po.offset),
            );
        }
        self.persist(&next)
            .map_err(|e| format!("cannot write offset file {}: {e}", self.path.display()))?;
        *entries = next;
        Ok(())
    }

    fn delete(&self, connector: &str, partitions: &[JsonMap]) -> Result<(), String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = entries.clone();
        for p in partitions {
            next.remove(&offset_key(connector, p));
        }
        self.persist(&next)
            .map_err(|e| format!("cannot write offset file {}: {e}", self.path.display()))?;
        *entries = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Scalar;

    #[test]
    fn offsets_survive_a_reopen_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.jsonl");
        let p: JsonMap = [("filename".to_owned(), Scalar::Text("/in".into()))]
            .into_iter()
            .collect();
        let po = PartitionOffset {
            partition: p,
            offset: [("position".to_owned(), Scalar::Int(99))]
                .into_iter()
                .collect(),
        };
        FileOffsetStore::open(&path)
            .unwrap()
            .write("c", std::slice::from_ref(&po))
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"key\":\"[\\\"c\\\",{\\\"filename\\\":\\\"/in\\\"}]\",\"value\":\"{\\\"position\\\":99}\"}\n");
        text.push_str("garbage\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(FileOffsetStore::open(&path).unwrap().load("c"), vec![po]);
    }
}
