//! Access tokens: JSON Web Tokens in compact form, HS256 only, signed and
//! checked with `ring::hmac`.
//!
//! Owns: the signing keys ([`JwtKeys`]), the claims Ludus puts in a token
//! ([`AccessClaims`]), and the rules a token must pass ([`JwtKeys::verify`]).
//! Never does: read the clock (the caller passes `now_s`, Unix seconds),
//! accept an algorithm other than HS256, trust a key named by the token
//! itself (only key ids configured here are looked up), or look at the
//! claims before the signature has checked out. Verification is total:
//! every input, however long or broken, gets a [`TokenError`], never a
//! panic.
//!
//! Runs on: shard threads (each protocol Hello with an access token, each
//! API request) for [`JwtKeys::verify`], so it is kept allocation-light:
//! segments are decoded into stack buffers, the usual header is recognised
//! by comparing its bytes with the one we issue, and the only allocations
//! are the owned strings of the claims returned. Signing runs on the API's
//! worker threads after a login or refresh.
//!
//! # Keys and rotation (`JWT_SECRET`)
//!
//! [`JwtKeys::from_config`] reads the `JWT_SECRET` value:
//!
//! - `kid1:secret1,kid2:secret2`: comma-separated `key-id:secret` entries.
//!   The first signs new tokens; the others only verify, so a key can be
//!   rotated by putting the new one first and dropping the old one once the
//!   last token it signed has expired ([`ACCESS_TOKEN_LIFETIME_S`] plus
//!   [`CLOCK_LEEWAY_S`]).
//! - `secret`: a value without any `:` is one secret with key id `k1`.
//!
//! Key ids are 1 to 32 characters of `[A-Za-z0-9_-]`. Secrets are used as
//! raw bytes and must be at least [`SECRET_LEN_MIN`] (32) bytes long, for
//! instance the output of `openssl rand -base64 48`. A secret that holds a
//! `:` must be written with its key id; secrets cannot hold a `,` in the
//! list form. Whitespace around the whole value and around entries is
//! ignored. At most [`KEYS_MAX`] keys.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The `iss` claim of every token Ludus signs and the only one it accepts.
pub const ISSUER: &str = "ludus";
/// How long an access token is good for, in seconds. Short, because an
/// access token cannot be revoked: the refresh token is the revocable part.
pub const ACCESS_TOKEN_LIFETIME_S: i64 = 15 * 60;
/// Longest token accepted, in bytes; checked before anything else. Matches
/// the `access_token` bound of the protocol's Hello (docs/PROTOCOL.md).
pub const TOKEN_LEN_MAX: usize = 2048;
/// Clock skew tolerated between the signer and the verifier, in seconds: a
/// token is still accepted this long after `exp`, and an `iat` or `nbf`
/// this far in the future is accepted.
pub const CLOCK_LEEWAY_S: i64 = 30;
/// Shortest secret accepted, in bytes: the HMAC-SHA256 output size.
pub const SECRET_LEN_MIN: usize = 32;
/// Most keys one `JWT_SECRET` may hold.
pub const KEYS_MAX: usize = 8;
/// Longest key id, in bytes.
pub const KEY_ID_LEN_MAX: usize = 32;
/// The key id of a `JWT_SECRET` given as a bare secret.
pub const DEFAULT_KEY_ID: &str = "k1";
/// The key id of [`JwtKeys::generate`]'s ephemeral key.
pub const DEV_KEY_ID: &str = "dev";

const BASE64: base64::engine::GeneralPurpose = URL_SAFE_NO_PAD;
const ALGORITHM: &str = "HS256";
const TYPE: &str = "JWT";
/// An HMAC-SHA256 tag, and its base64url form (no padding).
const SIGNATURE_LEN: usize = 32;
const SIGNATURE_SEGMENT_LEN: usize = 43;
/// Headers this long (encoded) are not ours; ours is about 60 bytes.
const HEADER_SEGMENT_LEN_MAX: usize = 256;
const HEADER_DECODED_MAX: usize = decoded_len_max(HEADER_SEGMENT_LEN_MAX);
const PAYLOAD_DECODED_MAX: usize = decoded_len_max(TOKEN_LEN_MAX);

const _: () = assert!(base64::encoded_len(SIGNATURE_LEN, false).unwrap() == SIGNATURE_SEGMENT_LEN);

/// A buffer size that holds the decoding of `segment_len` base64 symbols.
const fn decoded_len_max(segment_len: usize) -> usize {
    segment_len.div_ceil(4) * 3
}

/// Why a token was refused. [`TokenError::code`] names it in JSON errors;
/// on the game protocol every variant is `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is longer than {TOKEN_LEN_MAX} bytes")]
    TooLong,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    UnsupportedAlgorithm,
    #[error("the token names no key this server holds")]
    UnknownKey,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued by this service")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
}

impl TokenError {
    /// A short stable name for JSON error bodies (`token_expired`, ...).
    /// Clients tell `token_expired` (refresh and retry) from the rest
    /// (sign in again).
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::TooLong => "token_too_long",
            TokenError::Malformed => "token_malformed",
            TokenError::UnsupportedAlgorithm => "token_unsupported_algorithm",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::WrongIssuer => "token_wrong_issuer",
            TokenError::WrongAudience => "token_wrong_audience",
        }
    }
}

/// Why a `JWT_SECRET` value was refused. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyConfigError {
    #[error("JWT_SECRET is empty")]
    Empty,
    #[error("JWT_SECRET entry {entry} has no `key-id:` before its secret")]
    MissingKeyId { entry: usize },
    #[error(
        "JWT_SECRET entry {entry}: a key id is 1 to {KEY_ID_LEN_MAX} characters of [A-Za-z0-9_-]"
    )]
    BadKeyId { entry: usize },
    #[error("JWT_SECRET names key id {key_id:?} twice")]
    DuplicateKeyId { key_id: String },
    #[error("JWT_SECRET key {key_id:?} is {len} bytes; at least {SECRET_LEN_MIN} are required")]
    SecretTooShort { key_id: String, len: usize },
    #[error("JWT_SECRET holds more than {KEYS_MAX} keys")]
    TooManyKeys,
}

/// What an access token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The account id (`sub`; a JSON string, as JSON numbers stop being
    /// exact at 2^53).
    pub sub: i64,
    /// The account's role (`user`, `admin`, ...), as the store keeps it.
    pub role: String,
    /// The account's nickname at the time of issue.
    pub name: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Token id, when the issuer wants to tell tokens apart.
    pub jti: Option<String>,
}

impl AccessClaims {
    /// Claims for a token issued now and good for
    /// [`ACCESS_TOKEN_LIFETIME_S`].
    pub fn new(sub: i64, role: impl Into<String>, name: impl Into<String>, now_s: i64) -> Self {
        AccessClaims {
            sub,
            role: role.into(),
            name: name.into(),
            iat: now_s,
            exp: now_s.saturating_add(ACCESS_TOKEN_LIFETIME_S),
            jti: None,
        }
    }
}

/// The JOSE header. Unknown members (`jku`, `jwk`, `x5u`, `crit`, ...) are
/// refused rather than ignored: none of them may steer verification.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
}

/// The claims as they travel. Unknown claims are ignored (RFC 7519).
#[derive(Serialize, Deserialize)]
struct WireClaims<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<Cow<'a, str>>,
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<Cow<'a, str>>,
}

#[derive(Clone)]
struct Key {
    id: String,
    hmac: hmac::Key,
    /// The encoded header of tokens this key signs: the fast path of
    /// verification compares bytes with it instead of parsing JSON.
    header_segment: String,
}

/// The keys that sign and verify access tokens: the first signs, all
/// verify. Cloning copies the keys (a few hundred bytes each).
#[derive(Clone)]
pub struct JwtKeys {
    /// Never empty; `keys[0]` is the current signing key.
    keys: Vec<Key>,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JwtKeys")
            .field("key_ids", &self.keys.iter().map(|key| key.id.as_str()).collect::<Vec<_>>())
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from a `JWT_SECRET` value (format in the module docs).
    pub fn from_config(value: &str) -> Result<JwtKeys, KeyConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(KeyConfigError::Empty);
        }
        if !value.contains(':') {
            return JwtKeys::new(&[(DEFAULT_KEY_ID, value.as_bytes())]);
        }
        let mut keys: Vec<(&str, &[u8])> = Vec::new();
        for (index, entry) in value.split(',').enumerate() {
            if index == KEYS_MAX {
                return Err(KeyConfigError::TooManyKeys);
            }
            let entry_number = index + 1;
            let Some((key_id, secret)) = entry.trim().split_once(':') else {
                return Err(KeyConfigError::MissingKeyId { entry: entry_number });
            };
            if !is_key_id(key_id) {
                return Err(KeyConfigError::BadKeyId { entry: entry_number });
            }
            keys.push((key_id, secret.as_bytes()));
        }
        JwtKeys::new(&keys)
    }

    /// Keys from `(key id, secret)` pairs; the first signs.
    pub fn new(keys: &[(&str, &[u8])]) -> Result<JwtKeys, KeyConfigError> {
        if keys.is_empty() {
            return Err(KeyConfigError::Empty);
        }
        if keys.len() > KEYS_MAX {
            return Err(KeyConfigError::TooManyKeys);
        }
        let mut built: Vec<Key> = Vec::with_capacity(keys.len());
        for (index, &(key_id, secret)) in keys.iter().enumerate() {
            if !is_key_id(key_id) {
                return Err(KeyConfigError::BadKeyId { entry: index + 1 });
            }
            if built.iter().any(|key| key.id == key_id) {
                return Err(KeyConfigError::DuplicateKeyId { key_id: key_id.to_owned() });
            }
            if secret.len() < SECRET_LEN_MIN {
                let key_id = key_id.to_owned();
                return Err(KeyConfigError::SecretTooShort { key_id, len: secret.len() });
            }
            built.push(Key::new(key_id, secret));
        }
        Ok(JwtKeys { keys: built, audience: None })
    }

    /// One random 32-byte key with id `dev`, for development: tokens die
    /// with the process, which the caller should log as such.
    pub fn generate() -> JwtKeys {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut secret = [0u8; SECRET_LEN_MIN];
        SystemRandom::new().fill(&mut secret).expect("the OS random source works");
        JwtKeys { keys: vec![Key::new(DEV_KEY_ID, &secret)], audience: None }
    }

    /// The same keys, now putting `aud` in every token signed and requiring
    /// exactly it in every token verified. Without an audience, tokens that
    /// carry one are refused (RFC 7519 section 4.1.3).
    pub fn with_audience(mut self, audience: impl Into<String>) -> JwtKeys {
        self.audience = Some(audience.into());
        self
    }

    /// The id of the key that signs new tokens.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, the signing one first (for the start-up log).
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }

    /// A compact JWT for `claims`, signed with the current key.
    ///
    /// Panics if the token would be longer than [`TOKEN_LEN_MAX`], which
    /// the store's bounds on roles and nicknames rule out.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        let key = &self.keys[0];
        let sub = claims.sub.to_string();
        let wire = WireClaims {
            iss: Cow::Borrowed(ISSUER),
            sub: Cow::Borrowed(&sub),
            aud: self.audience.as_deref().map(Cow::Borrowed),
            role: Cow::Borrowed(&claims.role),
            name: Cow::Borrowed(&claims.name),
            iat: claims.iat,
            exp: claims.exp,
            nbf: None,
            jti: claims.jti.as_deref().map(Cow::Borrowed),
        };
        let payload = serde_json::to_vec(&wire).expect("strings and integers always serialize");
        let mut token = String::with_capacity(
            key.header_segment.len() + payload.len() * 4 / 3 + SIGNATURE_SEGMENT_LEN + 4,
        );
        token.push_str(&key.header_segment);
        token.push('.');
        BASE64.encode_string(&payload, &mut token);
        let tag = hmac::sign(&key.hmac, token.as_bytes());
        token.push('.');
        BASE64.encode_string(tag.as_ref(), &mut token);
        assert!(token.len() <= TOKEN_LEN_MAX, "a {}-byte token could not be verified", token.len());
        token
    }

    /// The claims of `token` if it is an HS256 JWT signed by one of our
    /// keys, issued by [`ISSUER`] (and for our audience, if set), and valid
    /// at `now_s` (Unix seconds) within [`CLOCK_LEEWAY_S`].
    pub fn verify(&self, token: &str, now_s: i64) -> Result<AccessClaims, TokenError> {
        self.verify_bytes(token.as_bytes(), now_s)
    }

    /// [`JwtKeys::verify`] on raw bytes (an HTTP header value, say); bytes
    /// that are not base64url are refused as [`TokenError::Malformed`].
    pub fn verify_bytes(&self, token: &[u8], now_s: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > TOKEN_LEN_MAX {
            return Err(TokenError::TooLong);
        }
        let segments = split_segments(token)?;
        let key = self.key_for_header(segments.header)?;
        let signing_input = &token[..segments.header.len() + 1 + segments.payload.len()];
        check_signature(key, signing_input, segments.signature)?;
        // Only now, with the bytes known to be ours, is the JSON parsed.
        let mut buffer = [0u8; PAYLOAD_DECODED_MAX];
        let json = decode_segment(segments.payload, &mut buffer)?;
        let claims: WireClaims = serde_json::from_slice(json).map_err(|_| TokenError::Malformed)?;
        self.check_claims(claims, now_s)
    }

    /// The key a header names, if the header is one we accept.
    fn key_for_header(&self, header: &[u8]) -> Result<&Key, TokenError> {
        if let Some(key) = self.keys.iter().find(|key| key.header_segment.as_bytes() == header) {
            return Ok(key);
        }
        // Not byte for byte a header we write (other member order, spacing
        // or escapes from another signer, or an attack): parse it.
        if header.len() > HEADER_SEGMENT_LEN_MAX {
            return Err(TokenError::Malformed);
        }
        let mut buffer = [0u8; HEADER_DECODED_MAX];
        let json = decode_segment(header, &mut buffer)?;
        let header: WireHeader = serde_json::from_slice(json).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if !header.typ.is_some_and(|typ| typ.eq_ignore_ascii_case(TYPE)) {
            return Err(TokenError::Malformed);
        }
        let key_id = header.kid.ok_or(TokenError::UnknownKey)?;
        self.keys.iter().find(|key| key.id == key_id).ok_or(TokenError::UnknownKey)
    }

    fn check_claims(&self, claims: WireClaims<'_>, now_s: i64) -> Result<AccessClaims, TokenError> {
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if self.audience.as_deref() != claims.aud.as_deref() {
            return Err(TokenError::WrongAudience);
        }
        if now_s.saturating_sub(CLOCK_LEEWAY_S) >= claims.exp {
            return Err(TokenError::Expired);
        }
        let latest_start_s = now_s.saturating_add(CLOCK_LEEWAY_S);
        if claims.iat > latest_start_s || claims.nbf.is_some_and(|nbf| nbf > latest_start_s) {
            return Err(TokenError::NotYetValid);
        }
        let sub = claims.sub.parse::<i64>().map_err(|_| TokenError::Malformed)?;
        Ok(AccessClaims {
            sub,
            role: claims.role.into_owned(),
            name: claims.name.into_owned(),
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti.map(Cow::into_owned),
        })
    }
}

impl Key {
    fn new(id: &str, secret: &[u8]) -> Key {
        debug_assert!(is_key_id(id));
        // Key ids are plain ASCII (is_key_id), so no JSON escaping is needed.
        let header = format!(r#"{{"alg":"{ALGORITHM}","typ":"{TYPE}","kid":"{id}"}}"#);
        Key {
            id: id.to_owned(),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret),
            header_segment: BASE64.encode(header),
        }
    }
}

fn is_key_id(key_id: &str) -> bool {
    (1..=KEY_ID_LEN_MAX).contains(&key_id.len())
        && key_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// The three segments of a compact JWS, still encoded.
struct Segments<'t> {
    header: &'t [u8],
    payload: &'t [u8],
    signature: &'t [u8],
}

/// The three non-empty dot-separated segments of a compact JWS.
fn split_segments(token: &[u8]) -> Result<Segments<'_>, TokenError> {
    let mut segments = token.split(|&byte| byte == b'.');
    let (Some(header), Some(payload), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(TokenError::Malformed);
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Segments { header, payload, signature })
}

/// Canonical base64url without padding (non-zero trailing bits refused, so
/// each decoding has one spelling) into `buffer`.
fn decode_segment<'b>(segment: &[u8], buffer: &'b mut [u8]) -> Result<&'b [u8], TokenError> {
    let len = BASE64.decode_slice(segment, buffer).map_err(|_| TokenError::Malformed)?;
    Ok(&buffer[..len])
}

fn check_signature(key: &Key, signing_input: &[u8], signature: &[u8]) -> Result<(), TokenError> {
    if signature.len() != SIGNATURE_SEGMENT_LEN {
        return Err(TokenError::BadSignature);
    }
    let mut tag = [0u8; decoded_len_max(SIGNATURE_SEGMENT_LEN)];
    let tag_len = BASE64.decode_slice(signature, &mut tag).map_err(|_| TokenError::BadSignature)?;
    debug_assert_eq!(tag_len, SIGNATURE_LEN);
    // Constant time: how much of a forged tag matched must not show.
    hmac::verify(&key.hmac, signing_input, &tag[..tag_len]).map_err(|_| TokenError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_S: i64 = 1_763_830_512;
    const SECRET_A: &[u8] = b"0123456789abcdef0123456789abcdef-a";
    const SECRET_B: &[u8] = b"0123456789abcdef0123456789abcdef-b";

    fn keys() -> JwtKeys {
        JwtKeys::new(&[("k1", SECRET_A)]).unwrap()
    }

    fn claims() -> AccessClaims {
        AccessClaims::new(4_611_686_018_427_387_904 + 17, "user", "NebulaFox_42", NOW_S)
    }

    /// A token with `header` and `claims` JSON, signed with `secret`.
    fn token_from_parts(header: &str, claims: &str, secret: &[u8]) -> String {
        let input = format!("{}.{}", BASE64.encode(header), BASE64.encode(claims));
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        format!("{input}.{}", BASE64.encode(tag.as_ref()))
    }

    fn claims_json(iss: &str, iat: i64, exp: i64) -> String {
        format!(
            r#"{{"iss":"{iss}","sub":"42","role":"user","name":"ann","iat":{iat},"exp":{exp}}}"#
        )
    }

    fn segment_json(token: &str, index: usize) -> String {
        let segment = token.split('.').nth(index).unwrap();
        String::from_utf8(BASE64.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let keys = keys();
        let mut claims = claims();
        let token = keys.sign(&claims);
        assert_eq!(keys.verify(&token, NOW_S).unwrap(), claims);
        assert_eq!(
            segment_json(&token, 0),
            r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#,
            "the header we issue"
        );
        let payload = segment_json(&token, 1);
        assert!(payload.contains(r#""sub":"4611686018427387921""#), "sub is a string: {payload}");
        assert!(payload.contains(r#""iss":"ludus""#), "{payload}");
        claims.jti = Some("t-1".into());
        let token = keys.sign(&claims);
        assert_eq!(keys.verify(&token, NOW_S).unwrap().jti.as_deref(), Some("t-1"));
    }

    #[test]
    fn names_needing_json_escapes_survive_the_round_trip() {
        let keys = keys();
        let mut claims = claims();
        claims.name = "\"Zoë\" \\ 🦊\n".into();
        let token = keys.sign(&claims);
        assert_eq!(keys.verify(&token, NOW_S).unwrap(), claims);
    }

    #[test]
    fn a_forged_or_foreign_signature_is_refused() {
        let keys = keys();
        let token = keys.sign(&claims());
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut tag = BASE64.decode(signature).unwrap();
        tag[0] ^= 1;
        let forged = format!("{input}.{}", BASE64.encode(&tag));
        assert_eq!(keys.verify(&forged, NOW_S), Err(TokenError::BadSignature));
        let truncated = &token[..token.len() - 1];
        assert_eq!(keys.verify(truncated, NOW_S), Err(TokenError::BadSignature));
        let foreign = JwtKeys::new(&[("k1", SECRET_B)]).unwrap().sign(&claims());
        assert_eq!(keys.verify(&foreign, NOW_S), Err(TokenError::BadSignature));
        // The same tag spelled with non-zero trailing bits (the last symbol
        // carries 2 unused bits) is not canonical, so it is refused.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = signature.as_bytes()[SIGNATURE_SEGMENT_LEN - 1];
        let value = alphabet.iter().position(|&symbol| symbol == last).unwrap();
        let respelled = char::from(alphabet[value ^ 1]);
        let respelled = format!("{input}.{}{respelled}", &signature[..SIGNATURE_SEGMENT_LEN - 1]);
        assert_eq!(keys.verify(&respelled, NOW_S), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_tampered_payload_or_swapped_header_is_refused() {
        let keys = JwtKeys::new(&[("k2", SECRET_B), ("k1", SECRET_A)]).unwrap();
        let token = keys.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload = segment_json(&token, 1);
        payload = payload.replace(r#""role":"user""#, r#""role":"admin""#);
        let tampered = format!("{}.{}.{}", parts[0], BASE64.encode(&payload), parts[2]);
        assert_eq!(keys.verify(&tampered, NOW_S), Err(TokenError::BadSignature));
        // Another configured key's header on this payload and signature.
        let header_k1 = BASE64.encode(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#);
        let swapped = format!("{header_k1}.{}.{}", parts[1], parts[2]);
        assert_eq!(keys.verify(&swapped, NOW_S), Err(TokenError::BadSignature));
        let reordered = format!("{}.{}.{}", parts[1], parts[0], parts[2]);
        assert!(keys.verify(&reordered, NOW_S).is_err());
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let keys = keys();
        let body = claims_json(ISSUER, NOW_S, NOW_S + 60);
        let none = format!(
            "{}.{}.",
            BASE64.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            BASE64.encode(&body)
        );
        assert_eq!(keys.verify(&none, NOW_S), Err(TokenError::Malformed), "empty signature");
        let none_signed = token_from_parts(r#"{"alg":"none","typ":"JWT"}"#, &body, SECRET_A);
        assert_eq!(keys.verify(&none_signed, NOW_S), Err(TokenError::UnsupportedAlgorithm));
        for alg in ["HS512", "RS256", "ES256", "hs256", "NONE"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#);
            let token = token_from_parts(&header, &body, SECRET_A);
            assert_eq!(keys.verify(&token, NOW_S), Err(TokenError::UnsupportedAlgorithm), "{alg}");
        }
    }

    #[test]
    fn headers_must_be_strict_but_need_not_be_byte_identical() {
        let keys = keys();
        let body = claims_json(ISSUER, NOW_S, NOW_S + 60);
        let reordered = r#"{ "kid" : "k1", "typ": "jwt", "alg": "HS256" }"#;
        let token = token_from_parts(reordered, &body, SECRET_A);
        assert_eq!(keys.verify(&token, NOW_S).unwrap().sub, 42, "another signer's spelling");
        let escaped = r#"{"alg":"HS\u0032\u0035\u0036","typ":"JWT","kid":"\u006b1"}"#;
        assert!(keys.verify(&token_from_parts(escaped, &body, SECRET_A), NOW_S).is_ok());
        let refused = [
            (r#"{"alg":"HS256","typ":"JWT"}"#, TokenError::UnknownKey),
            (r#"{"alg":"HS256","typ":"JWT","kid":"k9"}"#, TokenError::UnknownKey),
            (r#"{"alg":"HS256","kid":"k1"}"#, TokenError::Malformed),
            (r#"{"alg":"HS256","typ":"JWE","kid":"k1"}"#, TokenError::Malformed),
            (r#"{"alg":"HS256","typ":"JWT","kid":"k1","jku":"https://x"}"#, TokenError::Malformed),
            (r#"{"alg":"HS256","typ":"JWT","kid":"k1","crit":["b64"]}"#, TokenError::Malformed),
            (r#"{"alg":"HS256","typ":"JWT","kid":"k1","kid":"k1"}"#, TokenError::Malformed),
            (r#"{"alg":"HS256","typ":"JWT","kid":1}"#, TokenError::Malformed),
            (r#"["HS256"]"#, TokenError::Malformed),
            ("not json", TokenError::Malformed),
        ];
        for (header, error) in refused {
            let token = token_from_parts(header, &body, SECRET_A);
            assert_eq!(keys.verify(&token, NOW_S), Err(error), "{header}");
        }
    }

    #[test]
    fn expiry_and_issue_time_are_checked_with_leeway() {
        let keys = keys();
        let token = keys.sign(&claims());
        let exp = NOW_S + ACCESS_TOKEN_LIFETIME_S;
        assert!(keys.verify(&token, exp - 1).is_ok());
        assert!(keys.verify(&token, exp + CLOCK_LEEWAY_S - 1).is_ok(), "within leeway");
        assert_eq!(keys.verify(&token, exp + CLOCK_LEEWAY_S), Err(TokenError::Expired));
        assert_eq!(keys.verify(&token, i64::MAX), Err(TokenError::Expired));
        assert!(keys.verify(&token, NOW_S - CLOCK_LEEWAY_S).is_ok(), "signer's clock ahead");
        let early = NOW_S - CLOCK_LEEWAY_S - 1;
        assert_eq!(keys.verify(&token, early), Err(TokenError::NotYetValid));
        assert_eq!(keys.verify(&token, i64::MIN), Err(TokenError::NotYetValid));
        let body =
            r#"{"iss":"ludus","sub":"42","role":"user","name":"ann","iat":0,"exp":99,"nbf":90}"#;
        let token = token_from_parts(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#, body, SECRET_A);
        assert_eq!(keys.verify(&token, 59), Err(TokenError::NotYetValid), "nbf honoured");
        assert!(keys.verify(&token, 60).is_ok());
    }

    #[test]
    fn issuer_audience_and_claim_types_are_checked() {
        let keys = keys();
        let header = r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#;
        let foreign = token_from_parts(header, &claims_json("other", NOW_S, NOW_S + 60), SECRET_A);
        assert_eq!(keys.verify(&foreign, NOW_S), Err(TokenError::WrongIssuer));
        let with_audience = keys.clone().with_audience("api");
        let token = with_audience.sign(&claims());
        assert!(with_audience.verify(&token, NOW_S).is_ok());
        assert_eq!(keys.verify(&token, NOW_S), Err(TokenError::WrongAudience), "unasked aud");
        let other = keys.clone().with_audience("game");
        assert_eq!(other.verify(&token, NOW_S), Err(TokenError::WrongAudience));
        let no_aud = keys.sign(&claims());
        assert_eq!(with_audience.verify(&no_aud, NOW_S), Err(TokenError::WrongAudience));
        for body in [
            r#"{"iss":"ludus","sub":42,"role":"user","name":"ann","iat":0,"exp":99}"#,
            r#"{"iss":"ludus","sub":"4x","role":"user","name":"ann","iat":0,"exp":99}"#,
            r#"{"iss":"ludus","sub":"42","role":"user","name":"ann","iat":0}"#,
            r#"{"iss":"ludus","sub":"42","role":"user","name":"ann","iat":0,"exp":"99"}"#,
            r#"{"iss":"ludus","sub":"42","role":"user","name":"ann","iat":0,"exp":99.5}"#,
            r#"{"iss":"ludus","sub":"42","sub":"43","role":"user","name":"a","iat":0,"exp":99}"#,
            r#"{"iss":"ludus","sub":"42","role":"user","name":"ann","iat":0,"exp":99} x"#,
            "null",
        ] {
            let token = token_from_parts(header, body, SECRET_A);
            assert_eq!(keys.verify(&token, 50), Err(TokenError::Malformed), "{body}");
        }
    }

    #[test]
    fn rotation_keeps_old_keys_verifying_until_they_are_dropped() {
        let before = JwtKeys::from_config("k1:0123456789abcdef0123456789abcdef-a").unwrap();
        let old_token = before.sign(&claims());
        let during = JwtKeys::from_config(
            "k2:0123456789abcdef0123456789abcdef-b, k1:0123456789abcdef0123456789abcdef-a",
        )
        .unwrap();
        assert_eq!(during.current_key_id(), "k2");
        assert_eq!(during.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(during.verify(&old_token, NOW_S).unwrap(), claims(), "old kid still configured");
        let new_token = during.sign(&claims());
        assert_eq!(segment_json(&new_token, 0), r#"{"alg":"HS256","typ":"JWT","kid":"k2"}"#);
        assert_eq!(before.verify(&new_token, NOW_S), Err(TokenError::UnknownKey));
        let after = JwtKeys::from_config("k2:0123456789abcdef0123456789abcdef-b").unwrap();
        assert_eq!(after.verify(&old_token, NOW_S), Err(TokenError::UnknownKey), "k1 dropped");
        assert!(after.verify(&new_token, NOW_S).is_ok());
    }

    #[test]
    fn jwt_secret_values_parse_or_are_refused_without_echoing_secrets() {
        let plain = JwtKeys::from_config("  an-unguessable-secret-of-32-bytes!!\n").unwrap();
        assert_eq!(plain.current_key_id(), DEFAULT_KEY_ID);
        let same = JwtKeys::new(&[("k1", b"an-unguessable-secret-of-32-bytes!!")]).unwrap();
        assert!(same.verify(&plain.sign(&claims()), NOW_S).is_ok(), "whitespace trimmed");
        let with_colon = JwtKeys::from_config("a:b:0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(with_colon.current_key_id(), "a", "the secret holds the second colon");
        let long = "x".repeat(32);
        let cases: [(&str, KeyConfigError); 10] = [
            ("", KeyConfigError::Empty),
            ("   ", KeyConfigError::Empty),
            ("short", KeyConfigError::SecretTooShort { key_id: "k1".into(), len: 5 }),
            ("k1:short", KeyConfigError::SecretTooShort { key_id: "k1".into(), len: 5 }),
            (&format!("k1:{long},{long}"), KeyConfigError::MissingKeyId { entry: 2 }),
            (
                &format!("k1:{long},k1:{long}"),
                KeyConfigError::DuplicateKeyId { key_id: "k1".into() },
            ),
            (&format!(":{long}"), KeyConfigError::BadKeyId { entry: 1 }),
            (&format!("k 1:{long}"), KeyConfigError::BadKeyId { entry: 1 }),
            (&format!("{}:{long}", "k".repeat(33)), KeyConfigError::BadKeyId { entry: 1 }),
            (&vec![format!("k:{long}"); 9].join(","), KeyConfigError::TooManyKeys),
        ];
        for (value, error) in cases {
            let refused = JwtKeys::from_config(value).unwrap_err();
            assert_eq!(refused, error, "{value:?}");
            assert!(!refused.to_string().contains("short") && !refused.to_string().contains("xxx"));
        }
        assert!(!format!("{plain:?}").contains("unguessable"), "Debug hides secrets");
    }

    #[test]
    fn generated_keys_are_random_and_named_dev() {
        let first = JwtKeys::generate();
        let second = JwtKeys::generate();
        assert_eq!(first.current_key_id(), DEV_KEY_ID);
        let token = first.sign(&claims());
        assert!(first.verify(&token, NOW_S).is_ok());
        assert_eq!(second.verify(&token, NOW_S), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_refused_with_a_typed_error() {
        let keys = keys();
        let token = keys.sign(&claims());
        let header = token.split('.').next().unwrap();
        let huge = "a".repeat(TOKEN_LEN_MAX + 1);
        assert_eq!(keys.verify(&huge, NOW_S), Err(TokenError::TooLong));
        let huge_dots = ".".repeat(1 << 20);
        assert_eq!(keys.verify(&huge_dots, NOW_S), Err(TokenError::TooLong));
        let long_header = format!("{}.e30.{}", "A".repeat(2000), "A".repeat(43));
        assert_eq!(keys.verify(&long_header, NOW_S), Err(TokenError::Malformed));
        let garbage: [&str; 17] = [
            "",
            ".",
            "..",
            "...",
            "a.b",
            "a.b.c.d",
            "a..c",
            ".b.c",
            "a.b.",
            "é.é.é",
            "eyJ.eyJ.eyJ",
            "a b.c d.e f",
            "==.==.==",
            &format!("{header}.e30="),
            &format!("{header}.e30.x.y"),
            &format!("{header}.%%%.{}", "A".repeat(43)),
            &format!("{header}..{}", "A".repeat(43)),
        ];
        for junk in garbage {
            let refused = keys.verify(junk, NOW_S).unwrap_err();
            assert!(
                matches!(refused, TokenError::Malformed | TokenError::BadSignature),
                "{junk:?}"
            );
        }
        let non_utf8: &[u8] = b"\xff\xfe.\x80\x81.\xc3\x28";
        assert_eq!(keys.verify_bytes(non_utf8, NOW_S), Err(TokenError::Malformed));
        let mut bytes = token.clone().into_bytes();
        bytes[header.len() + 3] = 0xff;
        assert!(keys.verify_bytes(&bytes, NOW_S).is_err());
        assert_eq!(TokenError::Expired.code(), "token_expired");
    }

    #[test]
    fn a_signed_payload_that_is_not_base64_or_json_is_malformed() {
        let keys = keys();
        let key = &keys.keys[0];
        for payload in ["%%%%", "e30", "bnVsbA", "W10"] {
            let input = format!("{}.{payload}", key.header_segment);
            let tag = hmac::sign(&key.hmac, input.as_bytes());
            let token = format!("{input}.{}", BASE64.encode(tag.as_ref()));
            assert_eq!(keys.verify(&token, NOW_S), Err(TokenError::Malformed), "{payload}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1_024))]

            /// Verification is total: no string, however broken, panics.
            #[test]
            fn verify_never_panics_on_strings(
                token in "[ -~]{0,2100}|.{0,400}",
                now_s in any::<i64>(),
            ) {
                let _ = keys().verify(&token, now_s);
            }

            /// Nor do arbitrary bytes, or three segments of base64url symbols.
            #[test]
            fn verify_never_panics_on_bytes(
                token in proptest::collection::vec(any::<u8>(), 0..2100),
                segments in "[A-Za-z0-9_=-]{0,300}\\.[A-Za-z0-9_-]{0,300}\\.[A-Za-z0-9_-]{0,60}",
            ) {
                let keys = keys();
                let _ = keys.verify_bytes(&token, NOW_S);
                prop_assert!(keys.verify(&segments, NOW_S).is_err());
            }

            /// Nor do correctly signed tokens whose header and claims are
            /// arbitrary JSON-ish text: the paths behind the signature check.
            #[test]
            fn verify_never_panics_behind_the_signature(
                header in r#"\{("(alg|typ|kid|x)":("HS256"|"JWT"|"k1"|1|null|\[\]),?){0,4}\}|.{0,40}"#,
                claims in r#"\{("(iss|sub|aud|role|name|iat|exp|nbf|jti)":("ludus"|"42"|-?[0-9]{1,20}|null|"x"),?){0,10}\}|.{0,80}"#,
                now_s in any::<i64>(),
            ) {
                let _ = keys().verify(&token_from_parts(&header, &claims, SECRET_A), now_s);
            }

            /// Changing any one byte of a valid token makes it invalid.
            #[test]
            fn any_single_byte_change_is_refused(index in 0usize..1_000, byte in any::<u8>()) {
                let keys = keys();
                let mut token = keys.sign(&claims()).into_bytes();
                let index = index % token.len();
                prop_assume!(token[index] != byte);
                token[index] = byte;
                prop_assert!(keys.verify_bytes(&token, NOW_S).is_err());
            }
        }
    }
}
