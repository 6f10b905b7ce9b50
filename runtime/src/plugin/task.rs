//! One task's sandbox and the typed calls into it.

use super::bindings::exports::tributary::connector::{
    sink_connector as wit_sink, source_connector as wit_source,
};
use super::bindings::tributary::connector::types as wit;
use super::engine::PluginEngine;
use super::state::{MemoryLimit, TaskState, TaskTag};
use crate::config::{AllowedPaths, Grant};
use crate::contract::{
    self, JsonMap, PartitionOffset, Payloads, PutResult, Scalar, SinkBatch, SourceBatch, TaskError,
};
use crate::metrics::TaskMetrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{InstancePre, ResourceAny};
use wasmtime::{Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Why a call into a task did not give a result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error; the instance is still usable.
    #[error("{0}")]
    Guest(TaskError),
    /// The instance is gone (trap, deadline, memory limit): the reason.
    #[error("{0}")]
    Failed(String),
}

/// How a task's sandbox is set up.
#[derive(Clone, Debug)]
pub struct TaskSandbox {
    pub connector: String,
    pub task: u32,
    /// Directories visible to the guest, at their host paths.
    pub grants: Vec<Grant>,
    /// Where grants may lie (`file.allowed.paths`), for a connector created
    /// over REST; `None`: a connector file given at start, not limited.
    pub allowed: Option<AllowedPaths>,
    pub memory_max_bytes: u64,
    pub call_timeout: Duration,
    pub metrics: Arc<TaskMetrics>,
    /// The connector's database connections.
    pub databases: Arc<crate::sql::Databases>,
    /// The connector's object stores.
    pub stores: Arc<crate::blob::Stores>,
    /// The task's stop flag, for host calls that wait (renewing
    /// credentials) to give up when the task stops.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl TaskSandbox {
    /// A sandbox for connector-level calls (describe, validate,
    /// task-configs): no directories, default limits.
    pub fn for_connector(connector: &str) -> TaskSandbox {
        TaskSandbox {
            connector: connector.to_owned(),
            task: 0,
            grants: Vec::new(),
            allowed: None,
            memory_max_bytes: 256 << 20,
            call_timeout: Duration::from_secs(10),
            metrics: Arc::default(),
            databases: Arc::default(),
            stores: Arc::default(),
            stop: Arc::default(),
        }
    }
}

/// The directories to open for the guest, as (host directory, path the
/// guest sees, writable). With `allowed`, each is checked again here, with
/// `..` and links resolved, and the directory opened is the resolved one:
/// a grant that passed when its connector was created and points elsewhere
/// now (a link changed under it) is refused.
fn preopens(
    grants: &[Grant],
    allowed: Option<&AllowedPaths>,
) -> anyhow::Result<Vec<(std::path::PathBuf, String, bool)>> {
    grants
        .iter()
        .map(|grant| {
            let guest = grant
                .dir
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("path {} is not UTF-8", grant.dir.display()))?
                .to_owned();
            let host = match allowed {
                Some(allowed) => allowed
                    .check(&grant.dir)
                    .map_err(|e| anyhow::anyhow!("cannot grant directory: {e}"))?,
                None => grant.dir.clone(),
            };
            Ok((host, guest, grant.writable))
        })
        .collect()
}

/// A live instance of a plugin: a store with its limits and deadline.
pub(super) struct Sandbox {
    pub store: Store<TaskState>,
    ticks: u64,
    timeout: Duration,
}

impl Sandbox {
    pub fn new(
        engine: &PluginEngine,
        pre: &InstancePre<TaskState>,
        spec: &TaskSandbox,
    ) -> anyhow::Result<(Sandbox, wasmtime::component::Instance)> {
        let stderr = MemoryOutputPipe::new(64 << 10);
        let mut wasi = WasiCtxBuilder::new();
        // A task runs on its own thread and calls its guest synchronously:
        // file I/O on that thread, not handed to a thread pool and waited
        // for (what that cost a file source: docs/benchmarks.md, "File
        // reads on the task thread").
        wasi.stderr(stderr.clone())
            .allow_blocking_current_thread(true)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (host, guest, writable) in preopens(&spec.grants, spec.allowed.as_ref())? {
            let perms = if writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&host, &guest, perms)
                .map_err(|e| anyhow::anyhow!("cannot grant directory {}: {e}", host.display()))?;
        }
        let state = TaskState {
            wasi: wasi.build(),
            table: Default::default(),
            limit: MemoryLimit {
                max_bytes: spec.memory_max_bytes,
                exceeded: None,
            },
            tag: TaskTag {
                connector: spec.connector.clone(),
                task: spec.task,
            },
            metrics: spec.metrics.clone(),
            stderr,
            databases: spec.databases.clone(),
            stores: spec.stores.clone(),
            stop: spec.stop.clone(),
            host_wait_ticks: 0,
        };
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|s| &mut s.limit);
        let ticks = PluginEngine::ticks(spec.call_timeout);
        store.set_epoch_deadline(ticks);
        // Time the guest spent waiting in host calls does not count: the
        // deadline moves back by that much; only the guest's own time traps.
        store.epoch_deadline_callback(|mut ctx| {
            match std::mem::take(&mut ctx.data_mut().host_wait_ticks) {
                0 => Err(Trap::Interrupt.into()),
                extra => Ok(wasmtime::UpdateDeadline::Continue(extra)),
            }
        });
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| anyhow::anyhow!("cannot start the plugin: {e:#}"))?;
        Ok((
            Sandbox {
                store,
                ticks,
                timeout: spec.call_timeout,
            },
            instance,
        ))
    }

    /// Arms the deadline for the next call.
    pub fn arm(&mut self) -> &mut Store<TaskState> {
        self.store.data_mut().host_wait_ticks = 0;
        self.store.set_epoch_deadline(self.ticks);
        &mut self.store
    }

    /// Turns a wasmtime error of `call` into a reason a user can act on.
    pub fn failure(&mut self, call: &str, err: wasmtime::Error) -> CallError {
        let state = self.store.data();
        if let Some(wanted) = state.limit.exceeded {
            return CallError::Failed(format!(
                "exceeded its memory limit of {} MiB in `{call}` (it asked for {} MiB; raise task.memory.max.mb if that is expected)",
                state.limit.max_bytes >> 20,
                wanted >> 20
            ));
        }
        if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
            return CallError::Failed(format!(
                "did not return from `{call}` within {} ms (task.call.timeout.ms) and was stopped",
                self.timeout.as_millis()
            ));
        }
        let stderr = String::from_utf8_lossy(&state.stderr.contents()).to_string();
        let said: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = said[said.len().saturating_sub(3)..].join(" | ");
        let trap = err
            .downcast_ref::<Trap>()
            .map(|t| t.to_string())
            .unwrap_or_else(|| format!("{:#}", err.root_cause()));
        if tail.is_empty() {
            CallError::Failed(format!("crashed in `{call}`: {trap}"))
        } else {
            CallError::Failed(format!(
                "crashed in `{call}`: {trap}; plugin stderr: {tail}"
            ))
        }
    }
}

/// A source task running in its sandbox.
pub struct SourceInstance {
    sandbox: Sandbox,
    guest: wit_source::Guest,
    task: ResourceAny,
    dead: Option<String>,
}

impl SourceInstance {
    pub(super) fn open(
        sandbox: Sandbox,
        guest: wit_source::Guest,
        config: &Vec<(String, String)>,
        offsets: &[PartitionOffset],
    ) -> Result<SourceInstance, CallError> {
        let mut sandbox = sandbox;
        let offsets: Vec<wit_source::PartitionOffset> =
            offsets.iter().map(partition_offset_to_wit).collect();
        match guest
            .source_task()
            .call_open(sandbox.arm(), config, &offsets)
        {
            Ok(Ok(task)) => Ok(SourceInstance {
                sandbox,
                guest,
                task,
                dead: None,
            }),
            Ok(Err(e)) => Err(CallError::Guest(task_error(e))),
            Err(e) => Err(sandbox.failure("open", e)),
        }
    }

    fn alive(&self) -> Result<(), CallError> {
        match &self.dead {
            Some(reason) => Err(CallError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, call: &str, err: wasmtime::Error) -> CallError {
        let e = self.sandbox.failure(call, err);
        self.dead = Some(e.to_string());
        e
    }

    /// Asks for up to `max_records` records.
    pub fn poll(&mut self, max_records: u32) -> Result<SourceBatch, CallError> {
        self.alive()?;
        let store = self.sandbox.arm();
        match self
            .guest
            .source_task()
            .call_poll(store, self.task, max_records)
        {
            Ok(Ok(batch)) => {
                let batch = source_batch_from_wit(batch);
                match batch.check() {
                    Ok(()) => Ok(batch),
                    Err(e) => {
                        let reason = format!("`poll` returned a malformed batch: {e}");
                        self.dead = Some(reason.clone());
                        Err(CallError::Failed(reason))
                    }
                }
            }
            Ok(Err(e)) => Err(CallError::Guest(task_error(e))),
            Err(e) => Err(self.fail("poll", e)),
        }
    }

    /// Tells the task these offsets are durable.
    pub fn commit(&mut self, offsets: &[PartitionOffset]) -> Result<(), CallError> {
        self.alive()?;
        let offsets: Vec<wit_source::PartitionOffset> =
            offsets.iter().map(partition_offset_to_wit).collect();
        let store = self.sandbox.arm();
        self.guest
            .source_task()
            .call_commit(store, self.task, &offsets)
            .map_err(|e| self.fail("commit", e))
    }

    /// Closes the task (when it is still alive) and drops the instance.
    pub fn close(mut self) {
        if self.dead.is_none() {
            let store = self.sandbox.arm();
            if let Err(e) = self.guest.source_task().call_close(&mut *store, self.task) {
                tracing::warn!(error = %self.sandbox.failure("close", e), "source task failed to close");
            } else {
                let _ = self.task.resource_drop(&mut self.sandbox.store);
            }
        }
    }
}

/// A sink task running in its sandbox.
pub struct SinkInstance {
    sandbox: Sandbox,
    guest: wit_sink::Guest,
    task: ResourceAny,
    dead: Option<String>,
}

impl SinkInstance {
    pub(super) fn open(
        sandbox: Sandbox,
        guest: wit_sink::Guest,
        config: &Vec<(String, String)>,
    ) -> Result<SinkInstance, CallError> {
        let mut sandbox = sandbox;
        match guest.sink_task().call_open(sandbox.arm(), config) {
            Ok(Ok(task)) => Ok(SinkInstance {
                sandbox,
                guest,
                task,
                dead: None,
            }),
            Ok(Err(e)) => Err(CallError::Guest(task_error(e))),
            Err(e) => Err(sandbox.failure("open", e)),
        }
    }

    fn alive(&self) -> Result<(), CallError> {
        match &self.dead {
            Some(reason) => Err(CallError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, call: &str, err: wasmtime::Error) -> CallError {
        let e = self.sandbox.failure(call, err);
        self.dead = Some(e.to_string());
        e
    }

    /// Hands a batch to the task: its columns are moved into the call and
    /// back, not copied. Returns one result per record, or why the call
    /// failed.
    pub fn put(&mut self, batch: &mut SinkBatch) -> Result<Vec<PutResult>, CallError> {
        self.alive()?;
        let wit_batch = sink_batch_to_wit(batch);
        let outcome = self
            .guest
            .sink_task()
            .call_put(self.sandbox.arm(), self.task, &wit_batch);
        restore_sink_batch(batch, wit_batch);
        let results = match outcome {
            Ok(Ok(results)) => results,
            Ok(Err(e)) => return Err(CallError::Guest(task_error(e))),
            Err(e) => return Err(self.fail("put", e)),
        };
        let count = batch.len();
        if results.len() != count {
            let reason = format!(
                "`put` returned {} results for {count} records (the contract wants one each)",
                results.len()
            );
            self.dead = Some(reason.clone());
            return Err(CallError::Failed(reason));
        }
        Ok(results
            .into_iter()
            .map(|r| match r {
                wit_sink::PutResult::Ok => PutResult::Ok,
                wit_sink::PutResult::Retriable(m) => PutResult::Retriable(m),
                wit_sink::PutResult::BadRecord(m) => PutResult::BadRecord(m),
            })
            .collect())
    }

    /// Makes accepted records durable. Returns the task's commit limits:
    /// per topic partition, the offset of its first accepted record that is
    /// not durable yet (the consumer offset must not be committed past it).
    /// Partitions not in the map are durable up to everything accepted.
    pub fn flush(&mut self) -> Result<BTreeMap<(String, i32), i64>, CallError> {
        self.alive()?;
        let store = self.sandbox.arm();
        match self.guest.sink_task().call_flush(store, self.task) {
            Ok(Ok(limits)) => {
                let mut map = BTreeMap::new();
                for l in limits {
                    // Listed twice: the lower limit holds.
                    let e = map.entry((l.topic, l.partition)).or_insert(l.offset);
                    *e = (*e).min(l.offset);
                }
                Ok(map)
            }
            Ok(Err(e)) => Err(CallError::Guest(task_error(e))),
            Err(e) => Err(self.fail("flush", e)),
        }
    }

    /// Closes the task (when it is still alive) and drops the instance.
    pub fn close(mut self) {
        if self.dead.is_none() {
            let store = self.sandbox.arm();
            if let Err(e) = self.guest.sink_task().call_close(&mut *store, self.task) {
                tracing::warn!(error = %self.sandbox.failure("close", e), "sink task failed to close");
            } else {
                let _ = self.task.resource_drop(&mut self.sandbox.store);
            }
        }
    }
}

fn task_error(e: wit::TaskError) -> TaskError {
    match e {
        wit::TaskError::Retriable(m) => TaskError::Retriable(m),
        wit::TaskError::Fatal(m) => TaskError::Fatal(m),
    }
}

fn json_map_from_wit(map: Vec<(String, wit::Scalar)>) -> JsonMap {
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                wit::Scalar::Null => Scalar::Null,
                wit::Scalar::Boolean(b) => Scalar::Bool(b),
                wit::Scalar::Integer(i) => Scalar::Int(i),
                wit::Scalar::Float(f) => Scalar::Float(f),
                wit::Scalar::Text(s) => Scalar::Text(s),
            };
            (k, v)
        })
        .collect()
}

fn json_map_to_wit(map: &JsonMap) -> Vec<(String, wit::Scalar)> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Null => wit::Scalar::Null,
                Scalar::Bool(b) => wit::Scalar::Boolean(*b),
                Scalar::Int(i) => wit::Scalar::Integer(*i),
                Scalar::Float(f) => wit::Scalar::Float(*f),
                Scalar::Text(s) => wit::Scalar::Text(s.clone()),
            };
            (k.clone(), v)
        })
        .collect()
}

fn partition_offset_to_wit(po: &PartitionOffset) -> wit_source::PartitionOffset {
    wit_source::PartitionOffset {
        partition: json_map_to_wit(&po.partition),
        offset: json_map_to_wit(&po.offset),
    }
}

fn header_from_wit(h: wit::Header) -> contract::Header {
    contract::Header {
        key: h.key,
        value: h.value,
    }
}

fn source_batch_from_wit(batch: wit_source::SourceBatch) -> SourceBatch {
    SourceBatch {
        topics: batch.topics,
        partitions: batch
            .partitions
            .into_iter()
            .map(json_map_from_wit)
            .collect(),
        topic: batch.topic,
        partition: batch.partition,
        timestamp: batch.timestamp,
        payloads: Payloads {
            data: batch.data,
            spans: batch.spans,
            headers: batch.headers.into_iter().map(header_from_wit).collect(),
            header_records: batch.header_records,
        },
        offsets: batch
            .offsets
            .into_iter()
            .map(|o| (o.record, json_map_from_wit(o.offset)))
            .collect(),
    }
}

/// Moves the columns of `batch` into the guest's type, without copying;
/// [`restore_sink_batch`] moves them back.
fn sink_batch_to_wit(batch: &mut SinkBatch) -> wit_sink::SinkBatch {
    use std::mem::take;
    let payloads = take(&mut batch.payloads);
    wit_sink::SinkBatch {
        topics: take(&mut batch.topics),
        topic: take(&mut batch.topic),
        partition: take(&mut batch.partition),
        offset: take(&mut batch.offset),
        timestamp: take(&mut batch.timestamp),
        data: payloads.data,
        spans: payloads.spans,
        headers: payloads
            .headers
            .into_iter()
            .map(|h| wit::Header {
                key: h.key,
                value: h.value,
            })
            .collect(),
        header_records: payloads.header_records,
    }
}

fn restore_sink_batch(batch: &mut SinkBatch, wit_batch: wit_sink::SinkBatch) {
    *batch = SinkBatch {
        topics: wit_batch.topics,
        topic: wit_batch.topic,
        partition: wit_batch.partition,
        offset: wit_batch.offset,
        timestamp: wit_batch.timestamp,
        payloads: Payloads {
            data: wit_batch.data,
            spans: wit_batch.spans,
            headers: wit_batch.headers.into_iter().map(header_from_wit).collect(),
            header_records: wit_batch.header_records,
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_of_a_rest_connector_are_checked_again_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let allowed_dir = dir.path().join("allowed");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&allowed_dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let link = allowed_dir.join("data");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let grant = |d: &std::path::Path| Grant {
            dir: d.to_path_buf(),
            writable: true,
        };
        let allowed = AllowedPaths::new(
            std::slice::from_ref(&allowed_dir),
            crate::config::FILE_ALLOWED_PATHS,
        );
        // Inside: the resolved directory is opened, at the path the guest
        // was given.
        let opened = preopens(&[grant(&allowed_dir)], Some(&allowed)).unwrap();
        assert_eq!(
            opened,
            vec![(
                allowed_dir.canonicalize().unwrap(),
                allowed_dir.display().to_string(),
                true
            )]
        );
        // A link out of the allowed directory, or `..`, is refused.
        for bad in [
            link.clone(),
            allowed_dir.join("../outside"),
            outside.clone(),
        ] {
            let e = preopens(&[grant(&bad)], Some(&allowed))
                .unwrap_err()
                .to_string();
            assert!(e.contains("`file.allowed.paths`"), "{}: {e}", bad.display());
        }
        // A connector file given at start is not limited.
        assert_eq!(preopens(&[grant(&link)], None).unwrap()[0].0, link);
    }

    #[test]
    fn a_source_batch_crosses_into_host_types_intact() {
        let wit_batch = wit_source::SourceBatch {
            topics: vec!["lines".into()],
            partitions: vec![vec![("filename".into(), wit::Scalar::Text("/in".into()))]],
            topic: vec![0, 0],
            partition: vec![0, 0],
            timestamp: vec![7, i64::MIN],
            data: b"kv".to_vec(),
            spans: vec![0, 1, 1, u32::MAX, 1, u32::MAX, 1, 1],
            headers: vec![wit::Header {
                key: "h".into(),
                value: None,
            }],
            header_records: vec![0],
            offsets: vec![wit_source::RecordOffset {
                record: 1,
                offset: vec![
                    ("position".into(), wit::Scalar::Integer(42)),
                    ("done".into(), wit::Scalar::Boolean(false)),
                    ("ratio".into(), wit::Scalar::Float(0.5)),
                    ("gone".into(), wit::Scalar::Null),
                ],
            }],
        };
        let batch = source_batch_from_wit(wit_batch);
        assert_eq!(batch.check(), Ok(()));
        assert_eq!(batch.topics, vec!["lines".to_owned()]);
        assert_eq!(
            batch.partitions[0].get("filename"),
            Some(&Scalar::Text("/in".into()))
        );
        let r = batch.get(0);
        assert_eq!((r.topic, r.partition, r.timestamp), ("lines", 0, Some(7)));
        assert_eq!(r.key, Some(&b"k"[..]));
        assert_eq!(r.value, None, "a tombstone stays a tombstone");
        assert_eq!(
            r.headers,
            [contract::Header {
                key: "h".into(),
                value: None
            }]
        );
        let r = batch.get(1);
        assert_eq!((r.key, r.value, r.timestamp), (None, Some(&b"v"[..]), None));
        assert!(r.headers.is_empty());
        assert_eq!(batch.offsets[0].0, 1);
        let offset = &batch.offsets[0].1;
        assert_eq!(offset.get("position"), Some(&Scalar::Int(42)));
        assert_eq!(offset.get("done"), Some(&Scalar::Bool(false)));
        assert_eq!(offset.get("ratio"), Some(&Scalar::Float(0.5)));
        assert_eq!(offset.get("gone"), Some(&Scalar::Null));
    }

    #[test]
    fn offsets_and_sink_records_round_trip_through_the_bindings() {
        let po = PartitionOffset {
            partition: [("table".to_owned(), Scalar::Text("t".into()))]
                .into_iter()
                .collect(),
            offset: [("id".to_owned(), Scalar::Int(-3))].into_iter().collect(),
        };
        let wit_po = partition_offset_to_wit(&po);
        assert_eq!(json_map_from_wit(wit_po.partition), po.partition);
        assert_eq!(json_map_from_wit(wit_po.offset), po.offset);

        let mut batch = SinkBatch::default();
        let record = contract::SinkRecord {
            topic: "t",
            partition: 3,
            offset: 99,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: None,
        };
        batch.push(record);
        batch.push_header("a", Some(b"b"));
        batch.push(contract::SinkRecord {
            topic: "u",
            key: Some(b"k"),
            value: None,
            ..record
        });
        let before = batch.clone();
        let wit_batch = sink_batch_to_wit(&mut batch);
        assert_eq!(wit_batch.topics, ["t", "u"]);
        assert_eq!(wit_batch.data, b"vk");
        assert_eq!(wit_batch.headers[0].key, "a");
        restore_sink_batch(&mut batch, wit_batch);
        assert_eq!(batch, before);
    }
}
