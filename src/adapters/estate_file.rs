//! Exported estates on disk: opens the file and hands its bytes to the domain's streaming
//! reader ([`crate::domain::estate`]), which does no I/O of its own.

use std::fs::File;
use std::path::Path;

use crate::domain::check::EnabledChecks;
use crate::domain::estate::{self, Estate, EstateError};
use crate::domain::plan::{Plan, plan_estate};

/// Opens the estate file at `path`, with the name its errors will carry.
fn open(path: &Path) -> Result<(File, String), EstateError> {
    let file = path.display().to_string();
    let opened = File::open(path).map_err(|e| EstateError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    Ok((opened, file))
}

/// Reads the estate file at `path`, keeping every resource whole.
pub fn read_estate_file(path: &Path) -> Result<Estate, EstateError> {
    let (opened, file) = open(path)?;
    estate::read_estate(opened, &file)
}

/// Reads the estate file at `path` for extraction only (bodies extraction ignores dropped).
pub fn read_estate_file_for_extraction(path: &Path) -> Result<Estate, EstateError> {
    let (opened, file) = open(path)?;
    estate::read_estate_for_extraction(opened, &file)
}

/// Plans the estate file at `path` while streaming it: memory grows with the seeds, not with
/// the file.
pub(crate) fn plan_estate_file(path: &Path, checks: &EnabledChecks) -> Result<Plan, EstateError> {
    let (opened, file) = open(path)?;
    plan_estate(opened, &file, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.json");
        let error = read_estate_file(&path).unwrap_err().to_string();
        assert!(error.contains("absent.json"), "{error}");
        let error = plan_estate_file(&path, &EnabledChecks::all()).unwrap_err().to_string();
        assert!(error.contains("absent.json"), "{error}");
    }

    #[test]
    fn a_file_is_read_and_planned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("estate.json");
        let pip = r#"{"id": "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip", "type": "Microsoft.Network/publicIPAddresses", "properties": {"ipAddress": "20.1.2.3"}}"#;
        std::fs::write(&path, format!("[{pip}]")).unwrap();
        assert_eq!(read_estate_file(&path).unwrap().resources.len(), 1);
        assert_eq!(read_estate_file_for_extraction(&path).unwrap().resources.len(), 1);
        let plan = plan_estate_file(&path, &EnabledChecks::all()).unwrap();
        let names: Vec<&str> = plan.seeds.iter().map(|s| s.seed.name()).collect();
        assert_eq!(names, ["20.1.2.3"]);
    }
}
