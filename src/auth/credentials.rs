//! Passwords and tokens.
//!
//! Passwords are hashed with Argon2id on the blocking thread pool (hashing takes tens of
//! milliseconds of CPU, which must not stall the async runtime). Session and API tokens are 256
//! random bits; only their SHA-256 is stored, which is enough for tokens of that entropy.

use argon2::{
    Argon2, PasswordHasher, PasswordVerifier,
    password_hash::{PasswordHash, SaltString, rand_core::OsRng, rand_core::RngCore},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Prefix of personal API tokens, so that they are recognisable in logs and secret scanners.
pub const API_TOKEN_PREFIX: &str = "tdg_";

/// A new secret token and the hash to store for it.
pub struct NewToken {
    /// Given to the client once; never stored.
    pub secret: String,
    pub hash: Vec<u8>,
}

/// 256 random bits, URL-safe base64, optionally prefixed.
pub fn new_token(prefix: &str) -> NewToken {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    NewToken { secret, hash }
}

pub fn hash_token(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A random value for a Content-Security-Policy nonce.
pub fn new_nonce() -> String {
    let mut bytes = [0_u8; 16];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hashes a password with Argon2id and a random salt (PHC string format).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|error| internal("password hashing task", &error))?
    .map_err(|error| internal("password hashing", &error))
}

/// Checks a password against a stored hash. With no stored hash (unknown user) it still spends
/// the time of a real check, so response times do not reveal which usernames exist.
pub async fn verify_password(
    password: String,
    stored_hash: Option<String>,
) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let stored = stored_hash.unwrap_or_else(|| DUMMY_HASH.with(Clone::clone));
        let parsed =
            PasswordHash::new(&stored).map_err(|error| internal("stored password hash", &error))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|error| internal("password check task", &error))?
}

thread_local! {
    /// A hash of a password nobody knows, for timing-safe checks of unknown users.
    static DUMMY_HASH: String = {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(new_token("").secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .expect("Argon2 hashes with default parameters")
    };
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> AppError {
    tracing::error!(%error, "{what} failed");
    AppError::Internal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let first = new_token(API_TOKEN_PREFIX);
        let second = new_token(API_TOKEN_PREFIX);
        assert!(first.secret.starts_with(API_TOKEN_PREFIX));
        assert_eq!(first.secret.len(), API_TOKEN_PREFIX.len() + 43);
        assert_ne!(first.secret, second.secret);
        assert_eq!(first.hash, hash_token(&first.secret));
        assert_eq!(first.hash.len(), 32);
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), Some(hash)).await.unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }
}
