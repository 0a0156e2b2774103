//! Console accounts: the configured main managers and delegates, with an
//! argon2 password hash in the store (`chorus-sync users set-password`).

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};
use chrono::{DateTime, Utc};

use crate::{
    config::Config,
    domain::Email,
    store::{Store, StoreError},
};

/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Email(String),
    #[error("{0} is not the main manager or a delegate of any configured structure: no account for them")]
    NotAManager(Email),
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("cannot draw random bytes: {0}")]
    Random(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 32 bytes from the operating system.
pub(crate) fn random_bytes() -> Result<[u8; 32], AccountError> {
    let mut buf = [0_u8; 32];
    getrandom::fill(&mut buf).map_err(|e| AccountError::Random(e.to_string()))?;
    Ok(buf)
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt_bytes = random_bytes()?;
    let salt = SaltString::encode_b64(&salt_bytes[..16]).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Does `password` match the stored PHC string? A malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Sets the password of a configured manager or delegate.
pub async fn set_password(
    config: &Config,
    store: &Store,
    email: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Email, AccountError> {
    let email = Email::parse(email).map_err(|e| AccountError::Email(format!("{email:?}: {e}")))?;
    if config.catalog.decidable_by(&email).is_empty() {
        return Err(AccountError::NotAManager(email));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::TooShort);
    }
    let hash = hash_password(password)?;
    store.set_password_hash(email.as_str(), &hash, now).await?;
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::{hash_password, verify_password};

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
    }
}
