//! Stateless retry tokens (RFC 9000 section 8.1.2): proof that a client can
//! receive at the address it claims, before the server commits any state.
//!
//! Token layout: expiry (u64 big-endian, seconds since the Unix epoch),
//! original destination CID length (u8) and bytes, then a 16-byte truncated
//! HMAC-SHA256 over the client's address, the expiry and the ODCID. The key
//! is random per process and shared by all shards, so a token minted by one
//! shard validates on another.

use std::net::SocketAddr;

use ring::hmac;
use ring::rand::SystemRandom;

/// How long a retry token stays valid.
pub const TOKEN_LIFETIME_SECONDS: u64 = 10;
const TAG_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;
/// Longest connection ID QUIC v1 allows.
const MAX_CID_LEN: usize = 20;
/// Longest token this server mints (and the longest it looks at).
pub const MAX_TOKEN_LEN: usize = EXPIRY_LEN + 1 + MAX_CID_LEN + TAG_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token malformed")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token forged or for another address")]
    BadTag,
}

/// Mints and validates retry tokens.
pub struct RetryTokens {
    key: hmac::Key,
}

impl RetryTokens {
    pub fn new() -> RetryTokens {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("the system random source works");
        RetryTokens { key }
    }

    /// A token for `client` that carries `odcid`, valid until `now + lifetime`.
    pub fn mint(&self, client: SocketAddr, odcid: &[u8], now_unix_s: u64) -> Vec<u8> {
        assert!(odcid.len() <= MAX_CID_LEN, "QUIC limits connection IDs to 20 bytes");
        let expiry = now_unix_s + TOKEN_LIFETIME_SECONDS;
        let mut token = Vec::with_capacity(MAX_TOKEN_LEN);
        token.extend_from_slice(&expiry.to_be_bytes());
        token.push(odcid.len() as u8);
        token.extend_from_slice(odcid);
        let tag = self.tag(client, &token);
        token.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        token
    }

    /// The original destination CID carried by a valid token for `client`.
    pub fn validate<'t>(
        &self,
        client: SocketAddr,
        token: &'t [u8],
        now_unix_s: u64,
    ) -> Result<&'t [u8], TokenError> {
        if token.len() < EXPIRY_LEN + 1 + TAG_LEN || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let odcid_len = usize::from(token[EXPIRY_LEN]);
        let body_len = EXPIRY_LEN + 1 + odcid_len;
        if odcid_len > MAX_CID_LEN || token.len() != body_len + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.split_at(body_len);
        let expected = self.tag(client, body);
        if !constant_time_equal(&expected.as_ref()[..TAG_LEN], tag) {
            return Err(TokenError::BadTag);
        }
        let expiry = u64::from_be_bytes(body[..EXPIRY_LEN].try_into().expect("8 bytes"));
        if now_unix_s > expiry {
            return Err(TokenError::Expired);
        }
        Ok(&body[EXPIRY_LEN + 1..])
    }

    fn tag(&self, client: SocketAddr, body: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        match client {
            SocketAddr::V4(address) => context.update(&address.ip().octets()),
            SocketAddr::V6(address) => context.update(&address.ip().octets()),
        }
        context.update(&client.port().to_be_bytes());
        context.update(body);
        context.sign()
    }
}

/// Compares without an early exit, so timing does not reveal how much of a
/// forged tag was right.
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

impl Default for RetryTokens {
    fn default() -> Self {
        RetryTokens::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn a_token_validates_for_its_address_until_it_expires() {
        let tokens = RetryTokens::new();
        let token = tokens.mint(client(), &[7; 8], 1_000);
        assert_eq!(tokens.validate(client(), &token, 1_000), Ok(&[7u8; 8][..]));
        assert_eq!(
            tokens.validate(client(), &token, 1_000 + TOKEN_LIFETIME_SECONDS),
            Ok(&[7u8; 8][..])
        );
        assert_eq!(
            tokens.validate(client(), &token, 1_001 + TOKEN_LIFETIME_SECONDS),
            Err(TokenError::Expired)
        );
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert_eq!(tokens.validate(other, &token, 1_000), Err(TokenError::BadTag));
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let tokens = RetryTokens::new();
        let mut token = tokens.mint(client(), &[1; 20], 50);
        let last = token.len() - 1;
        token[last] ^= 1;
        assert_eq!(tokens.validate(client(), &token, 50), Err(TokenError::BadTag));
        assert_eq!(tokens.validate(client(), &[], 50), Err(TokenError::Malformed));
        assert_eq!(tokens.validate(client(), &[0; 100], 50), Err(TokenError::Malformed));
        let mut wrong_length = tokens.mint(client(), &[1; 4], 50);
        wrong_length[EXPIRY_LEN] = 5;
        assert_eq!(tokens.validate(client(), &wrong_length, 50), Err(TokenError::Malformed));
        let other_key = RetryTokens::new().mint(client(), &[1; 4], 50);
        assert_eq!(tokens.validate(client(), &other_key, 50), Err(TokenError::BadTag));
    }
}
