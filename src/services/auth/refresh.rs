//! Refresh tokens: opaque random secrets that buy new access tokens.
//!
//! Owns: the shape of a refresh token (`lrt_` and 43 base64url symbols,
//! 32 random bytes), the hash the store keeps instead of the token, and
//! family ids (one per sign-in; every rotation of a token stays in its
//! family, so reuse of a rotated token can revoke the whole family).
//! Never does: keep a token (the store keeps [`token_hash`] of it) or talk
//! to the store.
//!
//! A plain SHA-256 is enough here, unlike for passwords: the token holds
//! 256 random bits, so there is nothing to guess by brute force, and a
//! fast hash keeps the refresh path cheap.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// How long a refresh token lives, in milliseconds (the store's unit).
pub const REFRESH_TOKEN_LIFETIME_MS: i64 = 30 * 24 * 3_600 * 1_000;
/// Every refresh token starts with this, so it can be recognised in logs,
/// by secret scanners, and told apart from an access token.
pub const REFRESH_TOKEN_PREFIX: &str = "lrt_";
/// Random bytes per token.
pub const REFRESH_TOKEN_SECRET_LEN: usize = 32;
/// Length of a token, prefix included, in bytes.
pub const REFRESH_TOKEN_LEN: usize = REFRESH_TOKEN_PREFIX.len() + 43;
/// Random bytes per family id (hex, so twice as many characters).
pub const FAMILY_ID_LEN: usize = 16;

const BASE64: base64::engine::GeneralPurpose = URL_SAFE_NO_PAD;

const _: () = assert!(
    base64::encoded_len(REFRESH_TOKEN_SECRET_LEN, false).unwrap() + REFRESH_TOKEN_PREFIX.len()
        == REFRESH_TOKEN_LEN
);

/// A presented refresh token is not one we could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the refresh token is malformed")]
pub struct MalformedRefreshToken;

impl MalformedRefreshToken {
    /// The name of this error in JSON error bodies.
    pub fn code(&self) -> &'static str {
        "refresh_token_malformed"
    }
}

/// A refresh token: handed to the client once, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshSecret(String);

impl std::fmt::Debug for RefreshSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RefreshSecret(..)")
    }
}

impl RefreshSecret {
    /// A fresh token from the operating system's CSPRNG.
    pub fn generate() -> RefreshSecret {
        let mut bytes = [0u8; REFRESH_TOKEN_SECRET_LEN];
        SystemRandom::new().fill(&mut bytes).expect("the OS random source works");
        let mut token = String::with_capacity(REFRESH_TOKEN_LEN);
        token.push_str(REFRESH_TOKEN_PREFIX);
        BASE64.encode_string(bytes, &mut token);
        debug_assert!(is_well_formed(&token));
        RefreshSecret(token)
    }

    /// A token presented by a client, if it has the shape of ours: the
    /// prefix, the exact length, and canonical base64url. Junk is refused
    /// here, before any hashing or store lookup.
    pub fn parse(presented: &str) -> Result<RefreshSecret, MalformedRefreshToken> {
        if !is_well_formed(presented) {
            return Err(MalformedRefreshToken);
        }
        Ok(RefreshSecret(presented.to_owned()))
    }

    /// The token itself, to send to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// What the store keeps: [`token_hash`] of this token.
    pub fn hash(&self) -> String {
        token_hash(&self.0)
    }
}

/// The lowercase hex SHA-256 of a token (64 characters): the store's key
/// for it. Apply it to tokens from [`RefreshSecret`] (generated or parsed).
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh family id: 16 random bytes, lowercase hex (32 characters).
pub fn new_family_id() -> String {
    let mut bytes = [0u8; FAMILY_ID_LEN];
    SystemRandom::new().fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

fn is_well_formed(token: &str) -> bool {
    let Some(encoded) = token.strip_prefix(REFRESH_TOKEN_PREFIX) else {
        return false;
    };
    if token.len() != REFRESH_TOKEN_LEN {
        return false;
    }
    // Canonical decoding (no padding, zero trailing bits), so one token has
    // one spelling and one hash.
    let mut bytes = [0u8; REFRESH_TOKEN_SECRET_LEN + 1];
    matches!(BASE64.decode_slice(encoded, &mut bytes), Ok(REFRESH_TOKEN_SECRET_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_distinct_and_parse_back() {
        let first = RefreshSecret::generate();
        let second = RefreshSecret::generate();
        assert_ne!(first, second);
        assert!(first.as_str().starts_with("lrt_"));
        assert_eq!(first.as_str().len(), REFRESH_TOKEN_LEN);
        let parsed = RefreshSecret::parse(first.as_str()).unwrap();
        assert_eq!(parsed.hash(), first.hash());
        assert_eq!(format!("{first:?}"), "RefreshSecret(..)", "Debug hides the token");
    }

    #[test]
    fn the_hash_is_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let secret = RefreshSecret::generate();
        assert_eq!(secret.hash(), token_hash(secret.as_str()));
        assert_eq!(secret.hash().len(), 64);
    }

    #[test]
    fn junk_is_refused_before_hashing() {
        let good = RefreshSecret::generate().into_string();
        let body = &good[REFRESH_TOKEN_PREFIX.len()..];
        let refused: [&str; 9] = [
            "",
            "lrt_",
            body,
            &format!("xrt_{body}"),
            &good[..good.len() - 1],
            &format!("{good}A"),
            &format!("{good}="),
            &format!("lrt_{}+{}", &body[..20], &body[21..]),
            &format!("lrt_{}é", &body[..41]),
        ];
        for token in refused {
            assert_eq!(RefreshSecret::parse(token), Err(MalformedRefreshToken), "{token:?}");
        }
        // 43 symbols carry 2 bits more than 32 bytes; they must be zero.
        let noncanonical = format!("lrt_{}B", "A".repeat(42));
        assert_eq!(RefreshSecret::parse(&noncanonical), Err(MalformedRefreshToken));
        assert!(RefreshSecret::parse(&format!("lrt_{}", "A".repeat(43))).is_ok());
    }

    #[test]
    fn family_ids_are_random_hex() {
        let first = new_family_id();
        assert_eq!(first.len(), 2 * FAMILY_ID_LEN);
        assert!(first.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(first, new_family_id());
    }

    #[test]
    fn the_lifetime_is_thirty_days() {
        assert_eq!(REFRESH_TOKEN_LIFETIME_MS, 2_592_000_000);
    }
}
