//! `seedwatch plan`.

use std::path::Path;
use std::process::ExitCode;

use super::PlanArgs;

pub async fn run(args: &PlanArgs, config: Option<&Path>) -> ExitCode {
    let _ = (args, config);
    super::fail("seedwatch plan is not built yet")
}
