//! `Leptos.toml` (read by the server at run time) must agree with the
//! `[package.metadata.leptos]` of `Cargo.toml` (read by cargo-leptos at build time), or the
//! server would look for the WASM bundle where the build did not put it.

use toml::Table;

fn read(file: &str) -> Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap().parse().unwrap()
}

fn leptos_section(table: &Table) -> &Table {
    table["package"]["metadata"]["leptos"]
        .as_table()
        .expect("[package.metadata.leptos]")
}

#[test]
fn leptos_toml_agrees_with_the_cargo_metadata() {
    let cargo = read("Cargo.toml");
    let runtime = read("Leptos.toml");
    let (cargo, runtime) = (leptos_section(&cargo), leptos_section(&runtime));
    for key in [
        "output-name",
        "site-root",
        "site-pkg-dir",
        "site-addr",
        "reload-port",
    ] {
        let runtime_value = runtime
            .get(key)
            .unwrap_or_else(|| panic!("Leptos.toml lacks {key}"));
        assert_eq!(Some(runtime_value), cargo.get(key), "{key} differs");
    }
    for key in runtime.keys() {
        assert!(
            cargo.contains_key(key),
            "Leptos.toml sets {key}, which Cargo.toml does not"
        );
    }
}
