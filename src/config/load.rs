//! Loading: where the YAML comes from, reading it into the file's shape (unknown keys through
//! `serde_ignored`, the key of a bad value through `serde_path_to_error`), then the env overrides.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::raw::RawConfig;
use super::types::{Config, LoadOptions};
use super::values::{parse_bool_text, show, split_rejection};
use super::{ConfigError, EnvSource, env};
use crate::domain::secret::Secret;

impl Config {
    /// Loads from `CONNECTOR_CONFIG` or the file, then applies the env overrides.
    pub fn load(options: &LoadOptions, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let (text, origin) = match env.var(env::CONNECTOR_CONFIG) {
            Some(text) if text.trim().is_empty() => {
                return Err(ConfigError::Read {
                    origin: env::CONNECTOR_CONFIG.into(),
                    message: "is set but empty".into(),
                });
            }
            Some(text) => (Some(text), env::CONNECTOR_CONFIG.to_string()),
            None => read_config_file(options)?,
        };
        let value = match text {
            Some(text) => parse_yaml(&text, &origin)?,
            None => Value::Object(Default::default()),
        };
        Config::from_value(&value, &origin, env)
    }

    /// Builds the configuration from parsed YAML (`origin` names it in errors) and the env.
    pub fn from_value(value: &Value, origin: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let empty = Value::Object(Default::default());
        let root = match value {
            Value::Null => &empty,
            Value::Object(_) => value,
            other => {
                return Err(ConfigError::Invalid {
                    origin: origin.into(),
                    key: "(top level)".into(),
                    value: show(other),
                    expected: "expected a mapping of keys".into(),
                });
            }
        };
        let mut ignored = Vec::new();
        let raw = read_raw(root, origin, &mut ignored)?;
        let mut config = raw.into_config(origin, env, ignored)?;
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(scan) = env.var(env::SCAN_ID).filter(|s| !s.trim().is_empty()) {
            self.scan_id = Some(scan.trim().to_string());
        }
        if let Some(tag) = env.var(env::SEED_TAG).filter(|s| !s.trim().is_empty()) {
            self.seed_tag = tag.trim().to_string();
        }
        if let Some(raw) = env.var(env::DELETE_STALE_SEEDS).filter(|s| !s.trim().is_empty()) {
            self.delete_stale_seeds = parse_bool_text(&raw).ok_or_else(|| ConfigError::Invalid {
                origin: "environment".into(),
                key: env::DELETE_STALE_SEEDS.into(),
                value: format!("{raw:?}"),
                expected: "expected true or false".into(),
            })?;
        }
        if let Some(key) = env.var(env::API_KEY).filter(|s| !s.trim().is_empty()) {
            self.api_key = Some(Secret::new(key.trim().to_string()));
        }
        Ok(())
    }

    /// The scan id, or an error saying how to set it.
    pub(crate) fn require_scan_id(&self) -> Result<&str, ConfigError> {
        self.scan_id.as_deref().ok_or_else(|| ConfigError::Missing {
            key: "scan_id".into(),
            hint: format!("set scan_id in {} or the SCAN_ID environment variable", self.origin),
        })
    }

    /// The ASM API key, or an error saying how to set it.
    pub(crate) fn require_api_key(&self) -> Result<&Secret, ConfigError> {
        self.api_key.as_ref().ok_or_else(|| ConfigError::Missing {
            key: env::API_KEY.into(),
            hint: "set the API_KEY environment variable to the Hexiosec ASM API key".into(),
        })
    }
}

/// The file from `--config` (default `./config.yml`) and its name; `None` when the implicit
/// default is missing and not required (`plan`).
fn read_config_file(options: &LoadOptions) -> Result<(Option<String>, String), ConfigError> {
    let explicit = options.file.is_some();
    let path = options.file.clone().unwrap_or_else(|| PathBuf::from("config.yml"));
    match read_file(&path) {
        Ok(text) => Ok((Some(text), path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit && !options.require_file => {
            Ok((None, "defaults".to_string()))
        }
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                format!("not found (and {} is not set)", env::CONNECTOR_CONFIG)
            } else {
                format!("cannot read: {e}")
            };
            Err(ConfigError::Read {
                origin: path.display().to_string(),
                message,
            })
        }
    }
}

fn read_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn parse_yaml(text: &str, origin: &str) -> Result<Value, ConfigError> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| ConfigError::Yaml {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

/// Reads the file's shape; `ignored` gets the full path of every key no struct names.
fn read_raw(root: &Value, origin: &str, ignored: &mut Vec<String>) -> Result<RawConfig, ConfigError> {
    let mut note = |path: serde_ignored::Path| ignored.push(ignored_key(&path));
    let tracked = serde_ignored::Deserializer::new(root, &mut note);
    serde_path_to_error::deserialize(tracked).map_err(|e| {
        let key = match e.path().to_string() {
            top if top == "." => "(top level)".to_string(),
            path => path,
        };
        let text = e.into_inner().to_string();
        match split_rejection(&text) {
            Some((value, expected)) => ConfigError::Invalid {
                origin: origin.to_string(),
                key,
                value: value.to_string(),
                expected: expected.to_string(),
            },
            None => ConfigError::Read {
                origin: origin.to_string(),
                message: format!("{key}: {text}"),
            },
        }
    })
}

/// A key's path as the errors spell it: `azure.services.check_lambda`, `azure.tenants[0].x`.
fn ignored_key(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_key(parent)),
        Path::Map { parent, key } => match ignored_key(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => ignored_key(parent),
    }
}
