//! The Hexiosec ASM API.

pub mod client;

use async_trait::async_trait;

use crate::seed::{Seed, SeedKind};

pub use client::AsmClient;

/// A seed as ASM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsmSeed {
    pub id: String,
    pub name: String,
    pub kind: Option<SeedKind>,
    pub tags: Vec<String>,
}

impl AsmSeed {
    /// Whether the seed carries `tag` (compared ignoring ASCII case, in case ASM folds tags).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.trim().eq_ignore_ascii_case(tag.trim()))
    }

    /// The seed after normalisation (`WWW.Contoso.com.` is `www.contoso.com`), or `None` when
    /// the name does not normalise (such seeds are left alone). Without a listed type the kind
    /// is guessed from the name: a CIDR block is a range, anything else a host or address.
    pub fn normalised(&self) -> Option<Seed> {
        match self.kind {
            Some(kind) => Seed::from_stored(&self.name, kind).ok(),
            None => Seed::from_host_value(&self.name)
                .or_else(|_| Seed::from_range(&self.name))
                .ok(),
        }
    }
}

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
