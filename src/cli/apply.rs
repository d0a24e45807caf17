//! `seedwatch apply`.

use std::path::Path;
use std::process::ExitCode;

use super::ApplyArgs;

pub async fn run(args: &ApplyArgs, config: Option<&Path>) -> ExitCode {
    let _ = (args, config);
    super::fail("seedwatch apply is not built yet")
}
