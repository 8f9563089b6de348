//! Development certificates: self-signed ECDSA P-256, valid at most 14 days.
//!
//! Browsers accept such a certificate for WebTransport without a trusted CA
//! when the page pins it with `serverCertificateHashes`, and the W3C spec
//! (and Chromium) refuse a pinned certificate valid longer than two weeks or
//! not using ECDSA P-256. `ludus cert` writes one to disk; the server will
//! call [`generate`] itself when `[tls]` names no files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PublicKeyData, PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Longest validity `serverCertificateHashes` accepts.
pub const VALIDITY_DAYS_MAX: u32 = 14;
/// Names every dev certificate covers, so `localhost` works over v4 and v6.
pub const DEFAULT_SUBJECT_ALT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// File names inside the output directory.
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;
/// Start the validity a little in the past so a browser whose clock lags the
/// server's still accepts a certificate minted a moment ago.
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(60 * 60);
/// X.509 `notAfter` is inclusive; ending one second early keeps the period
/// at most `days` exactly, whichever way a browser counts it.
const INCLUSIVE_END: Duration = Duration::from_secs(1);
const COMMON_NAME: &str = "ludus development certificate";
const KEY_FILE_MODE: u32 = 0o600;

/// A generated certificate with its key and the hashes browsers pin.
#[derive(Clone)]
pub struct DevCert {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8 `PRIVATE KEY`).
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity (inclusive).
    pub not_after: SystemTime,
    /// SHA-256 of `cert_der`: the value for `serverCertificateHashes`.
    pub cert_sha256: [u8; 32],
    /// SHA-256 of the DER SubjectPublicKeyInfo: the value for Chromium's
    /// `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: [u8; 32],
}

impl std::fmt::Debug for DevCert {
    // The key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCert")
            .field("cert_sha256", &self.cert_sha256_hex())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl DevCert {
    /// `cert_sha256` as lowercase hex, 64 characters.
    pub fn cert_sha256_hex(&self) -> String {
        hex::encode(self.cert_sha256)
    }

    /// `spki_sha256` as standard base64, the form Chromium's flag takes.
    pub fn spki_sha256_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.spki_sha256)
    }

    /// Writes `cert.pem` and `key.pem` into `dir`, creating it, the key
    /// readable by the owner only. Existing files are replaced.
    pub fn write(&self, dir: &Path) -> Result<CertPaths, DevCertError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| DevCertError::Write { path: dir.to_owned(), source })?;
        let paths = CertPaths { cert: dir.join(CERT_FILE), key: dir.join(KEY_FILE) };
        write_private(&paths.key, self.key_pem.as_bytes())?;
        std::fs::write(&paths.cert, &self.cert_pem)
            .map_err(|source| DevCertError::Write { path: paths.cert.clone(), source })?;
        Ok(paths)
    }
}

/// Where [`DevCert::write`] put the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a dev certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    #[error("validity of {0} days is out of range: browsers pin certificates valid 1..={VALIDITY_DAYS_MAX} days")]
    Validity(u32),
    #[error("invalid subject alternative name {name:?}: {source}")]
    SubjectAltName {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate for [`DEFAULT_SUBJECT_ALT_NAMES`] plus `extra_names`, valid
/// from about now for `validity_days` (1..=[`VALIDITY_DAYS_MAX`]).
pub fn generate(extra_names: &[String], validity_days: u32) -> Result<DevCert, DevCertError> {
    generate_at(extra_names, validity_days, SystemTime::now())
}

/// [`generate`] with the clock as a parameter, for tests.
pub fn generate_at(
    extra_names: &[String],
    validity_days: u32,
    now: SystemTime,
) -> Result<DevCert, DevCertError> {
    if !(1..=VALIDITY_DAYS_MAX).contains(&validity_days) {
        return Err(DevCertError::Validity(validity_days));
    }
    let not_before = now - CLOCK_SKEW_ALLOWANCE;
    let validity = Duration::from_secs(u64::from(validity_days) * SECONDS_PER_DAY);
    let not_after = not_before + validity - INCLUSIVE_END;
    let params = certificate_params(extra_names, not_before, not_after)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok(DevCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        not_before,
        not_after,
        cert_sha256: Sha256::digest(cert.der()).into(),
        spki_sha256: Sha256::digest(key.subject_public_key_info()).into(),
    })
}

fn certificate_params(
    extra_names: &[String],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, DevCertError> {
    let mut params = CertificateParams::default();
    for name in
        DEFAULT_SUBJECT_ALT_NAMES.iter().copied().chain(extra_names.iter().map(String::as_str))
    {
        // CertificateParams::new does this same IP-or-DNS split, but for one
        // name at a time so the error can say which name is bad.
        let one = CertificateParams::new(vec![name.to_owned()])
            .map_err(|source| DevCertError::SubjectAltName { name: name.to_owned(), source })?;
        params.subject_alt_names.extend(one.subject_alt_names);
    }
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, COMMON_NAME);
    params.distinguished_name = subject;
    params.not_before = OffsetDateTime::from(not_before);
    params.not_after = OffsetDateTime::from(not_after);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// Writes a file only its owner can read. Permissions are set before the
/// contents go in, also when the file already existed with wider ones.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), DevCertError> {
    let error = |source| DevCertError::Write { path: path.to_owned(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(KEY_FILE_MODE);
        let file = options.open(path).map_err(error)?;
        file.set_permissions(std::fs::Permissions::from_mode(KEY_FILE_MODE)).map_err(error)?;
        write_all(file, contents).map_err(error)
    }
    #[cfg(not(unix))]
    {
        let _ = KEY_FILE_MODE;
        write_all(options.open(path).map_err(error)?, contents).map_err(error)
    }
}

fn write_all(mut file: std::fs::File, contents: &[u8]) -> std::io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_of_the_certificate_and_its_public_key() {
        let cert = generate(&[], VALIDITY_DAYS_MAX).unwrap();
        assert_eq!(cert.cert_sha256, <[u8; 32]>::from(Sha256::digest(&cert.cert_der)));
        assert_eq!(cert.cert_sha256_hex().len(), 64);
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The SPKI sits verbatim inside the certificate.
        let key = KeyPair::from_pem(&cert.key_pem).unwrap();
        let spki = key.subject_public_key_info();
        assert!(cert.cert_der.windows(spki.len()).any(|window| window == spki));
        assert_eq!(cert.spki_sha256, <[u8; 32]>::from(Sha256::digest(&spki)));
    }

    #[test]
    fn validity_never_exceeds_the_requested_days() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for days in [1, 7, VALIDITY_DAYS_MAX] {
            let cert = generate_at(&[], days, now).unwrap();
            let period = cert.not_after.duration_since(cert.not_before).unwrap();
            assert!(period < Duration::from_secs(u64::from(days) * SECONDS_PER_DAY));
            assert!(cert.not_before < now && now < cert.not_after);
        }
        assert!(matches!(generate_at(&[], 0, now), Err(DevCertError::Validity(0))));
        assert!(matches!(generate_at(&[], 15, now), Err(DevCertError::Validity(15))));
    }

    #[test]
    fn extra_names_are_added_and_bad_ones_named() {
        let cert = generate(&["game.test".to_owned(), "10.1.2.3".to_owned()], 1).unwrap();
        let contains = |needle: &[u8]| cert.cert_der.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"game.test"));
        assert!(contains(b"localhost"));
        assert!(contains(&[10, 1, 2, 3]));
        let error = generate(&["bad name\u{7f}é".to_owned()], 1).unwrap_err();
        assert!(error.to_string().contains("bad name"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private_and_files_are_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/tls");
        let first = generate(&[], 1).unwrap();
        first.write(&out).unwrap();
        std::fs::set_permissions(out.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let second = generate(&[], 1).unwrap();
        let paths = second.write(&out).unwrap();
        let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, KEY_FILE_MODE);
        assert_eq!(std::fs::read_to_string(&paths.cert).unwrap(), second.cert_pem);
        assert_eq!(std::fs::read_to_string(&paths.key).unwrap(), second.key_pem);
    }
}
