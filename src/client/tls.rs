//! Whom a client trusts: the TLS configuration of `wss://` (rustls) and the
//! certificate check of WebTransport (quiche, see [`crate::client::wt`]).
//!
//! Development servers present a self-signed certificate valid for at most
//! 14 days. A browser accepts one for WebTransport when the page pins its
//! SHA-256 in `serverCertificateHashes`: the certificate is trusted because
//! its exact bytes are expected, not because a CA vouches for it, and the
//! name, the chain and the CA flags are not looked at. [`Trust::CertificateHash`]
//! is that rule, for both transports here. The TLS handshake itself still
//! proves that the server holds the certificate's private key: the
//! handshake signature is always verified against the pinned certificate.
//!
//! [`Trust::RootPem`] is ordinary web PKI with the given roots (the dev
//! certificate itself works as its own root: it is self-signed and names
//! `localhost`, `127.0.0.1` and `::1`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::ClientError;

/// How a client decides that the server is the one it meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Accept exactly the certificate whose DER encoding has this SHA-256,
    /// as `serverCertificateHashes` does; nothing else about it is checked.
    CertificateHash([u8; 32]),
    /// Web PKI with these root certificates (PEM, one or more).
    RootPem(Vec<u8>),
}

impl Trust {
    /// From the hex hash `ludus serve` and `ludus cert` print (64 digits,
    /// colons allowed as in `openssl x509 -fingerprint`).
    pub fn certificate_hash_hex(hex_digits: &str) -> Result<Trust, ClientError> {
        let digits: String = hex_digits.chars().filter(|c| *c != ':').collect();
        let mut hash = [0u8; 32];
        hex::decode_to_slice(digits.trim(), &mut hash)
            .map_err(|_| ClientError::Tls(format!("not a SHA-256 in hex: {hex_digits:?}")))?;
        Ok(Trust::CertificateHash(hash))
    }

    /// Trust the certificate in a PEM file as a root.
    pub fn root_pem_file(path: &std::path::Path) -> Result<Trust, ClientError> {
        Ok(Trust::RootPem(std::fs::read(path)?))
    }
}

/// SHA-256 of a DER certificate.
pub fn certificate_sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// A rustls client configuration for `wss://` with this trust. Build it
/// once and share it (it is behind an `Arc`) between every client of a
/// thread or process: it holds the session cache and the parsed roots.
pub fn rustls_config(trust: &Trust) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| ClientError::Tls(error.to_string()))?;
    let mut config = match trust {
        Trust::CertificateHash(hash) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CertificateHashVerifier {
                expected: *hash,
                provider,
            }))
            .with_no_client_auth(),
        Trust::RootPem(pem) => {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(root_store(pem)?),
                provider,
            )
            .build()
            .map_err(|error| ClientError::Tls(error.to_string()))?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn root_store(pem: &[u8]) -> Result<rustls::RootCertStore, ClientError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|error| ClientError::Tls(format!("root PEM: {error}")))?;
        roots.add(cert).map_err(|error| ClientError::Tls(format!("root certificate: {error}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Tls("no certificate in the root PEM".into()));
    }
    Ok(roots)
}

/// Accepts exactly one certificate, by the SHA-256 of its DER encoding,
/// and verifies the handshake signatures against it as rustls's own
/// verifier does.
#[derive(Debug)]
struct CertificateHashVerifier {
    expected: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CertificateHashVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match certificate_sha256(end_entity) == self.expected {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse_from_hex_with_or_without_colons() {
        let hex_digits = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let Trust::CertificateHash(hash) = Trust::certificate_hash_hex(hex_digits).unwrap() else {
            panic!("a hash")
        };
        assert_eq!((hash[0], hash[15], hash[31]), (0x00, 0xff, 0xff));
        let colons = hex_digits
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).unwrap())
            .collect::<Vec<_>>()
            .join(":")
            .to_uppercase();
        assert_eq!(Trust::certificate_hash_hex(&colons).unwrap(), Trust::CertificateHash(hash));
        assert!(Trust::certificate_hash_hex("abcd").is_err());
        assert!(Trust::certificate_hash_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn configs_build_for_both_kinds_of_trust() {
        let cert = crate::devcert::generate(&[], 14).unwrap();
        assert!(rustls_config(&Trust::CertificateHash(cert.cert_sha256)).is_ok());
        assert!(rustls_config(&Trust::RootPem(cert.cert_pem.into_bytes())).is_ok());
        assert!(rustls_config(&Trust::RootPem(b"not a pem".to_vec())).is_err());
    }
}
