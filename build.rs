//! Embeds the browser client (web/) into the binary, so `ludus serve` serves
//! it from memory wherever it runs: no file reads on a shard thread, no
//! deployment step. Test files and package metadata stay out.
//! Also turns docs/openapi.yaml into the JSON served at /api/openapi.json,
//! failing the build when the YAML does not parse.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("web");
    println!("cargo:rerun-if-changed=web");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Files of web/: (URL path, contents).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (url, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(out, "    ({url:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("web_assets.rs");
    std::fs::write(target, out).unwrap();
    openapi_json();
}

fn openapi_json() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest.join("docs/openapi.yaml");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).expect("docs/openapi.yaml is readable");
    let value: serde_json::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("docs/openapi.yaml: {error}"));
    let json = serde_json::to_string(&value).unwrap();
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("openapi.json");
    std::fs::write(target, json).unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else if served(&name) {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            files.push((format!("/{relative}"), path));
        }
    }
}

/// Test files and package metadata are not part of the site.
fn served(name: &str) -> bool {
    !(name.ends_with(".test.js") || name == "package.json" || name == "package-lock.json")
}
