//! Password hashing with argon2id (RFC 9106), stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), and the rules for
//! choosing a password and a username.
//!
//! Owns: the hashing parameters ([`PasswordParams`]) and the one
//! [`PasswordHasher`] built from them. Never does: run on a shard (a hash
//! with the default parameters takes tens of milliseconds of CPU and 19 MiB
//! of memory, so it belongs on the worker pool; peak memory is that times
//! the number of workers hashing at once), store or log a password, or
//! follow a stored hash's parameters beyond this module's bounds (a
//! corrupted or planted row cannot make a login allocate gigabytes).
//!
//! Login should answer in the same time whether or not the username
//! exists: for an unknown user, call [`PasswordHasher::dummy_verify`] so
//! the response time does not tell which usernames are taken.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Salt bytes per hash (RFC 9106 recommends 16).
pub const SALT_LEN: usize = 16;
/// Hash output bytes.
pub const HASH_LEN: usize = 32;
/// Longest password hashed or checked, in bytes: the policy allows 128
/// characters (at most 512 bytes of UTF-8); this bounds the work a request
/// can cause even where the policy is not applied (login).
pub const PASSWORD_BYTES_MAX: usize = 1_024;
/// Bounds on parameters, ours and those read from stored hashes.
pub const MEMORY_KIB_MAX: u32 = 1 << 20;
pub const ITERATIONS_MAX: u32 = 16;
pub const PARALLELISM_MAX: u32 = 16;
/// Password length bounds, in characters (NIST SP 800-63B: at least 8,
/// allow at least 64).
pub const PASSWORD_CHARS_MIN: usize = 8;
pub const PASSWORD_CHARS_MAX: usize = 128;
/// Username length bounds, in characters (the store's column holds 32).
pub const USERNAME_CHARS_MIN: usize = 3;
pub const USERNAME_CHARS_MAX: usize = 32;

/// The salt of [`PasswordHasher::dummy_verify`]: any fixed value will do.
const DUMMY_SALT: [u8; SALT_LEN] = *b"ludus-dummy-salt";

/// Why hashing or checking a password failed. A wrong password is not an
/// error: [`PasswordHasher::verify`] answers `Ok(false)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing parameters out of bounds: {0}")]
    InvalidParams(&'static str),
    #[error("the password is longer than {PASSWORD_BYTES_MAX} bytes")]
    TooLong,
    #[error("the stored password hash is not a valid PHC string")]
    MalformedHash,
    #[error("the stored password hash is not argon2id v19 within this server's bounds")]
    UnsupportedHash,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Passes over that memory.
    pub iterations: u32,
    /// Lanes (threads' worth of work, computed on one thread here).
    pub parallelism: u32,
}

impl PasswordParams {
    /// OWASP's first recommended argon2id setting (Password Storage Cheat
    /// Sheet): 19 MiB, 2 passes, 1 lane, the argon2 crate's default as
    /// well. It is the floor OWASP gives, chosen because hashes run on a
    /// small worker pool of a 2-core server: about 20-40 ms each. Raise
    /// `memory_kib` first where memory allows; stored hashes are upgraded
    /// on the next login ([`PasswordHasher::needs_rehash`]).
    pub const DEFAULT: PasswordParams =
        PasswordParams { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    fn to_argon2(self) -> Result<Params, PasswordError> {
        if self.parallelism == 0 || self.parallelism > PARALLELISM_MAX {
            return Err(PasswordError::InvalidParams("parallelism must be 1 to 16"));
        }
        if self.iterations == 0 || self.iterations > ITERATIONS_MAX {
            return Err(PasswordError::InvalidParams("iterations must be 1 to 16"));
        }
        if self.memory_kib < 8 * self.parallelism || self.memory_kib > MEMORY_KIB_MAX {
            return Err(PasswordError::InvalidParams("memory must be 8 KiB per lane to 1 GiB"));
        }
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(HASH_LEN))
            .map_err(|_| PasswordError::InvalidParams("argon2 refused them"))
    }
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams::DEFAULT
    }
}

/// Hashes and checks passwords. Cheap to clone; build one per worker or
/// share one.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: PasswordParams,
    argon2: Argon2<'static>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        PasswordHasher::new(PasswordParams::DEFAULT).expect("the default parameters are valid")
    }
}

impl PasswordHasher {
    pub fn new(params: PasswordParams) -> Result<PasswordHasher, PasswordError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
        Ok(PasswordHasher { params, argon2 })
    }

    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// A PHC string for `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.len() > PASSWORD_BYTES_MAX {
            return Err(PasswordError::TooLong);
        }
        use ring::rand::{SecureRandom, SystemRandom};
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new().fill(&mut salt).expect("the OS random source works");
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        let hash = self
            .argon2
            .hash_password(password.as_bytes(), &salt)
            .map_err(|_| PasswordError::InvalidParams("argon2 refused them"))?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches the stored `phc` string, compared in
    /// constant time, with the parameters the hash was made with (so old
    /// hashes keep working after the defaults change). An error means the
    /// stored hash itself is bad, never that the password is wrong.
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool, PasswordError> {
        let hash = PasswordHash::new(phc).map_err(|_| PasswordError::MalformedHash)?;
        let argon2 = stored_argon2(&hash)?;
        if password.len() > PASSWORD_BYTES_MAX {
            // No stored hash can match: hash() refuses such passwords.
            return Ok(false);
        }
        match argon2.verify_password(password.as_bytes(), &hash) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(_) => Err(PasswordError::MalformedHash),
        }
    }

    /// Whether a hash that just verified should be replaced by a new one
    /// made with the current parameters (also true for an unreadable one).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return true;
        };
        hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
            || params.m_cost() != self.params.memory_kib
            || params.t_cost() != self.params.iterations
            || params.p_cost() != self.params.parallelism
            || params.output_len() != Some(HASH_LEN)
    }

    /// The work of one [`PasswordHasher::verify`] with the current
    /// parameters, for a login whose username does not exist, so that it
    /// takes as long as one whose password is wrong.
    pub fn dummy_verify(&self, password: &str) {
        if password.len() > PASSWORD_BYTES_MAX {
            return; // As verify does.
        }
        let mut output = [0u8; HASH_LEN];
        let result = self.argon2.hash_password_into(password.as_bytes(), &DUMMY_SALT, &mut output);
        debug_assert!(result.is_ok(), "validated parameters hash any bounded password");
        std::hint::black_box(output);
    }
}

/// The argon2id instance a stored hash asks for, if within our bounds.
fn stored_argon2(hash: &PasswordHash<'_>) -> Result<Argon2<'static>, PasswordError> {
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return Err(PasswordError::UnsupportedHash);
    }
    if hash.version.is_some_and(|version| version != u32::from(Version::V0x13)) {
        return Err(PasswordError::UnsupportedHash);
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(PasswordError::MalformedHash);
    }
    let params = Params::try_from(hash).map_err(|_| PasswordError::MalformedHash)?;
    let within_bounds = params.m_cost() <= MEMORY_KIB_MAX
        && params.t_cost() <= ITERATIONS_MAX
        && params.p_cost() <= PARALLELISM_MAX
        && params.output_len().is_some_and(|len| (16..=64).contains(&len));
    if !within_bounds {
        return Err(PasswordError::UnsupportedHash);
    }
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Whether a new password may be chosen (NIST SP 800-63B section 3.1.1.2):
/// 8 to 128 characters, not only whitespace. No composition rules (they
/// push people to predictable patterns); spaces and any Unicode allowed.
pub fn check_password_policy(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < PASSWORD_CHARS_MIN {
        return Err("password must be at least 8 characters");
    }
    if chars > PASSWORD_CHARS_MAX {
        return Err("password must be at most 128 characters");
    }
    if password.chars().all(char::is_whitespace) {
        return Err("password must not be only whitespace");
    }
    Ok(())
}

/// Whether a username may be registered: 3 to 32 characters of
/// `[A-Za-z0-9_-]`, starting with a letter.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    if !username.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-') {
        return Err("username may only contain letters, digits, '_' and '-'");
    }
    // ASCII only from here, so bytes are characters.
    if username.len() < USERNAME_CHARS_MIN {
        return Err("username must be at least 3 characters");
    }
    if username.len() > USERNAME_CHARS_MAX {
        return Err("username must be at most 32 characters");
    }
    if !username.as_bytes()[0].is_ascii_alphabetic() {
        return Err("username must start with a letter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests run in milliseconds.
    const CHEAP: PasswordParams =
        PasswordParams { memory_kib: 1_024, iterations: 1, parallelism: 1 };

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(CHEAP).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = hasher();
        let phc = hasher.hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert_eq!(hasher.verify("correct horse battery staple", &phc), Ok(true));
        assert_eq!(hasher.verify("correct horse battery stapler", &phc), Ok(false));
        assert_eq!(hasher.verify("", &phc), Ok(false));
        assert_eq!(hasher.verify(&"x".repeat(PASSWORD_BYTES_MAX + 1), &phc), Ok(false));
        let again = hasher.hash("correct horse battery staple").unwrap();
        assert_ne!(phc, again, "a fresh salt each time");
        assert_eq!(hasher.hash(&"x".repeat(PASSWORD_BYTES_MAX + 1)), Err(PasswordError::TooLong));
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify_and_ask_for_a_rehash() {
        let old = PasswordHasher::new(PasswordParams { memory_kib: 512, ..CHEAP }).unwrap();
        let phc = old.hash("hunter2hunter2").unwrap();
        let current = hasher();
        assert_eq!(current.verify("hunter2hunter2", &phc), Ok(true));
        assert!(current.needs_rehash(&phc));
        assert!(!old.needs_rehash(&phc));
        assert!(!current.needs_rehash(&current.hash("hunter2hunter2").unwrap()));
        assert!(current.needs_rehash("garbage"));
    }

    #[test]
    fn malformed_or_foreign_stored_hashes_are_errors() {
        let hasher = hasher();
        let phc = hasher.hash("hunter2hunter2").unwrap();
        let malformed: [&str; 6] = [
            "",
            "garbage",
            "$argon2id$v=19$m=1024,t=1,p=1",
            "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA",
            &phc[..phc.len() - 10],
            &format!("{phc}$extra"),
        ];
        for stored in malformed {
            let refused = hasher.verify("hunter2hunter2", stored);
            assert_eq!(refused, Err(PasswordError::MalformedHash), "{stored}");
        }
        let unsupported = [
            phc.replace("$argon2id$", "$argon2i$"),
            phc.replace("$v=19$", "$v=16$"),
            phc.replace("m=1024", "m=4194304"),
            phc.replace("t=1", "t=1000"),
        ];
        for stored in &unsupported {
            let refused = hasher.verify("hunter2hunter2", stored);
            assert_eq!(refused, Err(PasswordError::UnsupportedHash), "{stored}");
        }
        let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert!(hasher.verify("hunter2hunter2", bcrypt).is_err());
    }

    #[test]
    fn parameters_out_of_bounds_are_refused() {
        for params in [
            PasswordParams { parallelism: 0, ..CHEAP },
            PasswordParams { iterations: 0, ..CHEAP },
            PasswordParams { memory_kib: 4, ..CHEAP },
            PasswordParams { memory_kib: MEMORY_KIB_MAX + 1, ..CHEAP },
            PasswordParams { iterations: ITERATIONS_MAX + 1, ..CHEAP },
            PasswordParams { parallelism: PARALLELISM_MAX + 1, memory_kib: 1 << 16, ..CHEAP },
        ] {
            assert!(PasswordHasher::new(params).is_err(), "{params:?}");
        }
    }

    #[test]
    fn dummy_verify_costs_about_as_much_as_a_real_verify() {
        let hasher = hasher();
        let phc = hasher.hash("hunter2hunter2").unwrap();
        let timed = |work: &dyn Fn()| {
            let start = std::time::Instant::now();
            work();
            start.elapsed()
        };
        // The fastest of many interleaved runs, and loose bounds: other
        // tests run alongside on a shared, noisy machine.
        let (mut real, mut dummy) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..20 {
            real = real.min(timed(&|| assert_eq!(hasher.verify("wrong", &phc), Ok(false))));
            dummy = dummy.min(timed(&|| hasher.dummy_verify("wrong")));
        }
        assert!(dummy * 3 > real && real * 3 > dummy, "real {real:?}, dummy {dummy:?}");
    }

    #[test]
    fn the_default_parameters_hash_and_verify() {
        let hasher = PasswordHasher::default();
        assert_eq!(hasher.params(), PasswordParams::DEFAULT);
        let phc = hasher.hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(hasher.verify("correct horse battery staple", &phc), Ok(true));
        assert!(!hasher.needs_rehash(&phc));
    }

    #[test]
    fn password_policy_is_length_only() {
        let accepted: [&str; 5] =
            ["password", "12345678", "correct horse", "Ünïcødé🦊", &"x".repeat(128)];
        for accepted in accepted {
            assert_eq!(check_password_policy(accepted), Ok(()), "{accepted}");
        }
        let refused: [&str; 6] =
            ["", "1234567", "🦊🦊🦊🦊🦊🦊🦊", "        ", "\t\n \u{3000}     ", &"x".repeat(129)];
        for refused in refused {
            assert!(check_password_policy(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn usernames_are_short_ascii_words_starting_with_a_letter() {
        let accepted: [&str; 4] = ["ann", "NebulaFox_42", "a-b", &format!("a{}", "b".repeat(31))];
        for accepted in accepted {
            assert_eq!(check_username(accepted), Ok(()), "{accepted}");
        }
        let refused: [&str; 9] = [
            "",
            "an",
            "4nn",
            "_ann",
            "-ann",
            "ann!",
            "an n",
            "änn",
            &format!("a{}", "b".repeat(32)),
        ];
        for refused in refused {
            assert!(check_username(refused).is_err(), "{refused:?}");
        }
    }
}
