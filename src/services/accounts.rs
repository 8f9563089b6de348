//! Accounts and their sessions: register, log in, guests and their
//! upgrade, refresh-token rotation with reuse detection, logout.
//!
//! Runs on storage workers only (argon2 takes tens of milliseconds and the
//! store blocks). Every operation that answers with tokens has stored what
//! they stand for before returning, so a client never holds a refresh
//! token the database does not know.

use crate::services::auth::jwt::{AccessClaims, JwtKeys, ACCESS_TOKEN_LIFETIME_S};
use crate::services::auth::password::{check_password_policy, check_username, PasswordHasher};
use crate::services::auth::refresh::{self, RefreshSecret, REFRESH_TOKEN_LIFETIME_MS};
use crate::services::store::{
    new_user_id, Conflict, NewUser, Profile, RefreshToken, Role, Rotation, Store, StoreError, User,
    NICKNAME_LEN_MAX,
};

/// Times an insert is retried after an account id collision (2^-62 each).
const ID_ATTEMPTS_MAX: usize = 3;

/// Why an account operation failed; [`AccountError::status`] maps each to
/// the API's answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the username is taken")]
    UsernameTaken,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    #[error("the refresh token was used before: every session of that login is revoked")]
    RefreshTokenReused,
    #[error("only a guest account can be upgraded")]
    NotAGuest,
    #[error("no such account")]
    NotFound,
    #[error("no such match")]
    MatchNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AccountError {
    /// HTTP status and the error's stable code.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            AccountError::Invalid(_) => (400, "invalid_request"),
            AccountError::UsernameTaken => (409, "username_taken"),
            AccountError::InvalidCredentials => (401, "invalid_credentials"),
            AccountError::InvalidRefreshToken => (401, "invalid_refresh_token"),
            AccountError::RefreshTokenReused => (401, "refresh_token_reused"),
            AccountError::NotAGuest => (409, "not_a_guest"),
            AccountError::NotFound => (404, "not_found"),
            AccountError::MatchNotFound => (404, "match_not_found"),
            AccountError::Store(StoreError::Unavailable(_)) => (503, "unavailable"),
            AccountError::Store(_) | AccountError::Hashing(_) => (500, "internal"),
        }
    }
}

/// What a successful sign-in hands the client.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    pub user: User,
    pub access_token: String,
    pub expires_in_s: i64,
    pub refresh_token: String,
}

/// The account operations over one worker's store.
pub struct Accounts<'a> {
    pub store: &'a mut dyn Store,
    pub passwords: &'a PasswordHasher,
    pub keys: &'a JwtKeys,
}

impl Accounts<'_> {
    pub fn register(
        &mut self,
        username: &str,
        password: &str,
        nickname: Option<&str>,
        now_ms: i64,
    ) -> Result<SignedIn, AccountError> {
        check_username(username).map_err(AccountError::Invalid)?;
        check_password_policy(password).map_err(AccountError::Invalid)?;
        let nickname = checked_nickname(nickname.unwrap_or(username))?;
        let hash = self.hash(password)?;
        let user = self.create(Some(username), &nickname, Some(&hash), Role::Player, now_ms)?;
        self.sign_in(user, now_ms)
    }

    pub fn login(
        &mut self,
        username: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<SignedIn, AccountError> {
        let user = self.store.user_by_username(username)?;
        let Some((user, hash)) = user.and_then(|user| {
            let hash = user.password_hash.clone()?;
            Some((user, hash))
        }) else {
            // The same argon2 work as a real check: response time does not
            // tell which usernames exist.
            self.passwords.dummy_verify(password);
            return Err(AccountError::InvalidCredentials);
        };
        let matches = self
            .passwords
            .verify(password, &hash)
            .map_err(|error| AccountError::Hashing(error.to_string()))?;
        if !matches {
            return Err(AccountError::InvalidCredentials);
        }
        if self.passwords.needs_rehash(&hash) {
            self.rehash(&user, password, now_ms);
        }
        self.sign_in(user, now_ms)
    }

    pub fn guest(&mut self, nickname: &str, now_ms: i64) -> Result<SignedIn, AccountError> {
        let nickname = checked_nickname(nickname)?;
        let user = self.create(None, &nickname, None, Role::Guest, now_ms)?;
        self.sign_in(user, now_ms)
    }

    /// Gives a guest a username and password; its id, profile and stats stay.
    pub fn upgrade(
        &mut self,
        user_id: i64,
        username: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<SignedIn, AccountError> {
        check_username(username).map_err(AccountError::Invalid)?;
        check_password_policy(password).map_err(AccountError::Invalid)?;
        let hash = self.hash(password)?;
        let user = match self.store.upgrade_guest(user_id, username, &hash, now_ms) {
            Ok(Some(user)) => user,
            Ok(None) => return Err(AccountError::NotAGuest),
            Err(StoreError::Conflict(Conflict::Username)) => {
                return Err(AccountError::UsernameTaken)
            }
            Err(error) => return Err(error.into()),
        };
        self.sign_in(user, now_ms)
    }

    /// Rotates a refresh token: the old one is spent, a new pair is issued
    /// in the same family. A spent token presented again revokes the family.
    pub fn refresh(&mut self, presented: &str, now_ms: i64) -> Result<SignedIn, AccountError> {
        let old_hash = presented_hash(presented)?;
        let Some(old) = self.store.refresh_token(&old_hash)? else {
            return Err(AccountError::InvalidRefreshToken);
        };
        let secret = RefreshSecret::generate();
        let new = RefreshToken {
            token_hash: refresh::token_hash(secret.as_str()),
            user_id: old.user_id,
            family_id: old.family_id.clone(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + REFRESH_TOKEN_LIFETIME_MS,
            used_at_ms: None,
            revoked_at_ms: None,
        };
        match self.store.rotate_refresh_token(&old_hash, &new, now_ms)? {
            Rotation::Rotated { user_id } => {
                let user = self.store.user_by_id(user_id)?.ok_or(AccountError::NotFound)?;
                Ok(self.access(user, secret, now_ms))
            }
            Rotation::Reused { user_id, family_id } => {
                tracing::warn!(user_id, family_id, "refresh token reused: family revoked");
                Err(AccountError::RefreshTokenReused)
            }
            Rotation::Dead | Rotation::Unknown => Err(AccountError::InvalidRefreshToken),
        }
    }

    /// Revokes the login the refresh token belongs to.
    pub fn logout(&mut self, presented: &str, now_ms: i64) -> Result<(), AccountError> {
        let hash = presented_hash(presented)?;
        match self.store.revoke_refresh_family(&hash, now_ms)? {
            Some(_) => Ok(()),
            None => Err(AccountError::InvalidRefreshToken),
        }
    }

    pub fn profile(&mut self, user_id: i64) -> Result<Profile, AccountError> {
        self.store.profile(user_id)?.ok_or(AccountError::NotFound)
    }

    /// Stores the password again under the current parameters (they were
    /// raised since it was hashed). A failure costs nothing but the
    /// upgrade: the login goes on with the old hash still valid.
    fn rehash(&mut self, user: &User, password: &str, now_ms: i64) {
        let rehashed = self
            .hash(password)
            .and_then(|hash| Ok(self.store.set_password_hash(user.id, &hash, now_ms)?));
        match rehashed {
            Ok(_) => tracing::info!(user_id = user.id, "password rehashed with current parameters"),
            Err(error) => tracing::warn!(user_id = user.id, %error, "password rehash failed"),
        }
    }

    fn hash(&self, password: &str) -> Result<String, AccountError> {
        self.passwords.hash(password).map_err(|error| AccountError::Hashing(error.to_string()))
    }

    fn create(
        &mut self,
        username: Option<&str>,
        nickname: &str,
        password_hash: Option<&str>,
        role: Role,
        now_ms: i64,
    ) -> Result<User, AccountError> {
        for _ in 0..ID_ATTEMPTS_MAX {
            let user = NewUser {
                id: new_user_id(),
                username: username.map(str::to_owned),
                nickname: nickname.to_owned(),
                password_hash: password_hash.map(str::to_owned),
                role,
                now_ms,
            };
            match self.store.create_user(&user) {
                Ok(user) => return Ok(user),
                Err(StoreError::Conflict(Conflict::UserId)) => continue,
                Err(StoreError::Conflict(Conflict::Username)) => {
                    return Err(AccountError::UsernameTaken)
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AccountError::Store(StoreError::Conflict(Conflict::UserId)))
    }

    /// Starts a new token family (a login) for `user`.
    fn sign_in(&mut self, user: User, now_ms: i64) -> Result<SignedIn, AccountError> {
        let secret = RefreshSecret::generate();
        self.store.insert_refresh_token(&RefreshToken {
            token_hash: refresh::token_hash(secret.as_str()),
            user_id: user.id,
            family_id: refresh::new_family_id(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + REFRESH_TOKEN_LIFETIME_MS,
            used_at_ms: None,
            revoked_at_ms: None,
        })?;
        Ok(self.access(user, secret, now_ms))
    }

    fn access(&self, user: User, secret: RefreshSecret, now_ms: i64) -> SignedIn {
        let now_s = now_ms.div_euclid(1_000);
        let claims = AccessClaims::new(user.id, user.role.as_str(), user.nickname.as_str(), now_s);
        SignedIn {
            access_token: self.keys.sign(&claims),
            expires_in_s: ACCESS_TOKEN_LIFETIME_S,
            refresh_token: secret.as_str().to_owned(),
            user,
        }
    }
}

/// The stored hash of a presented refresh token, if it has the right shape.
fn presented_hash(presented: &str) -> Result<String, AccountError> {
    let secret = RefreshSecret::parse(presented).map_err(|_| AccountError::InvalidRefreshToken)?;
    Ok(secret.hash())
}

/// Nicknames: at most 32 characters as sent and at least one after
/// trimming, no control characters anywhere; stored trimmed. Both limits
/// apply to what the client sent, so that docs/openapi.yaml's `Nickname`
/// (maxLength and a pattern) says exactly what is accepted.
pub fn checked_nickname(nickname: &str) -> Result<String, AccountError> {
    let trimmed = nickname.trim();
    if trimmed.is_empty() || nickname.chars().count() > NICKNAME_LEN_MAX {
        return Err(AccountError::Invalid("a nickname has 1 to 32 characters"));
    }
    if nickname.chars().any(char::is_control) {
        return Err(AccountError::Invalid("a nickname has no control characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::auth::password::PasswordParams;
    use crate::services::store::sqlite::SqliteStore;

    fn hasher(memory_kib: u32) -> PasswordHasher {
        PasswordHasher::new(PasswordParams { memory_kib, iterations: 1, parallelism: 1 }).unwrap()
    }

    /// Raising the hashing cost upgrades each stored hash at that
    /// account's next login; the password still works before and after.
    #[test]
    fn a_login_rehashes_a_password_hashed_with_older_parameters() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.migrate(1).unwrap();
        let keys = JwtKeys::generate();
        let (cheap, dearer) = (hasher(1_024), hasher(2_048));
        let mut accounts = Accounts { store: &mut store, passwords: &cheap, keys: &keys };
        let id = accounts.register("rehash", "a fine password", None, 10).unwrap().user.id;
        let stored =
            |store: &mut SqliteStore| store.user_by_id(id).unwrap().unwrap().password_hash.unwrap();
        let before = stored(&mut store);
        assert!(dearer.needs_rehash(&before));

        let mut accounts = Accounts { store: &mut store, passwords: &dearer, keys: &keys };
        accounts.login("rehash", "a fine password", 20).unwrap();
        let after = stored(&mut store);
        assert_ne!(after, before);
        assert!(!dearer.needs_rehash(&after));
        let mut accounts = Accounts { store: &mut store, passwords: &dearer, keys: &keys };
        accounts.login("rehash", "a fine password", 30).unwrap();
        let refused = accounts.login("rehash", "wrong password", 40);
        assert_eq!(refused, Err(AccountError::InvalidCredentials));
        assert_eq!(stored(&mut store), after, "no rehash once current");
    }

    /// The rule docs/openapi.yaml's `Nickname` states: at most 32
    /// characters as sent, not blank, no control characters anywhere;
    /// surrounding whitespace is trimmed off what is stored.
    #[test]
    fn nicknames_are_checked_as_sent_and_stored_trimmed() {
        assert_eq!(checked_nickname("  zoë ♠ ").unwrap(), "zoë ♠");
        assert_eq!(checked_nickname(&"é".repeat(32)).unwrap(), "é".repeat(32));
        let padded = format!(" {}", "a".repeat(32));
        assert!(checked_nickname(&padded).is_err(), "33 characters as sent");
        for blank in ["", " ", "\u{3000}\u{a0}"] {
            assert!(checked_nickname(blank).is_err(), "{blank:?}");
        }
        for control in ["a\u{0}", "bob\n", "\tbob", "x\u{85}y", "\u{7f}"] {
            assert!(checked_nickname(control).is_err(), "{control:?}");
        }
    }
}
