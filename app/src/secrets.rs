//! Encryption at rest for the ConnectWise credentials partners store (server only).
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce per encryption, keyed by the 32-byte secrets key from
//! configuration. The ciphertext is bound to its partner through the associated data, so a stored secret copied
//! onto another partner's row fails to decrypt instead of leaking. Stored form: `v1:` + hex(nonce ‖ ciphertext).

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// A second key derived from the secrets key, for keyed hashes (never the encryption key itself).
    mac_key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("could not encrypt the secret")]
    Encrypt,
    #[error("a stored secret could not be decrypted (wrong secrets key, or the data was altered)")]
    Decrypt,
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        let mut derive = Sha256::new();
        derive.update(b"dwid keyed-hash key v1\0");
        derive.update(key);
        Self { cipher: XChaCha20Poly1305::new(key.into()), mac_key: derive.finalize().into() }
    }

    /// HMAC-SHA-256 of `data` for one `purpose`, in hex: the same input gives the same output on every instance
    /// sharing the secrets key, and nobody without the key can compute or reverse it (rate-limit keys holding
    /// emails and addresses; signatures on redirects).
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> String {
        hex::encode(self.mac(purpose, data))
    }

    /// Whether `tag` (hex) is the keyed hash of `data` for `purpose`, compared in constant time.
    pub fn verify_keyed_hash(&self, purpose: &str, data: &[u8], tag: &str) -> bool {
        let Ok(tag) = hex::decode(tag) else { return false };
        let mut mac = self.hmac(purpose);
        mac.update(data);
        mac.verify_slice(&tag).is_ok()
    }

    fn hmac(&self, purpose: &str) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).unwrap_or_else(|_| unreachable!());
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac
    }

    fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = self.hmac(purpose);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, SecretError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| SecretError::Encrypt)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        Ok(format!("{PREFIX}{}", hex::encode(bytes)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let bytes = sealed.strip_prefix(PREFIX).and_then(|hex| hex::decode(hex).ok()).ok_or(SecretError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_stores_the_plaintext() {
        let sb = SecretBox::new(&[7u8; 32]);
        let sealed = sb.seal("private-key-123", "partner:1").expect("seal");
        assert!(sealed.starts_with("v1:") && !sealed.contains("private-key-123"));
        assert_ne!(sealed, sb.seal("private-key-123", "partner:1").expect("seal"), "random nonce");
        assert_eq!(sb.open(&sealed, "partner:1").expect("open"), "private-key-123");
    }

    #[test]
    fn refuses_another_context_another_key_or_tampering() {
        let sb = SecretBox::new(&[7u8; 32]);
        let sealed = sb.seal("secret", "partner:1").expect("seal");
        assert_eq!(sb.open(&sealed, "partner:2"), Err(SecretError::Decrypt));
        assert_eq!(SecretBox::new(&[8u8; 32]).open(&sealed, "partner:1"), Err(SecretError::Decrypt));
        let mut tampered = sealed.clone();
        let last = tampered.pop().expect("char");
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(sb.open(&tampered, "partner:1"), Err(SecretError::Decrypt));
        assert_eq!(sb.open("garbage", "partner:1"), Err(SecretError::Decrypt));
        assert_eq!(sb.open("v1:00", "partner:1"), Err(SecretError::Decrypt));
    }

    #[test]
    fn keyed_hashes_depend_on_key_purpose_and_data() {
        let sb = SecretBox::new(&[7u8; 32]);
        let tag = sb.keyed_hash("sign-in", b"demo@example.com");
        assert_eq!(tag.len(), 64);
        assert!(!tag.contains("demo"));
        assert_eq!(tag, SecretBox::new(&[7u8; 32]).keyed_hash("sign-in", b"demo@example.com"));
        assert_ne!(tag, SecretBox::new(&[8u8; 32]).keyed_hash("sign-in", b"demo@example.com"));
        assert_ne!(tag, sb.keyed_hash("api", b"demo@example.com"));
        assert!(sb.verify_keyed_hash("sign-in", b"demo@example.com", &tag));
        assert!(!sb.verify_keyed_hash("sign-in", b"demo@example.org", &tag));
        assert!(!sb.verify_keyed_hash("sign-in", b"demo@example.com", "zz"));
    }
}
