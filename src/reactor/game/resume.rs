//! Resumption tokens: a dropped player says Hello again with the token from
//! its Welcome and gets its player id and nickname back (and then its seat,
//! by rejoining the room within the grace period). Stateless and signed
//! with one process-wide key, so any shard can check a token another shard
//! issued.

use base64::Engine;
use ring::hmac;

/// How long a token stays good, in seconds.
pub const RESUME_TOKEN_LIFETIME_S: u64 = 24 * 3_600;
const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Issues and checks tokens. Cloning shares the key.
#[derive(Clone)]
pub struct ResumeKeys {
    key: hmac::Key,
}

impl std::fmt::Debug for ResumeKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ResumeKeys(..)")
    }
}

/// Who a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    pub player_id: u64,
    pub nickname: String,
}

impl ResumeKeys {
    /// A fresh random key (tokens die with the process, as guests do).
    pub fn generate() -> ResumeKeys {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system randomness");
        ResumeKeys { key }
    }

    /// `player_id.expiry.nickname.tag`, URL-safe base64 where needed.
    pub fn issue(&self, player_id: u64, nickname: &str, now_unix_s: u64) -> String {
        let expires = now_unix_s + RESUME_TOKEN_LIFETIME_S;
        let body = format!("{player_id:x}.{expires:x}.{}", ENGINE.encode(nickname));
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", ENGINE.encode(tag.as_ref()))
    }

    /// The player a token names, if it is ours, intact and not expired.
    pub fn check(&self, token: &str, now_unix_s: u64) -> Option<Resumed> {
        let (body, tag) = token.rsplit_once('.')?;
        let tag = ENGINE.decode(tag).ok()?;
        // Constant-time verification.
        hmac::verify(&self.key, body.as_bytes(), &tag).ok()?;
        let mut parts = body.splitn(3, '.');
        let player_id = u64::from_str_radix(parts.next()?, 16).ok()?;
        let expires = u64::from_str_radix(parts.next()?, 16).ok()?;
        let nickname = String::from_utf8(ENGINE.decode(parts.next()?).ok()?).ok()?;
        (now_unix_s < expires).then_some(Resumed { player_id, nickname })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_player_until_it_expires() {
        let keys = ResumeKeys::generate();
        let token = keys.issue(0x1_0000_0000_0005, "ann.é", 1_000);
        let resumed = keys.check(&token, 1_000).unwrap();
        assert_eq!(resumed, Resumed { player_id: 0x1_0000_0000_0005, nickname: "ann.é".into() });
        assert!(keys.check(&token, 1_000 + RESUME_TOKEN_LIFETIME_S).is_none());
    }

    #[test]
    fn tampered_foreign_and_malformed_tokens_are_refused() {
        let keys = ResumeKeys::generate();
        let token = keys.issue(7, "bob", 0);
        let other = ResumeKeys::generate();
        assert!(other.check(&token, 1).is_none(), "another process's key");
        let forged = token.replacen('7', "8", 1);
        assert!(keys.check(&forged, 1).is_none(), "changed player id");
        for junk in ["", ".", "....", "7.0.Ym9i.", "zz.zz.zz.zz", &token[..token.len() - 2]] {
            assert!(keys.check(junk, 1).is_none(), "{junk:?}");
        }
    }
}
