//! The layers of `src/` point downward only: a module imports from its own layer or the layers
//! below it (the order is in `src/lib.rs` and docs/ARCHITECTURE.md). This reads every `crate::`
//! path under `src/` and fails naming each import of a layer above. The shape rules of the
//! layers redesign are checked here too: no function over 80 lines and no file over 500 lines
//! outside tests, and a domain that does no I/O.

use std::path::{Path, PathBuf};

/// Bottom to top.
const LAYERS: [&str; 7] = ["domain", "config", "ledger", "adapters", "engine", "app", "transport"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layer a file under `src/` belongs to; `None` for the crate root, the binaries and the
/// fuzzing entry points, which may use every layer.
fn layer_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    rank(name).map(|_| name.to_string())
}

/// The top-level modules a line of code names through `crate::`, including each member of a
/// `crate::{a::x, b::y}` group.
fn crate_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            for member in inner.split(',') {
                found.push(first_segment(member.trim()));
            }
        } else {
            found.push(first_segment(after));
        }
        rest = after;
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// Code without `//` comments; a multi-line `use crate::{...}` is joined into one line so its
/// members are seen together.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let code = raw.split("//").next().unwrap_or_default();
        if let Some((start, mut joined)) = pending.take() {
            joined.push_str(code);
            if code.contains('}') {
                lines.push((start, joined));
            } else {
                pending = Some((start, joined));
            }
        } else if code.contains("crate::{") && !code.contains('}') {
            pending = Some((n + 1, code.to_string()));
        } else {
            lines.push((n + 1, code.to_string()));
        }
    }
    lines
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let Some(layer) = layer_of(src, file) else { continue };
        let own = rank(&layer).expect("a known layer");
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (line, code) in code_lines(&text) {
            for module in crate_modules(&code) {
                match rank(&module) {
                    Some(theirs) if theirs > own => found.push(format!(
                        "{}:{line}: layer `{layer}` imports `{module}`, a layer above it",
                        file.strip_prefix(src).unwrap_or(file).display()
                    )),
                    Some(_) => {}
                    None if module == "test_util" || module == "fuzzing" && layer == "transport" => {}
                    None => found.push(format!(
                        "{}:{line}: `crate::{module}` is outside the layers {LAYERS:?}",
                        file.strip_prefix(src).unwrap_or(file).display()
                    )),
                }
            }
        }
    }
    found
}

#[test]
fn every_layer_imports_only_its_own_or_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "{} imports point upward:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import_and_a_group() {
    assert_eq!(crate_modules("use crate::engine::sync::run;"), ["engine"]);
    assert_eq!(
        crate_modules("use crate::{domain::seed::Seed, app::runner};"),
        ["domain", "app"]
    );
    let joined = code_lines("use crate::{\n    ledger::x,\n    adapters::y,\n};\n// crate::app in a comment");
    assert_eq!(crate_modules(&joined[0].1), ["ledger", "adapters"]);
    assert!(joined.iter().all(|(_, code)| !code.contains("app")));
    let dir = std::env::temp_dir().join(format!("seedwatch-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("ledger")).expect("temp dir");
    std::fs::write(
        dir.join("ledger/x.rs"),
        "use crate::adapters::azure::Arm;\nuse crate::domain::seed::Seed;\n",
    )
    .expect("temp file");
    let found = violations(&dir);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("ledger/x.rs:1: layer `ledger` imports `adapters`"),
        "{found:?}"
    );
}

/// The code of a file before its `#[cfg(test)]` module: what the size rules are about.
fn code_before_tests(text: &str) -> Vec<&str> {
    text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).collect()
}

/// Functions longer than `limit` lines in `lines`: (first line, name, length). A function ends
/// at the first line that is its opening line's indentation plus `}`.
fn long_functions(lines: &[&str], limit: usize) -> Vec<(usize, String, usize)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else { continue };
        let head = &trimmed[..at];
        let is_fn = head
            .split_whitespace()
            .all(|w| ["pub", "pub(crate)", "pub(super)", "async", "const", "unsafe"].contains(&w));
        if !is_fn || trimmed.trim_end().ends_with(';') {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let close = format!("{indent}}}");
        let Some(end) = lines[i + 1..].iter().position(|l| *l == close) else {
            continue;
        };
        let length = end + 2;
        if length > limit {
            let name = first_segment(&trimmed[at + 3..]);
            found.push((i + 1, name, length));
        }
    }
    found
}

#[test]
fn no_function_over_80_lines_and_no_file_over_500_outside_tests() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap_or(file).display().to_string();
        if relative.ends_with("tests.rs") || relative.contains("/tests/") || relative.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = code_before_tests(&text);
        if code.len() > 500 {
            found.push(format!("{relative}: {} lines outside tests (at most 500)", code.len()));
        }
        for (line, name, length) in long_functions(&code, 80) {
            found.push(format!("{relative}:{line}: fn {name} is {length} lines (at most 80)"));
        }
    }
    assert!(
        found.is_empty(),
        "{} over the size rules:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_size_check_sees_a_long_function() {
    let mut text = String::from("pub(crate) async fn long() {\n");
    text.push_str(&"    x();\n".repeat(80));
    text.push_str("}\nfn short() {\n}\nfn declared();\n");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(long_functions(&lines, 80), vec![(1, "long".to_string(), 82)]);
}

/// The I/O a line of code names: files, sockets (not `std::net`'s address types, which are
/// values), name lookups, processes, the environment, the runtime, HTTP. A grouped
/// `use std::{..}` counts too; a comment does not.
fn io_named(line: &str) -> Vec<&'static str> {
    const FORBIDDEN: [&str; 10] = [
        "std::fs",
        "File::",
        "tokio::",
        "reqwest",
        "std::env",
        "std::process",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "ToSocketAddrs",
    ];
    let code = line.split("//").next().unwrap_or_default();
    let mut found: Vec<&'static str> = FORBIDDEN.iter().copied().filter(|w| code.contains(*w)).collect();
    for group in code.split("std::{").skip(1) {
        let names = group.split('}').next().unwrap_or_default();
        for (name, word) in [("fs", "std::fs"), ("env", "std::env"), ("process", "std::process")] {
            if names
                .split(',')
                .any(|n| n.trim() == name || n.trim().starts_with(&format!("{name}::")))
            {
                found.push(word);
            }
        }
    }
    found
}

#[test]
fn the_domain_does_no_io() {
    // The pure core opens no file or socket, spawns nothing and reads no environment:
    // adapters and transports do, and hand it values or readers.
    let domain = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = Vec::new();
    rust_files(&domain, &mut files);
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&domain).unwrap_or(file).display().to_string();
        if relative.ends_with("tests.rs") || relative.contains("tests/") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = code_before_tests(&text);
        for (n, line) in code.iter().enumerate() {
            for word in io_named(line) {
                found.push(format!("domain/{relative}:{}: `{word}`", n + 1));
            }
        }
        // A `use std::{..}` that rustfmt wrapped over several lines, read as one.
        for word in io_named(&joined_code(&code)) {
            if !found.iter().any(|f| f.starts_with(&format!("domain/{relative}:"))) {
                found.push(format!("domain/{relative}: `{word}` (in a grouped import)"));
            }
        }
    }
    assert!(found.is_empty(), "the domain does I/O:\n{}", found.join("\n"));
}

/// The code lines, comments dropped, joined by spaces (a wrapped `use` becomes one line).
fn joined_code(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.split("//").next().unwrap_or_default().trim())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_io_check_sees_io_in_code_and_not_in_comments() {
    assert_eq!(io_named("    let text = std::fs::read_to_string(path)?;"), ["std::fs"]);
    assert_eq!(io_named("use std::{collections::BTreeMap, env};"), ["std::env"]);
    assert_eq!(io_named("use std::{fs::File, io::Read};"), ["std::fs"]);
    assert_eq!(io_named("let s = TcpStream::connect(addr);"), ["TcpStream"]);
    assert!(io_named("// adapters call std::fs; the domain takes a reader").is_empty());
    assert!(io_named("use std::{collections::BTreeMap, io::Read};").is_empty());
    assert!(io_named("let envelope = Envelope::default();").is_empty());
    assert!(
        io_named("use std::net::{IpAddr, Ipv4Addr};").is_empty(),
        "addresses are values"
    );
    let text = "fn pure() {}\n#[cfg(test)]\nmod tests {\n    fn t() { std::fs::read(\"x\"); }\n}\n";
    assert!(
        code_before_tests(text).iter().all(|line| io_named(line).is_empty()),
        "tests are not the domain's code"
    );
    let wrapped = ["use std::{", "    collections::BTreeMap, // ordered", "    fs,", "};"];
    assert!(wrapped.iter().all(|line| io_named(line).is_empty()));
    assert_eq!(
        io_named(&joined_code(&wrapped)),
        ["std::fs"],
        "a wrapped group is read whole"
    );
    assert_eq!(
        io_named("use std::{fmt, io::Read}; use std::{env, sync::Arc};"),
        ["std::env"],
        "every group of a file is read"
    );
}
