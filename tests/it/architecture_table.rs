//! docs/ARCHITECTURE.md's "Deletion safety" table cites, for each path and guard, the tests
//! that prove it. This keeps the table true: every cited `file.rs::name` is a `fn name` in that
//! file, every cited file exists, and no cell points vaguely at a file instead of a test.

use std::path::Path;

const SECTION: &str = "## Deletion safety";

/// The section of ARCHITECTURE.md from its heading to the next `## ` heading.
fn deletion_safety_section() -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
        .unwrap_or_else(|e| panic!("docs/ARCHITECTURE.md: {e}"));
    let start = text
        .find(SECTION)
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no {SECTION:?} heading"));
    let rest = &text[start + SECTION.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// Every backticked span of `text` that names a Rust file (`tests/it/x.rs` or `tests/it/x.rs::name`).
fn citations(text: &str) -> Vec<(String, Option<String>)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (file, name) = match span.split_once("::") {
                Some((file, name)) => (file, Some(name.to_string())),
                None => (span, None),
            };
            file.ends_with(".rs").then(|| (file.to_string(), name))
        })
        .collect()
}

/// Whether `source` defines a function called `name` (sync or async, any visibility).
fn defines_fn(source: &str, name: &str) -> bool {
    source.match_indices(&format!("fn {name}")).any(|(at, found)| {
        source[at + found.len()..]
            .chars()
            .next()
            .is_some_and(|next| next == '(' || next == '<')
    })
}

#[test]
fn every_test_the_deletion_safety_table_cites_exists() {
    let section = deletion_safety_section();
    let cited = citations(&section);
    assert!(
        cited.len() > 20,
        "the table cites {} tests: is it still there?",
        cited.len()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for (file, name) in &cited {
        let Ok(source) = std::fs::read_to_string(root.join(file)) else {
            missing.push(format!("{file} (no such file)"));
            continue;
        };
        if let Some(name) = name
            && !defines_fn(&source, name)
        {
            missing.push(format!("{file}::{name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "the Deletion safety table cites tests that do not exist: {missing:#?}"
    );
}

#[test]
fn no_deletion_safety_cell_points_at_a_file_instead_of_a_test() {
    let section = deletion_safety_section();
    let vague: Vec<&str> = section.lines().filter(|line| line.contains("see tests/")).collect();
    assert!(vague.is_empty(), "cells cite a file, not a test: {vague:#?}");
}

#[test]
fn the_checker_sees_a_missing_test_and_a_vague_cell() {
    let cited = citations("| `tests/it/apply.rs::no_such_test` | `SyncEngine::run` | `tests/it/lambda.rs` |");
    assert_eq!(
        cited,
        vec![
            ("tests/it/apply.rs".to_string(), Some("no_such_test".to_string())),
            ("tests/it/lambda.rs".to_string(), None),
        ]
    );
    assert!(defines_fn("async fn ab_c() {}", "ab_c"));
    assert!(!defines_fn("fn ab_cd() {}", "ab_c"));
}
