//! Host bindings generated from `plugins/wit` (world `plugin`, which holds
//! both exports; a component may provide either or both, so the exports are
//! loaded per interface).

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../plugins/wit",
    with: {
        "tributary:connector/sql.connection": super::sql_host::SqlConnection,
        "tributary:connector/sql.copy-writer": super::sql_host::SqlCopyWriter,
        "tributary:connector/blob.store": super::blob_host::BlobStore,
    },
});
