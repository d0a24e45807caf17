//! Client secret and client certificate credentials end to end against a fake Entra ID token
//! endpoint over HTTPS, trusted through `SSL_CERT_FILE`; the configurable authority; token
//! requests bounded by `http.timeout`.

use crate::support::{cli, fake_azure, fake_entra};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use base64::Engine as _;
use fake_entra::{BlackHole, FakeEntra};
use seedwatch::adapters::azure::certificate::ClientCertificate;
use seedwatch::adapters::azure::credential::{self, CredentialOptions};
use seedwatch::config::Config;
use seedwatch::domain::secret::Secret;
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-0000-4000-8000-000000000001";
const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const SCOPE: &str = "https://management.azure.com/.default";

/// An RSA application certificate (self-signed, as Entra ID accepts) and its key.
struct AppCert {
    der: Vec<u8>,
    pem: String,
    key_pkcs8: Vec<u8>,
}

impl AppCert {
    fn new(name: &str) -> AppCert {
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let key_pkcs8 = rsa.as_der().unwrap().as_ref().to_vec();
        let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(key_pkcs8.clone());
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        AppCert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pkcs8,
        }
    }

    fn key_pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.key_pkcs8);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// A PEM file: the certificate, then the key (as `openssl` and `az` write them).
    fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("app.pem");
        std::fs::write(&path, format!("{}{}", self.pem, self.key_pem())).unwrap();
        path
    }

    fn pkcs12(&self, password: &str, algorithm: p12_keystore::EncryptionAlgorithm) -> Vec<u8> {
        let mut store = p12_keystore::KeyStore::new();
        let chain = p12_keystore::PrivateKeyChain::new(
            "app",
            p12_keystore::PrivateKey::from_der(&self.key_pkcs8).unwrap(),
            [p12_keystore::Certificate::from_der(&self.der).unwrap()],
        );
        store.add_entry("app", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).encryption_algorithm(algorithm).write().unwrap()
    }

    fn sha256_thumbprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }
}

/// The process environment of a test run: only what is given (never the real one).
fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn settings(azure: Value, http_timeout: &str, env: &HashMap<String, String>) -> seedwatch::config::AzureSettings {
    let yaml = json!({"azure": azure, "http": {"timeout": http_timeout}});
    Config::from_value(&yaml, "test", env).unwrap().azure
}

fn options(timeout: Duration) -> CredentialOptions {
    CredentialOptions {
        http_timeout: Some(timeout),
        retry: Some(azure_core::http::RetryOptions::none()),
        ..Default::default()
    }
}

async fn bearer(azure: Value, vars: &HashMap<String, String>) -> Result<Secret, String> {
    let settings = settings(azure, "20s", vars);
    let tokens =
        credential::token_source(&settings, vars, options(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    tokens.bearer(SCOPE).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_client_secret_gets_a_token_from_an_https_authority_trusted_through_ssl_cert_file() {
    let entra = FakeEntra::start().await;
    entra.register_secret(TENANT, CLIENT, "s3cret-value");
    let dir = tempfile::tempdir().unwrap();
    let bundle = entra.write_ca_bundle(dir.path());
    let azure = json!({"credential": "client_secret", "endpoints": {"authority": entra.authority()}});
    let mut vars = env(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", "s3cret-value"),
    ]);

    // Without the bundle the private CA is not trusted: no token, and the error says TLS.
    let untrusted = bearer(azure.clone(), &vars).await.unwrap_err();
    assert!(untrusted.contains("client secret"), "{untrusted}");
    assert!(entra.grants().is_empty());

    vars.insert("SSL_CERT_FILE".into(), bundle.display().to_string());
    let token = bearer(azure.clone(), &vars).await.unwrap();
    assert_eq!(token.expose(), "fake-entra-token-1");
    let grants = entra.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0].tenant.as_str(), grants[0].proof.as_str()),
        (TENANT, "secret")
    );
    assert_eq!(grants[0].scope, SCOPE);

    // A wrong secret: Entra ID's refusal, named, and the secret never in the error.
    vars.insert("AZURE_CLIENT_SECRET".into(), "wrong-secret-value".into());
    let refused = bearer(azure, &vars).await.unwrap_err();
    assert!(refused.contains("AADSTS7000215"), "{refused}");
    assert!(!refused.contains("wrong-secret-value"), "{refused}");
}

/// A certificate credential's environment for `path`, trusting the fake's CA.
fn certificate_env(entra: &FakeEntra, dir: &Path, path: &Path) -> HashMap<String, String> {
    let bundle = entra.write_ca_bundle(dir);
    env(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap()),
        ("SSL_CERT_FILE", bundle.to_str().unwrap()),
    ])
}

#[tokio::test]
async fn a_pem_certificate_signs_an_assertion_the_authority_accepts_and_auto_chooses_it() {
    let entra = FakeEntra::start().await;
    let app = AppCert::new("seedwatch-app");
    entra.register_certificate(TENANT, CLIENT, &app.der);
    let dir = tempfile::tempdir().unwrap();
    let vars = certificate_env(&entra, dir.path(), &app.write_pem(dir.path()));

    let settings = settings(json!({"endpoints": {"authority": entra.authority()}}), "20s", &vars);
    assert_eq!(
        credential::choose_without_probe(&settings, &vars),
        Some(credential::Chosen::ClientCertificate)
    );
    let token = bearer(json!({"endpoints": {"authority": entra.authority()}}), &vars)
        .await
        .unwrap();
    assert!(token.expose().starts_with("fake-entra-token-"));
    let grants = entra.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].proof, format!("certificate:{}", app.sha256_thumbprint()));
    assert_eq!(grants[0].client_id, CLIENT);
}

#[tokio::test]
async fn pkcs12_certificates_with_and_without_a_password_get_tokens() {
    let entra = FakeEntra::start().await;
    let app = AppCert::new("seedwatch-app");
    entra.register_certificate(TENANT, CLIENT, &app.der);
    let dir = tempfile::tempdir().unwrap();
    let azure = json!({"credential": "client_certificate", "endpoints": {"authority": entra.authority()}});

    // AES-256 (PBES2), with a password.
    let aes = dir.path().join("app.pfx");
    std::fs::write(
        &aes,
        app.pkcs12(
            "pfx pass",
            p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
        ),
    )
    .unwrap();
    let mut vars = certificate_env(&entra, dir.path(), &aes);
    vars.insert("AZURE_CLIENT_CERTIFICATE_PASSWORD".into(), "pfx pass".into());
    bearer(azure.clone(), &vars).await.unwrap();

    // The wrong password: named by its variable, never quoted.
    vars.insert("AZURE_CLIENT_CERTIFICATE_PASSWORD".into(), "not-the-pass".into());
    let err = bearer(azure.clone(), &vars).await.unwrap_err();
    assert!(
        err.contains("AZURE_CLIENT_CERTIFICATE_PASSWORD") && err.contains("app.pfx"),
        "{err}"
    );
    assert!(!err.contains("not-the-pass"), "{err}");

    // Legacy 3DES and the empty password, as base64 text (how Key Vault keeps a PFX).
    let legacy = dir.path().join("legacy.pfx.b64");
    let der = app.pkcs12("", p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc);
    std::fs::write(&legacy, base64::engine::general_purpose::STANDARD.encode(der)).unwrap();
    let vars = certificate_env(&entra, dir.path(), &legacy);
    bearer(azure, &vars).await.unwrap();

    let expected = format!("certificate:{}", app.sha256_thumbprint());
    let proofs: Vec<String> = entra.grants().into_iter().map(|g| g.proof).collect();
    assert_eq!(proofs, vec![expected.clone(), expected]);
}

#[tokio::test]
async fn an_unregistered_certificate_is_refused_by_the_authority() {
    let entra = FakeEntra::start().await;
    entra.register_certificate(TENANT, CLIENT, &AppCert::new("registered").der);
    let other = AppCert::new("someone-else");
    let dir = tempfile::tempdir().unwrap();
    let vars = certificate_env(&entra, dir.path(), &other.write_pem(dir.path()));
    let err = bearer(
        json!({"credential": "client_certificate", "endpoints": {"authority": entra.authority()}}),
        &vars,
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("client certificate") && err.contains("AADSTS700027"),
        "{err}"
    );
    assert!(entra.grants().is_empty());
}

/// A JWT signed with `key_pkcs8` claiming `thumbprint`, for the fake's own strictness.
fn forged_assertion(key_pkcs8: &[u8], thumbprint: &str, audience: &str) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint})),
        b64(json!({"aud": audience, "iss": CLIENT, "sub": CLIENT, "jti": "j", "nbf": now, "exp": now + 600}))
    );
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(key_pkcs8).unwrap();
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    )
}

#[tokio::test]
async fn the_fake_authority_checks_the_signature_against_the_named_certificate() {
    let entra = FakeEntra::start().await;
    let registered = AppCert::new("registered");
    entra.register_certificate(TENANT, CLIENT, &registered.der);
    let attacker = AppCert::new("attacker");
    let dir = tempfile::tempdir().unwrap();
    let vars = env(&[("SSL_CERT_FILE", entra.write_ca_bundle(dir.path()).to_str().unwrap())]);
    let http = seedwatch::adapters::http::try_client(Duration::from_secs(20), &vars).unwrap();
    let endpoint = format!("{}/{TENANT}/oauth2/v2.0/token", entra.authority());
    let post = |assertion: String| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", CLIENT)
            .append_pair("scope", SCOPE)
            .append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .append_pair("client_assertion", &assertion)
            .finish();
        http.post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    // The registered thumbprint, the wrong key.
    let forged = forged_assertion(&attacker.key_pkcs8, &registered.sha256_thumbprint(), &endpoint);
    let response = post(forged).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([700027]));
    // The right key but another audience.
    let elsewhere = forged_assertion(
        &registered.key_pkcs8,
        &registered.sha256_thumbprint(),
        "https://login.example/t",
    );
    assert_eq!(post(elsewhere).send().await.unwrap().status(), 401);
    // The right key and audience.
    let good = forged_assertion(&registered.key_pkcs8, &registered.sha256_thumbprint(), &endpoint);
    assert_eq!(post(good).send().await.unwrap().status(), 200);
}

#[test]
fn certificate_files_that_cannot_work_are_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = AppCert::new("a");
    let b = AppCert::new("b");
    let mismatched = dir.path().join("mismatched.pem");
    std::fs::write(&mismatched, format!("{}{}", a.pem, b.key_pem())).unwrap();
    let err = ClientCertificate::load(&mismatched, None).unwrap_err().to_string();
    assert!(
        err.contains("mismatched.pem") && err.contains("matches its private key"),
        "{err}"
    );

    let ec_key = rcgen::KeyPair::generate().unwrap();
    let ec = dir.path().join("ec.pem");
    std::fs::write(&ec, format!("{}{}", a.pem, ec_key.serialize_pem())).unwrap();
    let err = ClientCertificate::load(&ec, None).unwrap_err().to_string();
    assert!(err.contains("RSA"), "{err}");

    let only_cert = dir.path().join("cert-only.pem");
    std::fs::write(&only_cert, &a.pem).unwrap();
    let err = ClientCertificate::load(&only_cert, None).unwrap_err().to_string();
    assert!(err.contains("no private key"), "{err}");

    let garbage = dir.path().join("garbage.pfx");
    std::fs::write(&garbage, "¿not a certificate?").unwrap();
    let err = ClientCertificate::load(&garbage, None).unwrap_err().to_string();
    assert!(
        err.contains("garbage.pfx") && err.contains("neither PEM nor PKCS#12"),
        "{err}"
    );

    let ok = ClientCertificate::load(&a.write_pem(dir.path()), None).unwrap();
    assert_eq!(ok.sha256_thumbprint(), a.sha256_thumbprint());
    assert!(!format!("{ok:?}").contains("PRIVATE"));
}

#[tokio::test]
async fn a_token_request_to_an_authority_that_never_answers_fails_naming_http_timeout() {
    let hole = BlackHole::start().await;
    let app = AppCert::new("seedwatch-app");
    let dir = tempfile::tempdir().unwrap();
    let path = app.write_pem(dir.path());
    let vars = env(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap()),
    ]);
    let settings = settings(json!({"endpoints": {"authority": hole.authority()}}), "1s", &vars);
    // azure_identity's default retries stay on: the bound holds for the whole request.
    let opts = CredentialOptions {
        http_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let tokens = credential::token_source(&settings, &vars, opts).unwrap();
    let started = Instant::now();
    let err = tokens.bearer(SCOPE).await.unwrap_err().to_string();
    assert!(err.contains("http.timeout") && err.contains(&hole.authority()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reads_the_estate_with_a_certificate_token_from_azure_authority_host() {
    let azure = fake_azure::FakeAzure::start().await;
    azure.load(cli::estate_items(cli::EXAMPLE_ESTATE));
    let entra = FakeEntra::start().await;
    let app = AppCert::new("seedwatch-app");
    entra.register_certificate(TENANT, CLIENT, &app.der);
    // Entra issues a token the fake Resource Manager accepts (its audience, not expired).
    entra.issue(&azure.arm_token_minted_for_test());
    let dir = tempfile::tempdir().unwrap();
    let pfx = dir.path().join("app.pfx");
    std::fs::write(
        &pfx,
        app.pkcs12("pw", p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256),
    )
    .unwrap();
    // An explicit cloud: AZURE_AUTHORITY_HOST still decides (azure_identity would ignore it).
    let yaml = format!(
        "azure:\n  cloud: public\n  credential: client_certificate\n  endpoints:\n    resource_manager: {}\nhttp:\n  retry_base_delay: 10ms\n  retry_max_delay: 50ms\n",
        azure.base_url()
    );
    let bundle = entra.write_ca_bundle(dir.path());
    let vars: Vec<(String, String)> = [
        ("CONNECTOR_CONFIG", yaml.as_str()),
        ("AZURE_AUTHORITY_HOST", entra.authority().as_str()),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.to_str().unwrap()),
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pw"),
        ("SSL_CERT_FILE", bundle.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let run = cli::run(&["plan", "--json"], dir.path(), vars).await;
    let plan = run.ok().json();
    assert!(plan["seeds"].as_array().unwrap().len() > 20, "{plan}");
    assert_eq!(plan["completeness"]["incomplete"], json!([]));
    assert_eq!(entra.grants().len(), 1, "one token, cached for every read");
}

#[test]
fn a_certificate_credential_without_its_settings_names_what_is_missing() {
    let vars = env(&[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", CLIENT)]);
    let azure = settings(json!({"credential": "client_certificate"}), "20s", &vars);
    let err = match credential::token_source(&azure, &vars, options(Duration::from_secs(20))) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    };
    assert!(
        err.contains("client certificate") && err.contains("AZURE_CLIENT_CERTIFICATE_PATH is not set"),
        "{err}"
    );
    let vars = env(&[("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/app.pem")]);
    let azure = settings(json!({"credential": "client_certificate"}), "20s", &vars);
    let err = match credential::token_source(&azure, &vars, options(Duration::from_secs(20))) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    };
    assert!(err.contains("AZURE_TENANT_ID is not set"), "{err}");
}
