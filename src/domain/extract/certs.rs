//! Host names from Application Gateway certificates.
//!
//! `sslCertificates[].properties.publicCertData` is base64 of a PKCS#7 SignedData (certs-only,
//! like a `.p7b`), not a bare certificate. A bare DER X.509 certificate and PEM text (of
//! certificates or of a PKCS#7) are accepted too. Names are the subject CN and the DNS SANs of
//! leaf certificates; CA certificates (basicConstraints `cA: true`) are skipped. Each embedded
//! certificate is decoded on its own, so one bad certificate costs only its own names.

use base64::Engine;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::oid::AssociatedOid;
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Why a certificate (or the whole `publicCertData`) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not valid base64")]
    Base64,
    #[error("not a PKCS#7 bundle, an X.509 certificate or PEM: {0}")]
    Format(String),
    #[error("PEM block {index} is not valid: {reason}")]
    Pem { index: usize, reason: String },
    #[error("certificate {index} in the bundle is not a valid X.509 certificate: {reason}")]
    Certificate { index: usize, reason: String },
}

/// The names found in one `publicCertData`, and the certificates that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    /// CN and DNS SAN values of the leaf certificates, as written (not yet normalised), in order,
    /// without exact duplicates.
    pub names: Vec<String>,
    /// How many CA certificates were skipped.
    pub ca_certificates: usize,
    /// One entry per unreadable certificate; the others still count.
    pub errors: Vec<CertificateError>,
}

/// Reads `publicCertData`. `Err` means nothing in it could be read at all.
pub fn certificate_names(public_cert_data: &str) -> Result<CertificateNames, CertificateError> {
    let text = public_cert_data.trim();
    if text.starts_with("-----BEGIN") {
        return from_pem(text);
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| CertificateError::Base64)?;
    if bytes.starts_with(b"-----BEGIN") {
        let pem = String::from_utf8_lossy(&bytes);
        return from_pem(pem.trim());
    }
    from_der(&bytes)
}

/// A DER blob: a PKCS#7 ContentInfo or a single certificate.
fn from_der(bytes: &[u8]) -> Result<CertificateNames, CertificateError> {
    let mut out = CertificateNames::default();
    match Certificate::from_der(bytes) {
        Ok(certificate) => {
            out.add(&certificate);
            Ok(out)
        }
        Err(cert_error) => match pkcs7_certificates(bytes) {
            Ok(certificates) => {
                for (index, item) in certificates.into_iter().enumerate() {
                    match item {
                        Ok(certificate) => out.add(&certificate),
                        Err(reason) => out.errors.push(CertificateError::Certificate { index, reason }),
                    }
                }
                Ok(out)
            }
            Err(pkcs7_error) => Err(CertificateError::Format(format!(
                "as PKCS#7: {pkcs7_error}; as X.509: {cert_error}"
            ))),
        },
    }
}

/// PEM text with one or more `CERTIFICATE` or `PKCS7` blocks.
fn from_pem(text: &str) -> Result<CertificateNames, CertificateError> {
    let mut out = CertificateNames::default();
    let mut blocks = 0;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        blocks += 1;
        let index = blocks - 1;
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            out.errors.push(CertificateError::Pem {
                index,
                reason: "unterminated BEGIN line".into(),
            });
            break;
        };
        let label = &after[..label_end];
        let body_and_rest = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_and_rest.find(&end_marker) else {
            out.errors.push(CertificateError::Pem {
                index,
                reason: format!("no END line for {label}"),
            });
            break;
        };
        let body: String = body_and_rest[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        rest = &body_and_rest[body_end + end_marker.len()..];
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) else {
            out.errors.push(CertificateError::Pem {
                index,
                reason: "body is not valid base64".into(),
            });
            continue;
        };
        match from_der(&der) {
            Ok(found) => out.merge(found),
            Err(e) => out.errors.push(CertificateError::Pem {
                index,
                reason: e.to_string(),
            }),
        }
    }
    if blocks == 0 {
        return Err(CertificateError::Format("no PEM block found".into()));
    }
    if out.names.is_empty() && out.ca_certificates == 0 && out.errors.len() == blocks {
        // Nothing readable at all: report the first reason for the whole value.
        return Err(out.errors.swap_remove(0));
    }
    Ok(out)
}

/// The certificates of a certs-only SignedData, each decoded separately.
fn pkcs7_certificates(bytes: &[u8]) -> Result<Vec<Result<Certificate, String>>, String> {
    let content_info = cms::content_info::ContentInfo::from_der(bytes).map_err(|e| e.to_string())?;
    if content_info.content_type != SIGNED_DATA {
        return Err(format!("content type {} is not signedData", content_info.content_type));
    }
    let signed_data = content_info.content.value();
    let mut reader = SliceReader::new(signed_data).map_err(|e| e.to_string())?;
    let certificates_tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    //   certificates [0] IMPLICIT CertificateSet OPTIONAL, crls [1] ..., signerInfos }
    while !reader.is_finished() {
        let element = AnyRef::decode(&mut reader).map_err(|e| e.to_string())?;
        if element.tag() != certificates_tag {
            continue;
        }
        let mut set = SliceReader::new(element.value()).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while !set.is_finished() {
            let choice = AnyRef::decode(&mut set).map_err(|e| e.to_string())?;
            if choice.tag() != Tag::Sequence {
                // Attribute or other certificate formats: not X.509, nothing to read.
                continue;
            }
            let decoded = choice
                .to_der()
                .map_err(|e| e.to_string())
                .and_then(|der| Certificate::from_der(&der).map_err(|e| e.to_string()));
            out.push(decoded);
        }
        return Ok(out);
    }
    Ok(Vec::new())
}

impl CertificateNames {
    fn add(&mut self, certificate: &Certificate) {
        let tbs = &certificate.tbs_certificate;
        let mut sans = Vec::new();
        for extension in tbs.extensions.iter().flatten() {
            if extension.extn_id == BasicConstraints::OID {
                if BasicConstraints::from_der(extension.extn_value.as_bytes()).is_ok_and(|bc| bc.ca) {
                    self.ca_certificates += 1;
                    return;
                }
            } else if extension.extn_id == SubjectAltName::OID
                && let Ok(san) = SubjectAltName::from_der(extension.extn_value.as_bytes())
            {
                for name in san.0 {
                    if let GeneralName::DnsName(dns) = name {
                        sans.push(dns.as_str().to_string());
                    }
                }
            }
        }
        for rdn in &tbs.subject.0 {
            for attribute in rdn.0.iter() {
                if attribute.oid == COMMON_NAME
                    && let Some(cn) = directory_string(&attribute.value)
                {
                    self.push(cn);
                }
            }
        }
        for san in sans {
            self.push(san);
        }
    }

    fn push(&mut self, name: String) {
        if !self.names.contains(&name) {
            self.names.push(name);
        }
    }

    fn merge(&mut self, other: CertificateNames) {
        for name in other.names {
            self.push(name);
        }
        self.ca_certificates += other.ca_certificates;
        self.errors.extend(other.errors);
    }
}

/// A DirectoryString attribute value as text (UTF8, Printable, IA5, Teletex as Latin-1, BMP).
fn directory_string(value: &der::Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_string)
        }
        Tag::TeletexString => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = include_str!("../../../tests/fixtures/certs/leaf-and-ca.p7b.b64");
    const DER: &str = include_str!("../../../tests/fixtures/certs/leaf.der.b64");
    const PEM: &str = include_str!("../../../tests/fixtures/certs/leaf.pem");
    const PEM_PKCS7: &str = include_str!("../../../tests/fixtures/certs/leaf.p7b.pem");
    const CA: &str = include_str!("../../../tests/fixtures/certs/ca.pem");

    #[test]
    fn pkcs7_bundle_yields_leaf_names_and_skips_the_ca() {
        let found = certificate_names(BUNDLE).unwrap();
        assert_eq!(
            found.names,
            ["gateway.contoso.com", "checkout.contoso.com", "*.shop.contoso.com"]
        );
        assert_eq!(found.ca_certificates, 1);
        assert!(found.errors.is_empty());
    }

    #[test]
    fn der_pem_and_pem_pkcs7_are_accepted() {
        assert_eq!(certificate_names(DER).unwrap().names, ["legacy.contoso.com"]);
        assert_eq!(
            certificate_names(PEM).unwrap().names,
            ["pem.contoso.com", "alt.contoso.com"]
        );
        assert_eq!(
            certificate_names(PEM_PKCS7).unwrap().names,
            ["pem.contoso.com", "alt.contoso.com"]
        );
        let b64_pem = base64::engine::general_purpose::STANDARD.encode(PEM);
        assert_eq!(certificate_names(&b64_pem).unwrap().names.len(), 2);
        let ca = certificate_names(CA).unwrap();
        assert!(ca.names.is_empty());
        assert_eq!(ca.ca_certificates, 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(certificate_names("not base64 !!!"), Err(CertificateError::Base64));
        assert!(matches!(
            certificate_names("aGVsbG8gd29ybGQ="),
            Err(CertificateError::Format(_))
        ));
        assert!(certificate_names("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
        assert!(certificate_names("-----BEGIN CERTIFICATE-----\nAAAA").is_err());
        // Truncated bundle.
        let bytes = base64::engine::general_purpose::STANDARD.decode(BUNDLE.trim()).unwrap();
        let cut = base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 2]);
        assert!(certificate_names(&cut).is_err());
    }
}
