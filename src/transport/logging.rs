//! Log lines for the Functions host (and Lambda, whose runtime reads the same streams): one JSON object per line through `tracing`, info and
//! below on stdout, warnings and errors on stderr (the host treats stderr lines as errors).
//! Lines logged inside an invocation carry the invocation's span fields (`invocation_id`,
//! `function`).

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Installs the JSON subscriber. `LOG_LEVEL` (an `EnvFilter` directive, default `info`) sets
/// the level. Calling it twice is harmless.
pub fn init() {
    let filter = std::env::var(crate::config::env::LOG_LEVEL).unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr.with_max_level(Level::WARN).or_else(std::io::stdout);
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}
