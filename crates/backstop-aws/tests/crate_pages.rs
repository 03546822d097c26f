//! The crate pages of backstop-aws and backstop-http are read by users with
//! that one crate as their dependency: their examples name the core through
//! the crate's re-exports (`backstop_aws::presets`), never as `backstop::..`,
//! which fails to resolve without a `backstop` dependency. (The examples
//! compile as doctests, where `backstop` is in scope, so only this test
//! catches it.)

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `file:line: text` for each line of a doc example that names `backstop::`
/// as a crate of its own (not `backstop_aws::backstop::`).
fn core_paths_in_doc_examples(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut in_example = false;
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(doc) = trimmed.strip_prefix("//!").or_else(|| trimmed.strip_prefix("///")) else {
            in_example = false;
            continue;
        };
        let doc = doc.trim_start();
        if doc.starts_with("```") {
            in_example = !in_example;
            continue;
        }
        let names_core = doc
            .match_indices("backstop::")
            .any(|(at, _)| !doc[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':'));
        if in_example && names_core {
            found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
        }
    }
    found
}

#[test]
fn crate_page_examples_use_the_crates_own_re_exports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in ["backstop-aws", "backstop-http"] {
        for dir in ["src", "examples"] {
            let dir = root.join(krate).join(dir);
            if dir.exists() {
                found.extend(sources(&dir).iter().flat_map(|f| core_paths_in_doc_examples(f)));
            }
        }
    }
    assert!(found.is_empty(), "examples that need a `backstop` dependency:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_a_core_path() {
    let dir = std::env::temp_dir().join(format!("crate-pages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lib.rs");
    std::fs::write(&file, "//! ```\n//! use backstop::presets;\n//! use backstop_aws::backstop::Jitter;\n//! ```\n")
        .unwrap();
    let found = core_paths_in_doc_examples(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("use backstop::presets;"));
}
