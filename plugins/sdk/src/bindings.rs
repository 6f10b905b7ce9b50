//! Raw bindings of the contract, generated from `plugins/wit`.
//!
//! Connector authors do not use these directly: the traits in this crate and
//! the `export_*!` macros wrap them. One module per world (a component providing both exports both); the shared
//! `types`, `host`, `sql` and `blob` interfaces are generated once (in `source`) and reused.

#[doc(hidden)]
pub mod source {
    wit_bindgen::generate!({
        world: "source",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        default_bindings_module: "tributary_sdk::bindings::source",
        additional_derives: [PartialEq],
    });
}

#[doc(hidden)]
pub mod sink {
    wit_bindgen::generate!({
        world: "sink",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_sink_world",
        default_bindings_module: "tributary_sdk::bindings::sink",
        additional_derives: [PartialEq],
        with: {
            "tributary:connector/types@0.2.0": crate::bindings::source::tributary::connector::types,
            "tributary:connector/host@0.2.0": crate::bindings::source::tributary::connector::host,
            "tributary:connector/sql@0.2.0": crate::bindings::source::tributary::connector::sql,
            "tributary:connector/blob@0.2.0": crate::bindings::source::tributary::connector::blob,
        },
    });
}
