//! A fake Entra ID token endpoint over HTTPS on 127.0.0.1:0, with its own test CA.
//!
//! `POST /{tenant}/oauth2/v2.0/token` (client credentials grant, form-encoded), as Entra ID:
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>.
//! - The tenant and the application must be registered, with a secret or a certificate.
//! - A client secret must match; a client assertion must be a JWT bearer assertion
//!   (<https://learn.microsoft.com/entra/identity-platform/certificate-credentials>): `PS256`
//!   (or `RS256`), `x5t#S256` (or `x5t`) naming a certificate registered on the application,
//!   signed with that certificate's key, `aud` this endpoint's URL, `iss` = `sub` = client id,
//!   inside `nbf`..`exp`, with a `jti`.
//! - The scope must end in `/.default` (client credentials).
//!
//! Errors are Entra ID's JSON (`error`, `error_description` with its AADSTS code,
//! `error_codes`). The server certificate is issued by a CA the test trusts through
//! `SSL_CERT_FILE` ([`FakeEntra::write_ca_bundle`]).
//!
//! [`BlackHole`] accepts connections and never answers: an unreachable authority.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::Decode as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};

/// How an application proves itself.
#[derive(Clone)]
enum Proof {
    Secret(String),
    /// Certificates (DER) registered on the application.
    Certificates(Vec<Vec<u8>>),
}

/// One token request the fake granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
    /// `secret`, or `certificate:{x5t#S256 of the certificate used}`.
    pub proof: String,
}

#[derive(Default)]
struct Shared {
    base: String,
    /// (tenant, client id) → proof.
    apps: Mutex<HashMap<(String, String), Proof>>,
    grants: Mutex<Vec<Grant>>,
    refusals: Mutex<Vec<String>>,
    access_token: Mutex<Option<String>>,
    /// tenant → the access token granted in it (wins over `access_token`).
    tenant_tokens: Mutex<HashMap<String, String>>,
}

pub struct FakeEntra {
    shared: Arc<Shared>,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEntra {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test CA and a server certificate for `127.0.0.1` and `localhost` it issued.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert: rustls_pki_types::CertificateDer<'static>,
    pub server_key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "seedwatch test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let server = params.signed_by(&server_key, &ca).unwrap();
        TestPki {
            ca_pem: ca.pem(),
            server_cert: server.der().clone(),
            server_key: rustls_pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        }
    }

    fn tls_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert.clone()], self.server_key.clone_key())
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Serves `app` over TLS on `listener` until the task is aborted.
pub fn serve_tls(listener: tokio::net::TcpListener, pki: &TestPki, app: Router) -> tokio::task::JoinHandle<()> {
    let acceptor = pki.tls_acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    })
}

impl FakeEntra {
    pub async fn start() -> FakeEntra {
        let pki = TestPki::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = Arc::new(Shared {
            base,
            ..Default::default()
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(shared.clone());
        let task = serve_tls(listener, &pki, app);
        FakeEntra {
            shared,
            ca_pem: pki.ca_pem,
            task,
        }
    }

    /// The authority host: `https://127.0.0.1:{port}`.
    pub fn authority(&self) -> String {
        self.shared.base.clone()
    }

    /// Writes the CA bundle for `SSL_CERT_FILE` into `dir`.
    pub fn write_ca_bundle(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }

    pub fn register_secret(&self, tenant: &str, client_id: &str, secret: &str) {
        self.register(tenant, client_id, Proof::Secret(secret.to_string()));
    }

    /// Registers a certificate (DER) as a credential of the application.
    pub fn register_certificate(&self, tenant: &str, client_id: &str, cert_der: &[u8]) {
        self.register(tenant, client_id, Proof::Certificates(vec![cert_der.to_vec()]));
    }

    fn register(&self, tenant: &str, client_id: &str, proof: Proof) {
        self.shared
            .apps
            .lock()
            .unwrap()
            .insert((tenant.to_lowercase(), client_id.to_lowercase()), proof);
    }

    /// The access token granted from now on (default `fake-entra-token-{n}`).
    pub fn issue(&self, access_token: &str) {
        *self.shared.access_token.lock().unwrap() = Some(access_token.to_string());
    }

    /// The access token granted in `tenant` from now on (several tenants, one issuer each).
    pub fn issue_in_tenant(&self, tenant: &str, access_token: &str) {
        self.shared
            .tenant_tokens
            .lock()
            .unwrap()
            .insert(tenant.to_lowercase(), access_token.to_string());
    }

    pub fn grants(&self) -> Vec<Grant> {
        self.shared.grants.lock().unwrap().clone()
    }

    /// The `error_description` of every refused request.
    pub fn refusals(&self) -> Vec<String> {
        self.shared.refusals.lock().unwrap().clone()
    }
}

/// Entra ID's error body.
fn refuse(shared: &Shared, status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let description = format!("AADSTS{code}: {description}");
    shared.refusals.lock().unwrap().push(description.clone());
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    });
    (status, Json(body)).into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    UrlPath(tenant): UrlPath<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let bad =
        |code: u32, description: &str| refuse(&shared, StatusCode::BAD_REQUEST, "invalid_request", code, description);
    for required in ["grant_type", "client_id", "scope"] {
        if form.get(required).is_none_or(|v| v.is_empty()) {
            return bad(
                900144,
                &format!("The request body must contain the following parameter: '{required}'."),
            );
        }
    }
    if form["grant_type"] != "client_credentials" {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let scope = form["scope"].clone();
    if !scope.ends_with("/.default") || scope.contains(' ') {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier."
            ),
        );
    }
    let client_id = form["client_id"].clone();
    let tenant_known = shared
        .apps
        .lock()
        .unwrap()
        .keys()
        .any(|(t, _)| *t == tenant.to_lowercase());
    if !tenant_known {
        return bad(90002, &format!("Tenant '{tenant}' not found."));
    }
    let proof = shared
        .apps
        .lock()
        .unwrap()
        .get(&(tenant.to_lowercase(), client_id.to_lowercase()))
        .cloned();
    let Some(proof) = proof else {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
        );
    };
    let invalid_client =
        |code: u32, description: &str| refuse(&shared, StatusCode::UNAUTHORIZED, "invalid_client", code, description);
    let proof_name = match (&proof, form.get("client_secret"), form.get("client_assertion")) {
        (Proof::Secret(expected), Some(given), None) if given == expected => "secret".to_string(),
        (Proof::Secret(_), Some(_), None) => return invalid_client(7000215, "Invalid client secret provided."),
        (Proof::Certificates(certs), None, Some(assertion)) => {
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return bad(
                    900144,
                    "The request body must contain the following parameter: 'client_assertion_type'.",
                );
            }
            let audience = format!("{}/{tenant}/oauth2/v2.0/token", shared.base);
            match check_assertion(assertion, certs, &audience, &client_id) {
                Ok(thumbprint) => format!("certificate:{thumbprint}"),
                Err((code, description)) => return invalid_client(code, &description),
            }
        }
        _ => {
            return invalid_client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
    };
    let mut grants = shared.grants.lock().unwrap();
    grants.push(Grant {
        tenant: tenant.clone(),
        client_id,
        scope,
        proof: proof_name,
    });
    let in_tenant = shared
        .tenant_tokens
        .lock()
        .unwrap()
        .get(&tenant.to_lowercase())
        .cloned();
    let access_token = in_tenant
        .or_else(|| shared.access_token.lock().unwrap().clone())
        .unwrap_or_else(|| format!("fake-entra-token-{}", grants.len()));
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access_token}))
        .into_response()
}

fn b64json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// Checks a client assertion against the application's certificates; the `x5t#S256` of the
/// one that signed it, or Entra ID's error code and description.
fn check_assertion(jwt: &str, certs: &[Vec<u8>], audience: &str, client_id: &str) -> Result<String, (u32, String)> {
    let malformed = |what: &str| (50027, format!("JWT token is invalid or malformed: {what}."));
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(malformed("not three parts"));
    };
    let header = b64json(header).ok_or_else(|| malformed("header"))?;
    let claims = b64json(claims).ok_or_else(|| malformed("claims"))?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed("signature"))?;
    if header["typ"] != "JWT" {
        return Err(malformed("typ"));
    }
    let algorithm: &dyn aws_lc_rs::signature::VerificationAlgorithm = match header["alg"].as_str() {
        Some("PS256") => &RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(malformed("alg")),
    };
    let thumbprint = |der: &[u8], alg: &'static aws_lc_rs::digest::Algorithm| {
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(alg, der))
    };
    let cert = certs
        .iter()
        .find(|der| match (header["x5t#S256"].as_str(), header["x5t"].as_str()) {
            (Some(s256), _) => thumbprint(der, &aws_lc_rs::digest::SHA256) == s256,
            (None, Some(s1)) => thumbprint(der, &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY) == s1,
            (None, None) => false,
        });
    let Some(cert) = cert else {
        return Err((700027, "Client assertion failed signature validation. The certificate with the identifier used to sign the client assertion is not registered on application.".into()));
    };
    // Both thumbprints, when both are sent, must name the same certificate.
    if let Some(s1) = header["x5t"].as_str()
        && thumbprint(cert, &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY) != s1
    {
        return Err(malformed("x5t does not match x5t#S256"));
    }
    let parsed = x509_cert::Certificate::from_der(cert).unwrap();
    let public_key = parsed
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let signed = &jwt[..jwt.rfind('.').unwrap()];
    UnparsedPublicKey::new(algorithm, public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| (700027, "Client assertion failed signature validation.".to_string()))?;
    if claims["aud"] != audience {
        return Err((
            700212,
            format!("The audience of the client assertion must be {audience}."),
        ));
    }
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err((
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.".into(),
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (Some(nbf), Some(exp)) = (claims["nbf"].as_i64(), claims["exp"].as_i64()) else {
        return Err(malformed("nbf and exp"));
    };
    if nbf > now + 300 || exp <= now {
        return Err((700024, "Client assertion is not within its valid time range.".into()));
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err(malformed("jti"));
    }
    Ok(thumbprint(cert, &aws_lc_rs::digest::SHA256))
}

/// Accepts TCP connections and never answers (nor completes a TLS handshake).
pub struct BlackHole {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        BlackHole { port, task }
    }

    /// An authority host that never answers.
    pub fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}
