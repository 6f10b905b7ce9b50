//! The plugins a worker can run, found in `plugin.path`.

use super::bindings::exports::tributary::connector::{
    sink_connector as wit_sink, source_connector as wit_source,
};
use super::bindings::tributary::connector::types as wit;
use super::bindings::Plugin as PluginWorld;
use super::engine::{PluginEngine, CONTRACT_VERSION};
use super::state::TaskState;
use super::task::{CallError, Sandbox, SinkInstance, SourceInstance, TaskSandbox};
use crate::config::{Catalog, CONNECTOR_RUNTIME_KEYS};
use crate::contract::{ConfigIssue, ConnectorKind, Description, KeySpec, KeyType, PartitionOffset};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{HasSelf, InstancePre, Linker};

const PACKAGE: &str = "tributary:connector";

/// A plugin file that was not loaded, and why.
#[derive(Clone, Debug)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: String,
}

/// A loaded plugin: one component, providing a source, a sink or both.
pub struct Plugin {
    pub path: PathBuf,
    /// What it provides, one description per connector.
    pub descriptions: Vec<Description>,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    engine: PluginEngine,
    pre: InstancePre<TaskState>,
    source: Option<wit_source::GuestIndices>,
    sink: Option<wit_sink::GuestIndices>,
}

impl Plugin {
    /// A new sandbox with this plugin's source connector loaded in it.
    fn source_guest(&self, spec: &TaskSandbox) -> Result<(Sandbox, wit_source::Guest), CallError> {
        let indices = self.source.as_ref().ok_or_else(|| self.lacks("source"))?;
        let (mut sandbox, instance) = self.sandbox(spec)?;
        let guest = indices
            .load(&mut sandbox.store, &instance)
            .map_err(|e| CallError::Failed(mismatch(e)))?;
        Ok((sandbox, guest))
    }

    /// A new sandbox with this plugin's sink connector loaded in it.
    fn sink_guest(&self, spec: &TaskSandbox) -> Result<(Sandbox, wit_sink::Guest), CallError> {
        let indices = self.sink.as_ref().ok_or_else(|| self.lacks("sink"))?;
        let (mut sandbox, instance) = self.sandbox(spec)?;
        let guest = indices
            .load(&mut sandbox.store, &instance)
            .map_err(|e| CallError::Failed(mismatch(e)))?;
        Ok((sandbox, guest))
    }

    fn sandbox(
        &self,
        spec: &TaskSandbox,
    ) -> Result<(Sandbox, wasmtime::component::Instance), CallError> {
        Sandbox::new(&self.engine, &self.pre, spec).map_err(|e| CallError::Failed(format!("{e:#}")))
    }

    fn lacks(&self, kind: &str) -> CallError {
        CallError::Failed(format!(
            "{} provides no {kind} connector",
            self.path.display()
        ))
    }

    /// One connector-level call (`describe`, `validate`, `task-configs`) to
    /// the source connector, in a throwaway sandbox.
    fn with_source<R>(
        &self,
        spec: &TaskSandbox,
        call: &str,
        f: impl FnOnce(&wit_source::Guest, &mut wasmtime::Store<TaskState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let (mut sandbox, guest) = self.source_guest(spec)?;
        f(&guest, sandbox.arm()).map_err(|e| sandbox.failure(call, e))
    }

    /// The same for the sink connector.
    fn with_sink<R>(
        &self,
        spec: &TaskSandbox,
        call: &str,
        f: impl FnOnce(&wit_sink::Guest, &mut wasmtime::Store<TaskState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let (mut sandbox, guest) = self.sink_guest(spec)?;
        f(&guest, sandbox.arm()).map_err(|e| sandbox.failure(call, e))
    }

    /// Runs the connector's `validate`.
    pub fn validate(
        &self,
        kind: ConnectorKind,
        config: &Vec<(String, String)>,
    ) -> Result<Vec<ConfigIssue>, CallError> {
        let spec = TaskSandbox::for_connector("validate");
        let issues = match kind {
            ConnectorKind::Source => {
                self.with_source(&spec, "validate", |g, s| g.call_validate(s, config))?
            }
            ConnectorKind::Sink => {
                self.with_sink(&spec, "validate", |g, s| g.call_validate(s, config))?
            }
        };
        Ok(issues
            .into_iter()
            .map(|i| ConfigIssue {
                key: i.key,
                message: i.message,
            })
            .collect())
    }

    /// Runs the connector's `task-configs`.
    pub fn task_configs(
        &self,
        kind: ConnectorKind,
        connector: &str,
        config: &Vec<(String, String)>,
        max_tasks: u32,
    ) -> Result<Vec<Vec<(String, String)>>, CallError> {
        let spec = TaskSandbox::for_connector(connector);
        let configs = match kind {
            ConnectorKind::Source => self.with_source(&spec, "task-configs", |g, s| {
                g.call_task_configs(s, config, max_tasks)
            })?,
            ConnectorKind::Sink => self.with_sink(&spec, "task-configs", |g, s| {
                g.call_task_configs(s, config, max_tasks)
            })?,
        };
        let mut configs =
            configs.map_err(|e| CallError::Guest(crate::contract::TaskError::Fatal(e)))?;
        if configs.len() > max_tasks as usize {
            tracing::warn!(
                connector,
                asked = max_tasks,
                got = configs.len(),
                "plugin returned more task configs than tasks.max; using the first ones"
            );
            configs.truncate(max_tasks as usize);
        }
        Ok(configs)
    }

    /// Opens a source task in a new sandbox.
    pub fn open_source(
        &self,
        spec: &TaskSandbox,
        config: &Vec<(String, String)>,
        offsets: &[PartitionOffset],
    ) -> Result<SourceInstance, CallError> {
        let (sandbox, guest) = self.source_guest(spec)?;
        SourceInstance::open(sandbox, guest, config, offsets)
    }

    /// Opens a sink task in a new sandbox.
    pub fn open_sink(
        &self,
        spec: &TaskSandbox,
        config: &Vec<(String, String)>,
    ) -> Result<SinkInstance, CallError> {
        let (sandbox, guest) = self.sink_guest(spec)?;
        SinkInstance::open(sandbox, guest, config)
    }
}

/// Every plugin found, and every file refused.
#[derive(Default)]
pub struct PluginRegistry {
    pub plugins: Vec<Arc<Plugin>>,
    pub rejected: Vec<Rejected>,
    searched: Vec<PathBuf>,
}

impl PluginRegistry {
    /// Loads every `*.wasm` in `dirs` (not recursive). A bad file is
    /// rejected with its reason; it never stops the others.
    pub fn load(engine: &PluginEngine, dirs: &[PathBuf]) -> PluginRegistry {
        let mut registry = PluginRegistry {
            searched: dirs.to_vec(),
            ..Default::default()
        };
        let linker = match linker(engine) {
            Ok(l) => l,
            Err(e) => {
                registry.rejected.push(Rejected {
                    path: PathBuf::new(),
                    reason: format!("cannot set up the plugin host: {e:#}"),
                });
                return registry;
            }
        };
        for dir in dirs {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                    .collect(),
                Err(e) => {
                    registry.rejected.push(Rejected {
                        path: dir.clone(),
                        reason: format!("cannot read plugin directory: {e}"),
                    });
                    continue;
                }
            };
            files.sort();
            for path in files {
                match load_plugin(engine, &linker, &path) {
                    Ok(plugin) => registry.add(plugin),
                    Err(reason) => {
                        tracing::warn!(plugin = %path.display(), "{reason}");
                        registry.rejected.push(Rejected { path, reason });
                    }
                }
            }
        }
        registry
    }

    fn add(&mut self, plugin: Plugin) {
        for d in &plugin.descriptions {
            if let Some((other, _)) = self.find_exact(&d.name, &d.version) {
                let reason = format!(
                    "provides {} {}, which {} already provides",
                    d.name,
                    d.version,
                    other.path.display()
                );
                self.rejected.push(Rejected {
                    path: plugin.path.clone(),
                    reason,
                });
                return;
            }
        }
        tracing::debug!(plugin = %plugin.path.display(), cached = plugin.from_cache, "loaded plugin");
        self.plugins.push(Arc::new(plugin));
    }

    fn find_exact(&self, name: &str, version: &str) -> Option<(&Arc<Plugin>, &Description)> {
        self.plugins.iter().find_map(|p| {
            p.descriptions
                .iter()
                .find(|d| d.name == name && d.version == version)
                .map(|d| (p, d))
        })
    }

    /// Every (plugin, description) pair, sorted by name then version.
    pub fn connectors(&self) -> Vec<(&Arc<Plugin>, &Description)> {
        let mut all: Vec<_> = self
            .plugins
            .iter()
            .flat_map(|p| p.descriptions.iter().map(move |d| (p, d)))
            .collect();
        all.sort_by(|a, b| {
            a.1.name
                .cmp(&b.1.name)
                .then(version_key(&a.1.version).cmp(&version_key(&b.1.version)))
        });
        all
    }

    /// The plugin providing `name` at `version` (the newest when `None`).
    pub fn find(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Arc<Plugin>, Description), String> {
        let candidates: Vec<_> = self
            .connectors()
            .into_iter()
            .filter(|(_, d)| d.name == name)
            .collect();
        let chosen = match version {
            Some(v) => candidates.iter().find(|(_, d)| d.version == v),
            None => candidates.last(),
        };
        if let Some((p, d)) = chosen {
            return Ok(((*p).clone(), (*d).clone()));
        }
        if let (Some(v), false) = (version, candidates.is_empty()) {
            let have: Vec<&str> = candidates.iter().map(|(_, d)| d.version.as_str()).collect();
            return Err(format!(
                "plugin `{name}` has no version {v}; found versions: {}",
                have.join(", ")
            ));
        }
        let have: Vec<String> = self
            .connectors()
            .iter()
            .map(|(_, d)| format!("{} {} ({})", d.name, d.version, d.kind))
            .collect();
        let dirs: Vec<String> = self
            .searched
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        Err(if have.is_empty() {
            format!(
                "no plugin provides `{name}`, and no plugins were found in plugin.path ({})",
                dirs.join(", ")
            )
        } else {
            format!("no plugin provides `{name}`; found: {}", have.join(", "))
        })
    }
}

impl Catalog for PluginRegistry {
    fn describe(&self, class: &str, version: Option<&str>) -> Result<Description, String> {
        self.find(class, version).map(|(_, d)| d)
    }

    fn validate(
        &self,
        class: &str,
        version: Option<&str>,
        config: &Vec<(String, String)>,
    ) -> Result<Vec<ConfigIssue>, String> {
        let (plugin, d) = self.find(class, version)?;
        plugin.validate(d.kind, config).map_err(|e| e.to_string())
    }
}

fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn linker(engine: &PluginEngine) -> wasmtime::Result<Linker<TaskState>> {
    let mut linker = Linker::new(engine.engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    PluginWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Reads, compiles (or loads from cache), checks and describes one file.
fn load_plugin(
    engine: &PluginEngine,
    linker: &Linker<TaskState>,
    path: &Path,
) -> Result<Plugin, String> {
    let wasm = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    match wasm.get(0..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
            return Err("is a core WebAssembly module, not a component: build connectors for the wasm32-wasip2 target".into())
        }
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => {}
        _ => return Err("is not a WebAssembly component (no wasm header)".into()),
    }
    let (component, from_cache) = engine
        .load_component(&wasm)
        .map_err(|e| format!("cannot compile: {e:#}"))?;

    let mut source_found = false;
    let mut sink_found = false;
    let mut foreign = Vec::new();
    let ty = component.component_type();
    for (name, _) in ty
        .exports(engine.engine())
        .chain(ty.imports(engine.engine()))
    {
        let Some(rest) = name.strip_prefix(&format!("{PACKAGE}/")) else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, "(none)"));
        if version != CONTRACT_VERSION {
            foreign.push(version.to_owned());
            continue;
        }
        match iface {
            "source-connector" => source_found = true,
            "sink-connector" => sink_found = true,
            _ => {}
        }
    }
    if let Some(found) = foreign.first() {
        return Err(format!("implements contract {PACKAGE}@{found}; this worker speaks {PACKAGE}@{CONTRACT_VERSION}"));
    }
    if !source_found && !sink_found {
        return Err(format!("exports no connector: expected {PACKAGE}/source-connector@{CONTRACT_VERSION} or {PACKAGE}/sink-connector@{CONTRACT_VERSION}"));
    }

    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| format!("needs imports this worker does not provide: {e:#}"))?;
    let source = if source_found {
        Some(wit_source::GuestIndices::new(&pre).map_err(mismatch)?)
    } else {
        None
    };
    let sink = if sink_found {
        Some(wit_sink::GuestIndices::new(&pre).map_err(mismatch)?)
    } else {
        None
    };
    let mut plugin = Plugin {
        path: path.to_path_buf(),
        descriptions: Vec::new(),
        from_cache,
        engine: engine.clone(),
        pre,
        source,
        sink,
    };

    let spec = TaskSandbox::for_connector(&path.display().to_string());
    if plugin.source.is_some() {
        let d = plugin
            .with_source(&spec, "describe", |g, s| g.call_describe(s))
            .map_err(|e| e.to_string())?;
        plugin.descriptions.push(check_description(
            description_from_wit(d),
            ConnectorKind::Source,
        )?);
    }
    if plugin.sink.is_some() {
        let d = plugin
            .with_sink(&spec, "describe", |g, s| g.call_describe(s))
            .map_err(|e| e.to_string())?;
        plugin.descriptions.push(check_description(
            description_from_wit(d),
            ConnectorKind::Sink,
        )?);
    }
    Ok(plugin)
}

/// The message for a component whose exports have the right names but not
/// the shapes this worker was built with.
fn mismatch(e: wasmtime::Error) -> String {
    format!("does not match the contract {PACKAGE}@{CONTRACT_VERSION} this worker was built with (rebuild the plugin against this worker's plugins/wit): {e:#}")
}

fn check_description(d: Description, exported_as: ConnectorKind) -> Result<Description, String> {
    if d.kind != exported_as {
        return Err(format!(
            "`{}` describes itself as a {} but is exported as a {exported_as}",
            d.name, d.kind
        ));
    }
    if d.name.is_empty()
        || !d
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "connector name {:?} must be lowercase letters, digits and `-`",
            d.name
        ));
    }
    if version_key(&d.version).is_empty() {
        return Err(format!(
            "`{}` has version {:?}, which is not a version number",
            d.name, d.version
        ));
    }
    let reserved = |key: &str| {
        key == "name"
            || CONNECTOR_RUNTIME_KEYS.iter().any(|(k, _)| *k == key)
            || ["producer.", "consumer.", "errors."]
                .iter()
                .any(|p| key.starts_with(p))
    };
    if let Some(k) = d.keys.iter().find(|k| reserved(&k.name)) {
        return Err(format!(
            "`{}` declares key `{}`, which the worker reserves",
            d.name, k.name
        ));
    }
    Ok(d)
}

fn description_from_wit(d: wit::Description) -> Description {
    Description {
        name: d.name,
        version: d.version,
        kind: match d.kind {
            wit::ConnectorKind::Source => ConnectorKind::Source,
            wit::ConnectorKind::Sink => ConnectorKind::Sink,
        },
        summary: d.summary,
        reads_headers: d.reads_headers,
        keys: d
            .config
            .into_iter()
            .map(|k| KeySpec {
                name: k.name,
                ty: match k.type_ {
                    wit::ConfigType::String => KeyType::String,
                    wit::ConfigType::Integer => KeyType::Integer,
                    wit::ConfigType::Float => KeyType::Float,
                    wit::ConfigType::Boolean => KeyType::Boolean,
                    wit::ConfigType::List => KeyType::List,
                    wit::ConfigType::FileRead => KeyType::FileRead,
                    wit::ConfigType::FileWrite => KeyType::FileWrite,
                    wit::ConfigType::DirRead => KeyType::DirRead,
                    wit::ConfigType::DirWrite => KeyType::DirWrite,
                },
                default: k.default,
                doc: k.doc,
                secret: k.secret,
            })
            .collect(),
    }
}
