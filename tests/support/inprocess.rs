//! Pieces shared by the tests that run a shard's WebTransport server in
//! process (`alloc_echo`, `session_memory`): a development certificate on
//! disk and the facts of a server with no storage. Include with
//! `#[path = "support/inprocess.rs"] mod inprocess;`.

use std::sync::Arc;

use ludus::reactor::server::TlsMaterial;
use ludus::reactor::web;

/// A fresh development certificate, written to a directory that lives as
/// long as this value.
pub struct DevTls {
    pub material: TlsMaterial,
    /// What a client pins (`serverCertificateHashes`).
    pub cert_sha256: [u8; 32],
    _dir: tempfile::TempDir,
}

pub fn dev_tls() -> DevTls {
    let dir = tempfile::tempdir().unwrap();
    let cert = ludus::devcert::generate(&[], 2).unwrap();
    let paths = cert.write(dir.path()).unwrap();
    let material = TlsMaterial { cert: paths.cert, key: paths.key, dev: None };
    DevTls { material, cert_sha256: cert.cert_sha256, _dir: dir }
}

/// A guest-only server's facts: no storage, no event log.
pub fn guest_facts() -> web::ServerFacts {
    web::ServerFacts {
        cert_sha256_hex: None,
        version: "test",
        stats: Arc::new(Vec::new()),
        storage: None,
        events: None,
    }
}
