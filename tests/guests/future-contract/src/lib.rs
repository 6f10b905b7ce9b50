//! A component that exports `tributary:connector/source-connector@0.3.0`:
//! the worker must refuse it at load and name the version it found.

wit_bindgen::generate!({
    inline: r#"
        package tributary:connector@0.3.0;

        interface source-connector {
            describe: func() -> string;
        }

        world next-version {
            export source-connector;
        }
    "#,
    world: "next-version",
});

struct Future;

impl exports::tributary::connector::source_connector::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(Future);
