//! `seedwatch serve`.

use std::path::Path;
use std::process::ExitCode;

use super::ServeArgs;

pub async fn run(args: &ServeArgs, config: Option<&Path>) -> ExitCode {
    let _ = (args, config);
    super::fail("seedwatch serve is not built yet")
}
