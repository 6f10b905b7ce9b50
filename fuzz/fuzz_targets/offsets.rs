//! Arbitrary bytes as the worker reads source offsets back
//! (`tributary-offsets`): as a key and as a value of a record of the
//! offsets topic, and as lines of the standalone offset file. Anyone who
//! can write to the topic or edit the file decides these bytes.
//!
//! Reading must never panic, and what it accepts must survive being written
//! again: a partition read from a key gives, written again, key bytes that
//! read back to the same partition and are a fixed point (so the worker's
//! next write replaces the record it read instead of adding a second one
//! for the same partition); an offset file line read gives, written again,
//! a line that reads back to the same key and value; a file read whole
//! holds each partition once, under the key the worker writes for it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_offsets::{
    decode_offsets, json_map_from_value, offset_file_line, offset_key, offset_record_value,
    offset_value, parse_offset_file_line, parse_offset_key, read_offset_file,
};

fuzz_target!(|data: &[u8]| {
    // A record's value (any bytes).
    if let Some(text) = offset_record_value(data) {
        let json: serde_json::Value = serde_json::from_str(text).expect("accepted as JSON");
        assert!(json.is_object());
        if let Some(offset) = json_map_from_value(&json) {
            let written = offset_value(&offset);
            let again = json_map_from_value(&serde_json::from_str(&written).unwrap());
            assert_eq!(again.as_ref(), Some(&offset), "{text} → {written}");
            assert_eq!(offset_value(&offset), written);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A record's key (UTF-8, as the worker decodes keys).
    if let Some((name, partition)) = parse_offset_key(text) {
        let written = offset_key(&name, &partition);
        let (n, p) = parse_offset_key(&written)
            .unwrap_or_else(|| panic!("{text} written as {written} does not read back"));
        assert_eq!((&n, &p), (&name, &partition), "{text} → {written}");
        assert_eq!(offset_key(&n, &p), written, "not canonical: {text}");
    }
    // The lines of an offset file, each written again.
    for line in text.lines() {
        if let Some((key, value)) = parse_offset_file_line(line) {
            let written = offset_file_line(&key, &value);
            assert_eq!(
                parse_offset_file_line(&written),
                Some((key, value)),
                "{line} → {written}"
            );
        }
    }
    // The file read whole: one entry per partition, under the key the
    // worker writes for it.
    let (entries, _) = read_offset_file(text);
    let mut names: Vec<String> = entries
        .keys()
        .map(|k| parse_offset_key(k).expect("an offsets key").0)
        .collect();
    names.dedup();
    for name in names {
        let decoded = decode_offsets(&name, &entries);
        let mut keys: Vec<String> = decoded
            .iter()
            .map(|po| offset_key(&name, &po.partition))
            .collect();
        for key in &keys {
            assert!(entries.contains_key(key), "{key} is not canonical");
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), decoded.len(), "a partition twice: {decoded:?}");
    }
});
