//! The Hexiosec ASM API.

pub(crate) mod client;

use async_trait::async_trait;

use crate::domain::seed::Seed;

pub use crate::domain::seed::AsmSeed;
pub use client::AsmClient;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// ASM already holds the seed: counts as done.
    AlreadyExists,
    /// A 400 with a `code`: a warning for this seed, not the end of the run.
    Rejected {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// 404: counts as done.
    AlreadyGone,
}

#[derive(Debug, thiserror::Error)]
pub enum AsmError {
    #[error("the ASM API key was rejected ({status})")]
    Unauthorized { status: u16 },
    #[error("scan {scan_id} was not found in ASM")]
    ScanNotFound { scan_id: String },
    #[error("{status} from ASM {what}: {message}")]
    Http { status: u16, what: String, message: String },
    #[error("cannot reach ASM ({what}): {message}")]
    Transport { what: String, message: String },
    #[error("unexpected response from ASM {what}: {message}")]
    BadResponse { what: String, message: String },
}

/// One scan of the ASM API.
#[async_trait]
pub trait AsmApi: Send + Sync {
    /// `GET /auth`: the key is valid.
    async fn check_auth(&self) -> Result<(), AsmError>;
    /// `GET /v1/scans/{id}`: the scan exists.
    async fn check_scan(&self) -> Result<(), AsmError>;
    /// `GET /v1/scans/{id}/seeds?expand=tags`.
    async fn list_seeds(&self) -> Result<Vec<AsmSeed>, AsmError>;
    /// `POST /v1/scans/{id}/seeds`.
    async fn add_seed(&self, seed: &Seed, tags: &[String]) -> Result<AddOutcome, AsmError>;
    /// `DELETE /v1/scans/{id}/seeds/{seedId}`.
    async fn delete_seed(&self, seed_id: &str) -> Result<DeleteOutcome, AsmError>;
}
