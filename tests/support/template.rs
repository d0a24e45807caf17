#![allow(dead_code)]
//! The app settings `infra/` gives the Function App, read from the Bicep the way
//! `tests/deploy.rs` reads them: every `name: '<X>'` line directly followed by a `value:` line
//! (an entry of `siteConfig.appSettings`), with that value's text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn bicep_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            bicep_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "bicep") {
            out.push(path);
        }
    }
}

/// Setting name → the Bicep expression of its value (quoted literals keep their quotes).
pub fn template_app_settings() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    bicep_files(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra"), &mut files);
    assert!(!files.is_empty(), "no Bicep files under infra/");
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display())))
        .collect::<Vec<_>>()
        .join("\n");
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut settings = BTreeMap::new();
    for pair in lines.windows(2) {
        let (Some(name), Some(value)) = (pair[0].strip_prefix("name: '"), pair[1].strip_prefix("value: ")) else {
            continue;
        };
        if let Some(name) = name.strip_suffix('\'') {
            settings.insert(name.to_string(), value.to_string());
        }
    }
    assert!(
        settings.contains_key("AZURE_CLIENT_ID"),
        "the app-settings reader found nothing sensible: {settings:?}"
    );
    settings
}

/// A Bicep single-quoted literal without interpolation, unquoted.
pub fn literal(expression: &str) -> Option<&str> {
    let inner = expression.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains("${")).then_some(inner)
}
