//! The built `seedwatch` binary as an operator runs it: a hermetic command for `assert_cmd`
//! checks, a run with exactly the environment a test gives it, and the example estate file the
//! CLI tests plan from.

use std::path::Path;

use serde_json::Value;

/// `examples/estate.json`: the policy's example estate.
pub const EXAMPLE_ESTATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/estate.json");

/// Variables the binary reads for its configuration or its Azure credential. Removed from a
/// hermetic command so the developer's own environment cannot change an outcome.
const CONNECTOR_ENV: &[&str] = &[
    "CONNECTOR_CONFIG",
    "API_KEY",
    "SCAN_ID",
    "SEED_TAG",
    "DELETE_STALE_SEEDS",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];

/// The binary, run in `dir` (an empty directory: no stray `config.yml`) without the connector's
/// variables.
pub fn hermetic_command(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("seedwatch").unwrap();
    cmd.current_dir(dir);
    for var in CONNECTOR_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// `seedwatch <args>` in `dir` with `env` as its whole environment.
pub fn command(args: &[&str], dir: &Path, env: Vec<(String, String)>) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seedwatch"));
    cmd.args(args).current_dir(dir).env_clear().envs(env);
    cmd
}

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Asserts the run exited 0.
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, Some(0), "{self:?}");
        self
    }
}

/// Runs `seedwatch <args>` in `dir` with `env` as its whole environment and waits for it, in a
/// blocking task so the fakes this test's runtime serves keep answering meanwhile.
pub async fn run(args: &[&str], dir: &Path, env: Vec<(String, String)>) -> Run {
    let mut cmd = command(args, dir, env);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The items of an estate file: an array, `{"data": [...]}` or `{"value": [...]}`.
pub fn estate_items(path: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    match value {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("data").or_else(|| map.remove("value")) {
            Some(Value::Array(items)) => items,
            _ => panic!("no items in {path}"),
        },
        _ => panic!("not an estate: {path}"),
    }
}

/// The `(name, type)` of every seed in a `plan --json` document, in its order.
pub fn planned_seeds(plan: &Value) -> Vec<(String, String)> {
    plan["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
