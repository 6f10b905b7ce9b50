//! The sink's config: `insert.mode`, `pk.mode`, `pk.fields`,
//! `delete.enabled`, `table.name.format` and `auto.create`, checked together.

use tributary_sdk::{Config, ConfigIssue};

use super::Op;

/// `insert.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InsertMode {
    Insert,
    Upsert,
    Update,
}

/// `pk.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PkMode {
    None,
    RecordKey,
    RecordValue,
}

/// The sink's config, checked.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) insert_mode: InsertMode,
    pub(super) pk_mode: PkMode,
    pub(super) pk_fields: Vec<String>,
    pub(super) delete_enabled: bool,
    pub(super) table_format: String,
    pub(super) auto_create: bool,
}

impl Settings {
    /// The settings, or every problem with them (each naming its key).
    pub(super) fn parse(config: &Config) -> Result<Settings, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, message: String| issues.push(ConfigIssue::new(key, message));
        let insert_mode = match config
            .get::<String>("insert.mode")
            .unwrap_or_default()
            .trim()
        {
            "insert" => InsertMode::Insert,
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            other => {
                issue(
                    "insert.mode",
                    format!("unknown mode {other:?}; use insert, upsert or update"),
                );
                InsertMode::Insert
            }
        };
        let pk_mode = match config.get::<String>("pk.mode").unwrap_or_default().trim() {
            "none" => PkMode::None,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            other => {
                issue(
                    "pk.mode",
                    format!("unknown mode {other:?}; use none, record_key or record_value"),
                );
                PkMode::None
            }
        };
        let pk_fields: Vec<String> = config.get("pk.fields").unwrap_or_default();
        let mut boolean = |name: &str| {
            config.get::<bool>(name).unwrap_or_else(|e| {
                issue(name, e.message);
                false
            })
        };
        let delete_enabled = boolean("delete.enabled");
        let auto_create = boolean("auto.create");
        let table_format = config
            .get::<String>("table.name.format")
            .unwrap_or_default()
            .trim()
            .to_owned();
        if table_format.is_empty() {
            issue(
                "table.name.format",
                "must not be empty; `${topic}` names the table after the topic".into(),
            );
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            let mode = if insert_mode == InsertMode::Upsert {
                "upsert"
            } else {
                "update"
            };
            issue(
                "pk.mode",
                format!("insert.mode={mode} needs a primary key: set pk.mode to record_key or record_value"),
            );
        }
        if delete_enabled && pk_mode != PkMode::RecordKey {
            issue(
                "delete.enabled",
                "deletes find the row by the record key: delete.enabled=true needs pk.mode=record_key"
                    .into(),
            );
        }
        if pk_mode == PkMode::None && !pk_fields.is_empty() {
            issue(
                "pk.fields",
                "pk.fields is set but pk.mode is none: set pk.mode to record_key or record_value"
                    .into(),
            );
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Settings {
            insert_mode,
            pk_mode,
            pk_fields,
            delete_enabled,
            table_format,
            auto_create,
        })
    }

    /// The table records of `topic` go to.
    pub(super) fn table_for(&self, topic: &str) -> String {
        self.table_format.replace("${topic}", topic)
    }

    /// The statement a record that is not a tombstone asks for.
    pub(super) fn write_op(&self) -> Op {
        match self.insert_mode {
            InsertMode::Insert => Op::Insert,
            InsertMode::Upsert => Op::Upsert,
            InsertMode::Update => Op::Update,
        }
    }
}
