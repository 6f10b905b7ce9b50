//! WASM boundary cost: a source task returns batches of 1,000 records of
//! 100 bytes; how long does one record take to cross into the host?
//!
//! `cargo bench -p tributary --bench boundary`. Results go to
//! docs/benchmarks.md. Measures whole `poll` calls: the guest building its
//! records, the canonical ABI lowering them into guest memory, wasmtime
//! lifting them into host values and the conversion into the worker's
//! record type.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::time::Instant;
use tributary::plugin::{PluginEngine, PluginRegistry, TaskSandbox};

const RECORDS: usize = 1_000_000;
const BATCH: u32 = 1_000;

fn main() {
    for every_record in [true, false] {
        measure(every_record);
    }
}

fn measure(offset_every_record: bool) {
    let plugins = common::Site::new(&["tributary_testkit"]);
    let cache = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(cache.path()).unwrap();
    let registry = PluginRegistry::load(&engine, &[plugins.path("plugins")]);
    let (plugin, _) = registry.find("testkit-source", None).unwrap();
    let config: Vec<(String, String)> = [
        ("mode", "generate"),
        ("topic", "bench"),
        ("records", &(RECORDS + 20 * BATCH as usize).to_string()),
        ("record.bytes", "100"),
        ("path", "/nowhere"),
        ("after", "0"),
        (
            "offset.every.record",
            if offset_every_record { "true" } else { "false" },
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut task = plugin
        .open_source(&TaskSandbox::for_connector("bench"), &config, &[])
        .unwrap();

    for _ in 0..20 {
        task.poll(BATCH).unwrap();
    }
    let start = Instant::now();
    let mut n = 0;
    let mut bytes = 0;
    while n < RECORDS {
        let batch = task.poll(BATCH).unwrap();
        assert_eq!(batch.len(), BATCH as usize);
        bytes += batch
            .records()
            .map(|r| r.value.map_or(0, <[u8]>::len))
            .sum::<usize>();
        n += batch.len();
    }
    let elapsed = start.elapsed();
    assert_eq!(bytes, RECORDS * 100);

    // Empty polls: the fixed cost of one call.
    let calls = 100_000;
    let start = Instant::now();
    for _ in 0..calls {
        assert!(task.poll(BATCH).unwrap().is_empty());
    }
    let per_call = start.elapsed();

    let offsets = if offset_every_record {
        "an offset on every record"
    } else {
        "an offset on the last record of each batch"
    };
    println!("records: {n} in batches of {BATCH}, 100-byte values, {offsets}");
    println!(
        "per record: {:.3} µs (including the guest building it)",
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "throughput: {:.0} records/s, {:.1} MB/s",
        n as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    println!(
        "empty poll: {:.2} µs per call",
        per_call.as_secs_f64() * 1e6 / calls as f64
    );
}
