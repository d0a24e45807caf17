//! `seedwatch sync`.

use std::path::Path;
use std::process::ExitCode;

use super::SyncArgs;

pub async fn run(args: &SyncArgs, config: Option<&Path>) -> ExitCode {
    let _ = (args, config);
    super::fail("seedwatch sync is not built yet")
}
