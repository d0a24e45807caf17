//! The client certificate credential's key material and its client assertion.
//!
//! `azure_identity` 1.x has a `ClientCertificateCredential` only behind a feature that links
//! OpenSSL, and it reads PKCS#12 only. seedwatch reads PEM or PKCS#12 itself and hands
//! `azure_identity`'s `ClientAssertionCredential` a signed JWT bearer assertion (RFC 7523), as
//! Entra ID describes it: <https://learn.microsoft.com/entra/identity-platform/certificate-credentials>
//! (PS256, the certificate's SHA-256 thumbprint in `x5t#S256`, its SHA-1 thumbprint in `x5t`,
//! `aud` the token endpoint, `iss` and `sub` the client id, ten minutes of validity).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions};
use azure_identity::{ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode as _;
use rustls_pki_types::pem::{PemObject, SectionKind};

use crate::domain::secret::Secret;

/// Why a certificate file cannot be used. No text holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileProblem {
    #[error("cannot read: {0}")]
    Unreadable(String),
    #[error("holds no certificate")]
    NoCertificate,
    #[error("holds no private key")]
    NoPrivateKey,
    #[error("no certificate in it matches its private key")]
    NoMatchingCertificate,
    #[error("its private key is not a usable RSA key ({0}); Entra ID certificate credentials take RSA keys")]
    RejectedKey(String),
    #[error("its private key is {0}; Entra ID certificate credentials take RSA keys")]
    NotRsa(&'static str),
    #[error(
        "its private key is encrypted; AZURE_CLIENT_CERTIFICATE_PASSWORD opens PKCS#12 files only: give a PEM \
         file with an unencrypted key, or a PKCS#12 file"
    )]
    EncryptedPem,
    #[error("PEM block {block} is not valid: {message}")]
    BadPemBlock { block: usize, message: String },
    #[error("is neither PEM nor PKCS#12 (DER or base64)")]
    NeitherPemNorPkcs12,
    #[error("the PKCS#12 password does not open it (AZURE_CLIENT_CERTIFICATE_PASSWORD)")]
    WrongPassword,
    #[error("is not a PKCS#12 file seedwatch can read: {0}")]
    UnreadablePkcs12(String),
    /// Every private key in the file was unusable, each for its reason.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NoUsableKey(Vec<KeyFileProblem>),
}

/// Why the client certificate credential cannot be built or used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The file named by the caller.
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: KeyFileProblem },
    /// The file named by `AZURE_CLIENT_CERTIFICATE_PATH`.
    #[error("AZURE_CLIENT_CERTIFICATE_PATH {}: {problem}", path.display())]
    CertificatePath { path: PathBuf, problem: KeyFileProblem },
    #[error("{0} is not set (azure.credential = client_certificate)")]
    NotSet(&'static str),
    #[error("authority {authority}: {error}")]
    Authority { authority: String, error: url::ParseError },
    #[error("tenant {tenant}: {error}")]
    Tenant { tenant: String, error: url::ParseError },
    #[error("the private key could not sign the client assertion")]
    Signing,
    #[error("{0}")]
    Identity(azure_core::Error),
}

/// How long an assertion is valid; Entra ID asks for 5 to 10 minutes.
const ASSERTION_LIFETIME_SECONDS: i64 = 600;

/// An RSA private key and the certificate Entra ID knows it by.
pub struct ClientCertificate {
    key: KeyPair,
    /// Base64url SHA-1 thumbprint of the certificate's DER encoding (`x5t`).
    sha1_thumbprint: String,
    /// Base64url SHA-256 thumbprint of the certificate's DER encoding (`x5t#S256`).
    sha256_thumbprint: String,
    rng: SystemRandom,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.sha256_thumbprint)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Reads a PEM file (certificates and an unencrypted PKCS#8 or PKCS#1 RSA key) or a
    /// PKCS#12 file (DER, or base64 as Key Vault stores it) opened with `password` (none means
    /// the empty password). The error names the file and never holds key material.
    pub fn load(path: &Path, password: Option<&Secret>) -> Result<ClientCertificate, CertificateError> {
        let at = |problem: KeyFileProblem| CertificateError::File {
            path: path.to_path_buf(),
            problem,
        };
        let bytes = std::fs::read(path).map_err(|e| at(KeyFileProblem::Unreadable(e.to_string())))?;
        let (certs, keys) = if looks_like_pem(&bytes) {
            read_pem(&bytes).map_err(at)?
        } else {
            read_pkcs12(&bytes, password).map_err(at)?
        };
        ClientCertificate::from_parts(&certs, keys).map_err(at)
    }

    /// The certificate among `certs` whose public key is that of the first usable key.
    fn from_parts(certs: &[Vec<u8>], keys: Vec<PrivateKey>) -> Result<ClientCertificate, KeyFileProblem> {
        if certs.is_empty() {
            return Err(KeyFileProblem::NoCertificate);
        }
        let mut reasons = Vec::new();
        for private in keys {
            let key = match private.rsa() {
                Ok(key) => key,
                Err(reason) => {
                    reasons.push(reason);
                    continue;
                }
            };
            let public = key.public_key().as_ref().to_vec();
            if let Some(cert) = certs
                .iter()
                .find(|der| rsa_public_key_of(der).as_deref() == Some(&public[..]))
            {
                return Ok(ClientCertificate {
                    key,
                    sha1_thumbprint: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert)),
                    sha256_thumbprint: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, cert)),
                    rng: SystemRandom::new(),
                });
            }
            reasons.push(KeyFileProblem::NoMatchingCertificate);
        }
        match reasons.len() {
            0 => Err(KeyFileProblem::NoPrivateKey),
            1 => Err(reasons.remove(0)),
            _ => Err(KeyFileProblem::NoUsableKey(reasons)),
        }
    }

    /// Base64url SHA-256 thumbprint of the certificate (`x5t#S256`).
    pub fn sha256_thumbprint(&self) -> &str {
        &self.sha256_thumbprint
    }

    /// A signed client assertion for `client_id` at the token endpoint `audience`, issued at
    /// `now` (Unix seconds) with the unique id `jti`.
    pub(crate) fn assertion(
        &self,
        audience: &str,
        client_id: &str,
        now: i64,
        jti: &str,
    ) -> Result<String, CertificateError> {
        let header = serde_json::json!({
            "alg": "PS256",
            "typ": "JWT",
            "x5t": self.sha1_thumbprint,
            "x5t#S256": self.sha256_thumbprint,
        });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PSS_SHA256, &self.rng, signing_input.as_bytes(), &mut signature)
            .map_err(|_| CertificateError::Signing)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A private key as found in the file, not yet checked to be RSA.
enum PrivateKey {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
    Other(&'static str),
}

impl PrivateKey {
    fn rsa(&self) -> Result<KeyPair, KeyFileProblem> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyFileProblem::RejectedKey(e.to_string());
        match self {
            PrivateKey::Pkcs8(der) => KeyPair::from_pkcs8(der).map_err(rejected),
            PrivateKey::Pkcs1(der) => KeyPair::from_der(der).map_err(rejected),
            PrivateKey::Other(kind) => Err(KeyFileProblem::NotRsa(kind)),
        }
    }
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

type Material = (Vec<Vec<u8>>, Vec<PrivateKey>);

fn read_pem(bytes: &[u8]) -> Result<Material, KeyFileProblem> {
    if bytes.windows(31).any(|w| w == b"-----BEGIN ENCRYPTED PRIVATE KEY") {
        return Err(KeyFileProblem::EncryptedPem);
    }
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for (at, section) in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes).enumerate() {
        let (kind, der) = section.map_err(|e| KeyFileProblem::BadPemBlock {
            block: at + 1,
            message: e.to_string(),
        })?;
        match kind {
            SectionKind::Certificate => certs.push(der),
            SectionKind::PrivateKey => keys.push(PrivateKey::Pkcs8(der)),
            SectionKind::RsaPrivateKey => keys.push(PrivateKey::Pkcs1(der)),
            SectionKind::EcPrivateKey => keys.push(PrivateKey::Other("an EC key")),
            _ => {}
        }
    }
    Ok((certs, keys))
}

fn read_pkcs12(bytes: &[u8], password: Option<&Secret>) -> Result<Material, KeyFileProblem> {
    // Key Vault keeps a PKCS#12 certificate as the base64 text of the file.
    let decoded;
    let der = if bytes.first() == Some(&0x30) {
        bytes
    } else {
        let text: Vec<u8> = bytes.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        decoded = STANDARD
            .decode(&text)
            .map_err(|_| KeyFileProblem::NeitherPemNorPkcs12)?;
        &decoded[..]
    };
    let password = password.map(|p| p.expose()).unwrap_or("");
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(der, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => KeyFileProblem::WrongPassword,
        other => KeyFileProblem::UnreadablePkcs12(other.to_string()),
    })?;
    let certs = archive.certs.iter().map(|bag| bag.cert.as_der().to_vec()).collect();
    let keys = archive
        .keys
        .iter()
        .map(|bag| PrivateKey::Pkcs8(bag.key.as_der().to_vec()))
        .collect();
    Ok((certs, keys))
}

/// The PKCS#1 `RSAPublicKey` inside a certificate's subject public key info.
fn rsa_public_key_of(cert_der: &[u8]) -> Option<Vec<u8>> {
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    spki.subject_public_key.as_bytes().map(<[u8]>::to_vec)
}

/// The assertion `azure_identity`'s `ClientAssertionCredential` asks for before each token
/// request: freshly signed, with a new `jti`.
#[derive(Debug, Clone)]
pub(crate) struct CertificateAssertion {
    certificate: Arc<ClientCertificate>,
    /// The token endpoint the assertion is for: `{authority}/{tenant}/oauth2/v2.0/token`.
    audience: String,
    client_id: String,
}

impl CertificateAssertion {
    pub(crate) fn new(
        certificate: Arc<ClientCertificate>,
        audience: String,
        client_id: String,
    ) -> CertificateAssertion {
        CertificateAssertion {
            certificate,
            audience,
            client_id,
        }
    }
}

#[async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _options: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let jti = uuid::Uuid::new_v4().to_string();
        self.certificate
            .assertion(&self.audience, &self.client_id, now, &jti)
            .map_err(|e| azure_core::Error::with_message(ErrorKind::Credential, e.to_string()))
    }
}

/// What the certificate credential is built from (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
/// `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_CERTIFICATE_PASSWORD`).
pub(crate) struct Inputs {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub path: Option<String>,
    pub password: Option<Secret>,
}

/// A `ClientAssertionCredential` whose assertions are signed with the certificate; errors name
/// the missing variable or the file, never key material.
pub(crate) fn credential(
    inputs: Inputs,
    authority: &str,
    client_options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>, CertificateError> {
    let required = |value: Option<String>, name: &'static str| value.ok_or(CertificateError::NotSet(name));
    let tenant = required(inputs.tenant_id, "AZURE_TENANT_ID")?;
    let client_id = required(inputs.client_id, "AZURE_CLIENT_ID")?;
    let path = required(inputs.path, "AZURE_CLIENT_CERTIFICATE_PATH")?;
    let certificate = ClientCertificate::load(Path::new(&path), inputs.password.as_ref()).map_err(|e| match e {
        CertificateError::File { path, problem } => CertificateError::CertificatePath { path, problem },
        other => other,
    })?;
    let audience = token_endpoint(authority, &tenant)?;
    let assertion = CertificateAssertion::new(Arc::new(certificate), audience, client_id.clone());
    let options = ClientAssertionCredentialOptions { client_options };
    let credential = ClientAssertionCredential::new(tenant, client_id, assertion, Some(options))
        .map_err(CertificateError::Identity)?;
    Ok(credential)
}

/// The token endpoint `azure_identity` posts to for `tenant` at `authority` (the same join).
pub(crate) fn token_endpoint(authority: &str, tenant: &str) -> Result<String, CertificateError> {
    let base = url::Url::parse(authority).map_err(|error| CertificateError::Authority {
        authority: authority.to_string(),
        error,
    })?;
    base.join(&format!("/{tenant}/oauth2/v2.0/token"))
        .map(String::from)
        .map_err(|error| CertificateError::Tenant {
            tenant: tenant.to_string(),
            error,
        })
}
