//! Reading `infra/`'s Bicep for the tests (`tests/it/deploy.rs`, `tests/it/identity.rs`): the code
//! without its comments, and the app settings it gives the Function App (every `name: '<X>'`
//! line directly followed by a `value:` line, an entry of `siteConfig.appSettings`).

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

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// All Bicep code under infra/ (comments removed), concatenated.
pub fn bicep_text() -> String {
    let mut files = Vec::new();
    bicep_files(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra"), &mut files);
    assert!(!files.is_empty(), "no Bicep files under infra/");
    files.iter().map(|f| bicep_code(f)).collect::<Vec<_>>().join("\n")
}

/// One Bicep file without its comments, so a fact matched in it is said by the code, not by a
/// comment about it.
pub fn bicep_code(path: &Path) -> String {
    strip_bicep_comments(&read(path))
}

/// Removes `// line` and `/* block */` comments, leaving string literals ('...' with `\'`
/// escapes, and ''''multi-line'''') untouched. Line breaks are kept.
pub fn strip_bicep_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['\'', '\'', '\'']) {
            let end = (i + 3..chars.len().saturating_sub(2))
                .find(|&j| chars[j..].starts_with(&['\'', '\'', '\'']))
                .map_or(chars.len(), |j| j + 3);
            out.extend(&chars[i..end]);
            i = end;
        } else if rest[0] == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            out.extend(&chars[i..end]);
            i = end;
        } else if rest.starts_with(&['/', '/']) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if rest.starts_with(&['/', '*']) {
            let end = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j..].starts_with(&['*', '/']))
                .map_or(chars.len(), |j| j + 2);
            out.extend(chars[i..end].iter().filter(|c| **c == '\n'));
            i = end;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

/// App settings in Bicep code: every `name: '<X>'` line directly followed by a `value:` line
/// (the shape of an entry in a `siteConfig.appSettings` array), with that value's text.
pub fn app_settings_in(bicep: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = bicep.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut settings = BTreeMap::new();
    for pair in lines.windows(2) {
        let (Some(name), Some(value)) = (pair[0].strip_prefix("name: '"), pair[1].strip_prefix("value: ")) else {
            continue;
        };
        if let Some(name) = name.strip_suffix('\'') {
            settings.insert(name.to_string(), value.to_string());
        }
    }
    settings
}

/// Setting name → the Bicep expression of its value (quoted literals keep their quotes), from
/// every Bicep file under infra/ with its comments removed.
pub fn template_app_settings() -> BTreeMap<String, String> {
    let settings = app_settings_in(&bicep_text());
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
