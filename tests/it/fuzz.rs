//! The short fuzz run of the test suite: for every decoder of outside data (the targets of
//! `seedwatch::fuzzing`, the same entry points `fuzz/` drives with cargo-fuzz), property tests
//! over arbitrary bytes and over structure-aware mutations of the fixtures (bytes flipped,
//! inserted, deleted, truncated; JSON values spliced from elsewhere or replaced by hostile
//! scalars; lines duplicated). Each case must end without a panic, and every reject must carry a
//! message. Runs are deterministic (a fixed RNG seed) and count the cases that reached the
//! assertion, failing when too few did.

use std::path::{Path, PathBuf};

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use seedwatch::fuzzing::{self, TARGETS};
use serde_json::Value;

const BYTE_CASES: u32 = 160;
const MUTATION_CASES: u32 = 160;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file() && keep(p));
    out.sort();
    out
}

/// The seeds of a target: `fuzz/seeds/TARGET/` and the fixtures `scripts/fuzz.sh` copies, with
/// whether each must decode (a seed named `reject-*` is a known reject).
fn seeds(target: &str) -> Vec<(Vec<u8>, bool)> {
    let root = root();
    let mut paths = files(&root.join("fuzz/seeds").join(target), |_| true);
    let ext = |e: &'static str| move |p: &Path| p.extension().is_some_and(|x| x == e);
    let certs = root.join("tests/fixtures/certs");
    match target {
        "estate" => paths.push(root.join("examples/estate.json")),
        "config" => paths.push(root.join("examples/config.yml")),
        "cert_text" => {
            paths.extend(files(&certs, ext("pem")));
            paths.extend(files(&certs, ext("b64")));
        }
        "events" => paths.extend(files(&root.join("tests/fixtures/lambda"), ext("json"))),
        _ => {}
    }
    let must_decode = |p: &PathBuf| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("reject-"))
    };
    let mut out: Vec<(Vec<u8>, bool)> = paths
        .iter()
        .map(|p| (std::fs::read(p).expect("a seed file"), must_decode(p)))
        .collect();
    if target == "cert_der" {
        for path in files(&certs, ext("b64")) {
            let text: String = std::fs::read_to_string(&path)
                .expect("a fixture")
                .split_whitespace()
                .collect();
            out.push((
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .expect("base64 fixture"),
                true,
            ));
        }
    }
    out
}

/// One edit of a seed. Positions and indices are taken modulo the current length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
    /// Copies one line over another (YAML keys, PEM blocks).
    Line(usize, usize),
    /// Replaces the JSON node at the first index (pre-order) with a copy of the second.
    Splice(usize, usize),
    /// Replaces a JSON node with a hostile value.
    Replace(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Line(a, b)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Splice(a, b)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Replace(a, b)),
    ]
}

fn hostile(index: usize) -> Value {
    let deep = (0..200).fold(Value::Null, |inner, _| Value::Array(vec![inner]));
    let values = [
        Value::Null,
        Value::Bool(true),
        serde_json::json!(""),
        serde_json::json!(" "),
        serde_json::json!(-1),
        serde_json::json!(u64::MAX),
        serde_json::json!(1e308),
        serde_json::json!("\u{0}\u{7f}\u{202e}"),
        serde_json::json!("../../%2e%2e/?#"),
        serde_json::json!("x".repeat(5000)),
        serde_json::json!({}),
        serde_json::json!([]),
        deep,
        serde_json::json!("2025-02-30T25:61:61Z"),
        serde_json::json!("/subscriptions//resourceGroups/"),
    ];
    values[index % values.len()].clone()
}

/// Every node of a JSON document, pre-order, as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn json_edit(bytes: &[u8], edit: impl FnOnce(&mut Value, &[String])) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    let mut all = Vec::new();
    pointers(&value, String::new(), &mut all);
    edit(&mut value, &all);
    serde_json::to_vec(&value).ok()
}

fn apply(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    let len = bytes.len();
    match *mutation {
        Mutation::Flip(p, b) if len > 0 => bytes[p % len] ^= b | 1,
        Mutation::Insert(p, b) => bytes.insert(p % (len + 1), b),
        Mutation::Delete(p, n) if len > 0 => {
            let start = p % len;
            bytes.drain(start..(start + n).min(len));
        }
        Mutation::Truncate(p) => bytes.truncate(p % (len + 1)),
        Mutation::Line(a, b) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines[a % n] = lines[b % n];
                bytes = lines.join("\n").into_bytes();
            }
        }
        Mutation::Splice(a, b) => {
            if let Some(out) = json_edit(&bytes, |v, all| {
                let source = v.pointer(&all[b % all.len()]).cloned();
                if let (Some(source), Some(target)) = (source, v.pointer_mut(&all[a % all.len()])) {
                    *target = source;
                }
            }) {
                bytes = out;
            }
        }
        Mutation::Replace(a, h) => {
            if let Some(out) = json_edit(&bytes, |v, all| {
                if let Some(target) = v.pointer_mut(&all[a % all.len()]) {
                    *target = hostile(h);
                }
            }) {
                bytes = out;
            }
        }
        _ => {}
    }
    bytes
}

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// How many cases of one fuzz target's run reached the assertion, and how many of those the
/// decoder accepted. (The unit tests' property counter is `src/test_util.rs`'s `Reached`, which
/// a test binary cannot reach: it is `cfg(test)` inside the library.)
#[derive(Debug, Default)]
struct FuzzCaseTally {
    asserted: u32,
    accepted: u32,
}

/// Runs `target` on `input`: no panic (a panic fails the case with its message), and every
/// reject carries a message.
fn assert_clean(target: &str, input: &[u8], tally: &std::cell::RefCell<FuzzCaseTally>) -> Result<(), TestCaseError> {
    let result = std::panic::catch_unwind(|| fuzzing::run(target, input))
        .map_err(|_| TestCaseError::fail(format!("{target} panicked on {:?}", String::from_utf8_lossy(input))))?;
    let mut tally = tally.borrow_mut();
    tally.asserted += 1;
    if result.is_ok() {
        tally.accepted += 1;
    }
    fuzzing::check(&result).map_err(|e| TestCaseError::fail(format!("{target}: {e} on {input:?}")))
}

fn arbitrary_bytes(target: &str) {
    let tally = std::cell::RefCell::new(FuzzCaseTally::default());
    let strategy = proptest::collection::vec(any::<u8>(), 0..512);
    let result = runner(BYTE_CASES).run(&strategy, |input| assert_clean(target, &input, &tally));
    if let Err(e) = result {
        panic!("{target}, arbitrary bytes: {e}");
    }
    let tally = tally.into_inner();
    eprintln!("{target}: {tally:?} of {BYTE_CASES} arbitrary byte strings");
    assert_eq!(tally.asserted, BYTE_CASES, "{target}: cases that reached the assertion");
}

/// Mutations of the fixtures; at least `min_accepted_percent` of the cases must decode (so the
/// run reaches past the first parse into the decoder's depths).
fn mutated_fixtures(target: &str, min_accepted_percent: u32) {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "{target} has no seeds");
    for (seed, must_decode) in &seeds {
        let result = fuzzing::run(target, seed);
        assert_eq!(result.is_ok(), *must_decode, "{target}: a seed: {result:?}");
    }
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(seed, _)| seed).collect();
    let tally = std::cell::RefCell::new(FuzzCaseTally::default());
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..4));
    let result = runner(MUTATION_CASES).run(&strategy, |(index, mutations)| {
        let input = mutations.iter().fold(seeds[index].clone(), apply);
        assert_clean(target, &input, &tally)
    });
    if let Err(e) = result {
        panic!("{target}, mutated fixtures: {e}");
    }
    let tally = tally.into_inner();
    eprintln!("{target}: {tally:?} of {MUTATION_CASES} mutated fixtures");
    assert_eq!(
        tally.asserted, MUTATION_CASES,
        "{target}: cases that reached the assertion"
    );
    assert!(
        tally.accepted * 100 >= MUTATION_CASES * min_accepted_percent,
        "{target}: only {} of {MUTATION_CASES} mutated fixtures decoded (want {min_accepted_percent}%)",
        tally.accepted
    );
}

macro_rules! fuzz_tests {
    ($($target:ident => $min_accepted:expr;)*) => {
        $(
            mod $target {
                #[test]
                fn arbitrary_bytes_never_panic_and_rejects_say_why() {
                    super::arbitrary_bytes(stringify!($target));
                }

                #[test]
                fn mutated_fixtures_never_panic_and_rejects_say_why() {
                    super::mutated_fixtures(stringify!($target), $min_accepted);
                }
            }
        )*

        #[test]
        fn every_target_is_tested_here_and_has_a_cargo_fuzz_target() {
            let tested = [$(stringify!($target)),*];
            assert_eq!(tested.as_slice(), TARGETS);
            for target in TARGETS {
                let path = root().join("fuzz/fuzz_targets").join(format!("{target}.rs"));
                let source = std::fs::read_to_string(&path).unwrap_or_default();
                assert!(source.contains(&format!("run(\"{target}\"")), "{} must run {target}", path.display());
            }
        }
    };
}

// The second number: the least share (percent) of mutated fixtures that must still decode.
fuzz_tests! {
    envelope => 10;
    events => 10;
    resync => 10;
    retry_message => 5;
    arm_answer => 10;
    graph_page => 10;
    asm_answer => 10;
    table_entity => 10;
    estate => 10;
    config => 10;
    cert_text => 5;
    cert_der => 5;
    resource_id => 10;
}

#[test]
fn a_panicking_decoder_would_fail_the_run() {
    // The harness itself can fail: a target name the facade does not know is a reject with a
    // message, and a panic inside the run is caught and reported as a failed case.
    let tally = std::cell::RefCell::new(FuzzCaseTally::default());
    assert!(assert_clean("no_such_target", b"x", &tally).is_ok());
    let panicked = std::panic::catch_unwind(|| -> Result<(), String> { panic!("boom") });
    assert!(panicked.is_err());
    let empty: Result<fuzzing::Decoded, String> = Err(" ".into());
    assert!(
        fuzzing::check(&empty).is_err(),
        "an empty reject message must fail the check"
    );
}
