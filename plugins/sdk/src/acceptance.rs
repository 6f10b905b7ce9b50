//! Checks any connector against the contract's rules, from the
//! connector's own unit tests on the host (in the spirit of Conduit's
//! connector SDK acceptance tests): the worker relies on these rules, so a
//! connector that breaks one fails here, not in production.
//!
//! - [`description`]: a name the worker accepts, a summary, every key
//!   documented, no key declared twice, every default a value of its type;
//! - [`put`]: one put-result per record handed to `put`;
//! - [`source_resumes`]: a source task opened again with an offset it
//!   committed produces what followed that offset, and each batch carries
//!   the offset of its last record of every source partition.
//!
//! Each check panics with every rule it found broken, naming the key,
//! record or offset.

use crate::testing::{polled, Polled};
use crate::{
    json_get, Description, PartitionOffset, PutResult, SinkBatch, SinkTask, SourceTask, TaskError,
};

/// Checks a connector's description: name, version, summary, and every
/// key documented, declared once, with a default of its type.
pub fn description(d: &Description) {
    let mut problems = Vec::new();
    let name_ok = !d.name.is_empty()
        && d.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        problems.push(format!(
            "name {:?}: use lowercase letters, digits and `-`",
            d.name
        ));
    }
    if d.version.trim().is_empty() {
        problems.push("the version is empty".to_owned());
    }
    if d.summary.trim().is_empty() {
        problems.push("the summary is empty".to_owned());
    }
    for (i, key) in d.keys.iter().enumerate() {
        if key.name.trim().is_empty() {
            problems.push(format!("key #{i} has no name"));
        }
        if d.keys[..i].iter().any(|k| k.name == key.name) {
            problems.push(format!("key `{}` is declared twice", key.name));
        }
        if key.doc.trim().is_empty() {
            problems.push(format!("key `{}` has no doc", key.name));
        }
        if let Some(default) = &key.default {
            if let Err(why) = key.type_.check(default) {
                problems.push(format!("key `{}`: the default {why}", key.name));
            }
        }
    }
    if !problems.is_empty() {
        panic!(
            "description of `{}` breaks the contract:\n  {}",
            d.name,
            problems.join("\n  ")
        );
    }
}

/// Hands `batch` to `task.put` and checks it returned exactly one result
/// per record; returns the results.
pub fn put<T: SinkTask>(task: &mut T, batch: &SinkBatch) -> Result<Vec<PutResult>, TaskError> {
    let results = task.put(batch)?;
    assert_eq!(
        results.len(),
        batch.len(),
        "put returned {} results for {} records: the contract wants one per record, in order",
        results.len(),
        batch.len()
    );
    Ok(results)
}

/// Checks that a source resumes at the offset it committed: opens a task
/// with no offsets (`open(vec![])`) and polls up to `max_records` at a
/// time until it has at least `records` records (or polls return nothing),
/// commits the offset of a record in the middle, closes it, opens a new
/// task with that offset, and checks that it produces the records after
/// that one first. Every batch must carry the offset of its last record of
/// each source partition. Returns the records of the first task.
pub fn source_resumes<T: SourceTask>(
    mut open: impl FnMut(Vec<PartitionOffset>) -> Result<T, TaskError>,
    records: usize,
    max_records: u32,
) -> Vec<Polled> {
    assert!(records >= 2, "source_resumes needs at least two records");
    let mut first = open(Vec::new()).unwrap_or_else(|e| panic!("open with no offsets: {e}"));
    let seen = poll_until(&mut first, records, max_records);
    assert!(
        seen.len() >= records,
        "the source produced {} records, not the {records} the check needs",
        seen.len()
    );
    // The last record carrying an offset in the first half.
    let at = (0..seen.len() / 2 + 1)
        .rev()
        .find(|&i| seen[i].offset.is_some())
        .unwrap_or_else(|| {
            panic!(
                "no record in the first half of {} carries an offset",
                seen.len()
            )
        });
    let committed = PartitionOffset {
        partition: seen[at].partition.clone(),
        offset: seen[at].offset.clone().expect("found with an offset"),
    };
    first.commit(vec![committed.clone()]);
    first.close();

    let mut again = open(vec![committed.clone()])
        .unwrap_or_else(|e| panic!("open with offset {:?}: {e}", committed.offset));
    let wanted = &seen[at + 1..];
    let resumed = poll_until(&mut again, wanted.len(), max_records);
    again.close();
    let same_partition: Vec<&Polled> = resumed
        .iter()
        .filter(|r| r.partition == committed.partition)
        .collect();
    let expected: Vec<&Polled> = wanted
        .iter()
        .filter(|r| r.partition == committed.partition)
        .collect();
    let n = expected.len().min(same_partition.len());
    assert!(
        n > 0,
        "opened with offset {:?}, the source produced none of the {} records after it",
        committed.offset,
        expected.len()
    );
    for (i, (got, want)) in same_partition.iter().zip(&expected).take(n).enumerate() {
        assert!(
            got.key == want.key && got.value == want.value,
            "opened with offset {:?}, record {i} after it is {:?}, not {:?}: a source resumes just after its committed offset",
            committed.offset,
            got.value_text(),
            want.value_text()
        );
    }
    seen
}

/// Polls until `wanted` records came, or three polls in a row returned
/// none; checks each batch's offsets.
fn poll_until<T: SourceTask>(task: &mut T, wanted: usize, max_records: u32) -> Vec<Polled> {
    let mut seen = Vec::new();
    let mut empty = 0;
    while seen.len() < wanted && empty < 3 {
        let batch = task
            .poll(max_records)
            .unwrap_or_else(|e| panic!("poll: {e}"));
        assert!(
            batch.len() <= max_records as usize,
            "poll({max_records}) returned {} records",
            batch.len()
        );
        let records = polled(batch);
        if records.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for (i, r) in records.iter().enumerate() {
            let last_of_partition = !records[i + 1..].iter().any(|o| o.partition == r.partition);
            assert!(
                !last_of_partition || r.offset.is_some(),
                "record {i} of a batch is its last of partition {:?} but carries no offset",
                r.partition.iter().map(|(k, _)| k).collect::<Vec<_>>()
            );
        }
        seen.extend(records);
    }
    seen
}

/// The integer `key` of an offset map, for messages and checks.
pub fn offset_integer(offset: &crate::JsonMap, key: &str) -> Option<i64> {
    match json_get(offset, key) {
        Some(crate::Scalar::Integer(n)) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, Scalar, SourceBatch, SourceRecord};

    #[test]
    #[should_panic(expected = "key `b` has no doc")]
    fn an_undocumented_key_breaks_the_contract() {
        description(
            &Description::source("s", "1.0.0")
                .summary("x")
                .key(Key::string("a").doc("A."))
                .key(Key::string("b")),
        );
    }

    #[test]
    #[should_panic(expected = "key `n`: the default expects an integer")]
    fn a_default_of_the_wrong_type_breaks_the_contract() {
        description(
            &Description::sink("s", "1.0.0")
                .summary("x")
                .key(Key::integer("n").default("ten").doc("N.")),
        );
    }

    /// Counts from its offset: record `n` has value `n`.
    struct Counter(i64, bool);

    impl SourceTask for Counter {
        fn open(_: crate::Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError> {
            let at = offsets
                .first()
                .and_then(|o| offset_integer(&o.offset, "n"))
                .unwrap_or(0);
            Ok(Counter(at, false))
        }
        fn poll(&mut self, max: u32) -> Result<SourceBatch, TaskError> {
            let mut b = SourceBatch::new();
            let t = b.add_topic("t");
            let p = b.add_partition(vec![("p".into(), Scalar::Integer(0))]);
            for _ in 0..max.min(3) {
                let v = self.0.to_string();
                b.push(SourceRecord {
                    topic: t,
                    partition: p,
                    value: Some(v.as_bytes()),
                    ..SourceRecord::default()
                });
                // The buggy counter resumes at the record it committed.
                self.0 += 1;
                let next = if self.1 { self.0 - 1 } else { self.0 };
                b.set_offset(vec![("n".into(), Scalar::Integer(next))]);
            }
            Ok(b)
        }
    }

    #[test]
    fn a_source_that_resumes_after_its_offset_passes() {
        let open = |o| Counter::open(crate::Config::default(), o);
        let seen = source_resumes(open, 10, 4);
        assert!(seen.len() >= 10);
    }

    #[test]
    #[should_panic(expected = "a source resumes just after its committed offset")]
    fn a_source_that_repeats_its_committed_record_fails() {
        let open = |o| Counter::open(crate::Config::default(), o).map(|c| Counter(c.0, true));
        source_resumes(open, 10, 4);
    }
}
