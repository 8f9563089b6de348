//! Proves that every artifact generated from the message declarations is
//! current: the JavaScript schema, the test vectors and the catalog section
//! of docs/PROTOCOL.md. With LUDUS_BLESS=1 (`make generated`) it rewrites
//! them instead of failing.

use std::fs;
use std::path::{Path, PathBuf};

use ludus::proto::wire::schema;

const CATALOG_BEGIN: &str =
    "<!-- BEGIN GENERATED CATALOG: `make generated` rewrites this part -->\n";
const CATALOG_END: &str = "<!-- END GENERATED CATALOG -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("LUDUS_BLESS").is_some_and(|value| value == "1")
}

/// Compares `path` with `expected`, or writes it when blessing.
fn check_file(path: &Path, expected: &str) {
    if blessing() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, expected).unwrap();
        return;
    }
    let actual = fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is stale: run `make generated` and commit the result",
        path.display()
    );
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

#[test]
fn javascript_schema_is_current() {
    check_file(&root().join("web/proto/schema.js"), &schema::schema_js());
}

#[test]
fn message_vectors_are_current() {
    check_file(&root().join("tests/vectors/messages.json"), &pretty(&schema::valid_vectors()));
}

#[test]
fn invalid_vectors_are_current() {
    check_file(&root().join("tests/vectors/invalid.json"), &pretty(&schema::invalid_vectors()));
}

#[test]
fn protocol_document_catalog_is_current() {
    let path = root().join("docs/PROTOCOL.md");
    let document = fs::read_to_string(&path).expect("docs/PROTOCOL.md exists");
    let begin = document.find(CATALOG_BEGIN).expect("PROTOCOL.md has the catalog begin marker");
    let end = document.find(CATALOG_END).expect("PROTOCOL.md has the catalog end marker");
    let expected = format!(
        "{}{CATALOG_BEGIN}\n{}{}",
        &document[..begin],
        schema::catalog_markdown(),
        &document[end..]
    );
    check_file(&path, &expected);
}

/// The hex bytes of each code block in the "Worked examples" section: on
/// every line, the tokens before the annotation (three or more spaces).
fn worked_example_frames(document: &str) -> Vec<String> {
    let section = document.split("## 6. Worked examples").nth(1).expect("worked examples section");
    let section = section.split("\n## ").next().unwrap();
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|block| {
            block
                .lines()
                .map(|line| line.split("   ").next().unwrap_or_default())
                .flat_map(str::split_whitespace)
                .filter(|token| token.len() == 2 && token.chars().all(|c| c.is_ascii_hexdigit()))
                .collect::<String>()
        })
        .collect()
}

#[test]
fn protocol_document_worked_examples_match_the_vectors() {
    let document = fs::read_to_string(root().join("docs/PROTOCOL.md")).unwrap();
    let examples = worked_example_frames(&document);
    let vectors = schema::worked_examples();
    let ids = ["example/hello", "example/input", "example/arena-state"];
    assert_eq!(examples.len(), ids.len(), "one code block per worked example");
    for (example, id) in examples.iter().zip(ids) {
        let vector = vectors.iter().find(|vector| vector["id"] == id).unwrap();
        assert_eq!(example, vector["frame"].as_str().unwrap(), "{id} in PROTOCOL.md");
    }
}
