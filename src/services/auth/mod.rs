//! Authentication primitives: access tokens ([`jwt`]), password hashing
//! ([`password`]) and refresh tokens ([`refresh`]).
//!
//! Contract: pure functions and values. Nothing here does I/O, reads the
//! clock or keeps state between calls, except the operating system's
//! random source (salts, refresh tokens, family ids, development keys).
//! Times come in as parameters (`now_s`, Unix seconds, for access tokens;
//! the store's Unix milliseconds for refresh-token expiry), so tests drive
//! expiry without sleeping. Nothing here logs; secrets never appear in
//! `Debug` output or error messages.
//!
//! Which thread runs what:
//! - [`JwtKeys::verify`] runs on shard threads, for each protocol Hello
//!   with an access token and each API request: about a microsecond, no
//!   locks, a handful of small allocations (the returned claims' strings).
//! - [`PasswordHasher`] (hash, verify, dummy_verify) runs only on worker
//!   threads of the service pool (`services::pool`): one call takes tens of
//!   milliseconds of CPU and, by default, 19 MiB of memory.
//! - [`JwtKeys::sign`], [`RefreshSecret`], [`token_hash`] and
//!   [`new_family_id`] are cheap and run wherever the login or refresh
//!   flow runs (a worker, since it also talks to the store).
//!
//! The API layer's login flow, for reference: check the username's shape
//! ([`check_username`]); look the user up; verify the password, or call
//! [`PasswordHasher::dummy_verify`] when there is no such user so both
//! take the same time; rehash if [`PasswordHasher::needs_rehash`]; sign an
//! access token ([`AccessClaims::new`]) and issue a [`RefreshSecret`],
//! storing only its [`token_hash`], its family id and its expiry.

pub mod jwt;
pub mod password;
pub mod refresh;

pub use jwt::{
    AccessClaims, JwtKeys, KeyConfigError, TokenError, ACCESS_TOKEN_LIFETIME_S, CLOCK_LEEWAY_S,
    ISSUER, TOKEN_LEN_MAX,
};
pub use password::{
    check_password_policy, check_username, PasswordError, PasswordHasher, PasswordParams,
};
pub use refresh::{
    new_family_id, token_hash, MalformedRefreshToken, RefreshSecret, REFRESH_TOKEN_LIFETIME_MS,
};
