//! Partners, password hashes, sessions and the failed-sign-in ledger (server only).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{normalize_email, validate_email, validate_new_password};
use crate::db::{Db, StoreError, is_unique_violation, now_millis};

/// A signed-in partner, as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: i64,
    pub email: String,
}

/// Hashes a password with Argon2id and a random salt. Slow by design: call it off the async executor.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Checks a password against a stored PHC hash. A malformed hash never verifies.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// [`verify_password`] computed in `memory` (grown to the hash's size, and kept by the caller for the next one),
/// so that repeated verifications allocate nothing. The comparison is constant-time (`Output`'s equality).
pub fn verify_password_in(password: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) =
        (argon2::Algorithm::try_from(parsed.algorithm), argon2::Params::try_from(&parsed))
    else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    hashed.is_ok() && argon2::password_hash::Output::new(&out).is_ok_and(|out| out == expected)
}

/// A hash of a password nobody knows, verified against when the email is unknown so that the answer takes as long
/// as for a known email.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that never matches").unwrap_or_default())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreatePartnerError {
    #[error("{0}")]
    Invalid(String),
    #[error("a partner with the email {0} already exists")]
    Exists(String),
    #[error("could not hash the password")]
    Hash,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create_partner(db: &Db, email: &str, password: &str) -> Result<Partner, CreatePartnerError> {
    let email = validate_email(email).map_err(CreatePartnerError::Invalid)?;
    validate_new_password(password).map_err(CreatePartnerError::Invalid)?;
    let password = password.to_string();
    let hash = blocking(move || hash_password(&password)).await.map_err(|_| CreatePartnerError::Hash)?;
    let row = sqlx::query(
        "INSERT INTO partners (email, email_key, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(&email)
    .bind(normalize_email(&email))
    .bind(&hash)
    .bind(now_millis())
    .fetch_one(&db.pool)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            CreatePartnerError::Exists(email.clone())
        } else {
            CreatePartnerError::Store(err.into())
        }
    })?;
    Ok(Partner { id: row.try_get("id").map_err(StoreError::from)?, email })
}

pub async fn count_partners(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM partners").fetch_one(&db.pool).await?.try_get("n")?)
}

/// The partner with this email (compared as sign-in compares it), for operator commands.
pub async fn partner_by_email(db: &Db, email: &str) -> Result<Option<Partner>, StoreError> {
    let row = sqlx::query("SELECT id, email FROM partners WHERE email_key = $1")
        .bind(normalize_email(email))
        .fetch_optional(&db.pool)
        .await?;
    Ok(row
        .map(|row| Ok::<_, sqlx::Error>(Partner { id: row.try_get("id")?, email: row.try_get("email")? }))
        .transpose()?)
}

/// What checking a sign-in found. The partner is told only "invalid email or password" either way; the server
/// knows which, for its own records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Ok(Partner),
    WrongPassword(Partner),
    UnknownEmail,
}

/// The partner with this email, if any (no password check).
pub async fn lookup(db: &Db, email: &str) -> Result<Option<Partner>, StoreError> {
    partner_by_email(db, email).await
}

/// Checks an email and password with one argon2 verification, taking as long for an unknown email as for a known
/// one. The hashing slot ([`super::slots::HashSlots`]) moves into the blocking task and is freed when the hash is
/// done, so abandoned requests never let more verifications run than there are slots.
pub async fn check_credentials(
    db: &Db,
    email: &str,
    password: &str,
    mut slot: super::slots::Slot,
) -> Result<Checked, StoreError> {
    let row = sqlx::query("SELECT id, email, password_hash FROM partners WHERE email_key = $1")
        .bind(normalize_email(email))
        .fetch_optional(&db.pool)
        .await?;
    let (partner, hash) = match row {
        Some(row) => (
            Some(Partner { id: row.try_get("id")?, email: row.try_get("email")? }),
            row.try_get::<String, _>("password_hash")?,
        ),
        None => (None, decoy_hash().to_string()),
    };
    let password = password.to_string();
    let ok = blocking(move || {
        let ok = verify_password_in(&password, &hash, slot.memory());
        drop(slot);
        ok
    })
    .await;
    Ok(match (partner, ok) {
        (Some(partner), true) => Checked::Ok(partner),
        (Some(partner), false) => Checked::WrongPassword(partner),
        (None, _) => Checked::UnknownEmail,
    })
}

/// Checks an email and password. `None` when either is wrong (the caller cannot tell which, by design). For
/// operator tools; sign-in goes through its rate limits and hashing slots first.
pub async fn authenticate(db: &Db, email: &str, password: &str) -> Result<Option<Partner>, StoreError> {
    let slots = super::slots::HashSlots::new(1, 0, std::time::Duration::ZERO);
    let Ok(slot) = slots.acquire(super::slots::Lane::Suspect).await else {
        return Ok(None);
    };
    Ok(match check_credentials(db, email, password, slot).await? {
        Checked::Ok(partner) => Some(partner),
        _ => None,
    })
}

/// A new random session token (sent to the browser) and its SHA-256 (the only form stored).
pub fn new_session_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session for the partner and records the sign-in (by `actor`) in the same transaction.
pub async fn create_session(
    db: &Db,
    partner_id: i64,
    ttl_millis: i64,
    actor: &crate::activity::Actor,
) -> Result<String, StoreError> {
    let (token, hash) = new_session_token();
    let now = now_millis();
    let mut tx = db.pool.begin().await?;
    sqlx::query("INSERT INTO sessions (token_hash, partner_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(&hash)
        .bind(partner_id)
        .bind(now)
        .bind(now + ttl_millis)
        .execute(&mut *tx)
        .await?;
    // Expired sessions of this partner are of no use to anyone.
    sqlx::query("DELETE FROM sessions WHERE partner_id = $1 AND expires_at < $2")
        .bind(partner_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    crate::activity::store::record(&mut tx, partner_id, actor, crate::activity::Kind::SignedIn, "", None).await?;
    tx.commit().await?;
    Ok(token)
}

/// The partner a session token belongs to, if the session exists and has not expired.
pub async fn session_partner(db: &Db, token: &str) -> Result<Option<Partner>, StoreError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT p.id, p.email FROM sessions s JOIN partners p ON p.id = s.partner_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(hash_token(token))
    .bind(now_millis())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|row| Ok(Partner { id: row.try_get("id")?, email: row.try_get("email")? })).transpose()
}

pub async fn delete_session(db: &Db, token: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(hash_token(token)).execute(&db.pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn verifying_in_reused_memory_agrees_with_the_library() {
        let hash = hash_password("correct horse battery").expect("hash");
        let mut memory = Vec::new();
        assert!(verify_password_in("correct horse battery", &hash, &mut memory));
        let blocks = memory.len();
        assert!(blocks > 0);
        assert!(!verify_password_in("correct horse batterz", &hash, &mut memory));
        assert!(verify_password_in("correct horse battery", &hash, &mut memory));
        assert_eq!(memory.len(), blocks, "the memory is reused, not grown");
        assert!(!verify_password_in("anything", "not a hash", &mut memory));
        // Hashes made with other parameters (an older deployment's) still verify.
        let params = argon2::Params::new(8 * 1024, 2, 1, None).expect("params");
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let other = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"old password", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_password_in("old password", &other, &mut memory));
        assert!(!verify_password_in("old passwore", &other, &mut memory));
    }

    #[test]
    fn session_tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_session_token();
        let (b, _) = new_session_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, hash_a);
        assert_eq!(hash_token(&a), hash_a);
    }
}
