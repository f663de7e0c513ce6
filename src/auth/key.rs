//! API key material: generation, parsing, digests and the constant-time check.
//!
//! A key is `lh_pat_` followed by 43 URL-safe base64 characters that encode
//! 32 bytes from the operating system's random source (upstream's format).
//! The first [`PREFIX_LEN`] characters (`lh_pat_` + 9 random characters) are
//! the *lookup prefix*: stored in clear, unique in the database, shown in the
//! admin API. The whole key is stored only as its SHA-256 digest.
//!
//! **Invariants:**
//! - The plaintext exists only in [`Plaintext`], whose `Debug` redacts it;
//!   it leaves the process once, in the creation response (or the bootstrap
//!   file).
//! - [`Presented::parse`] never looks at a database: a malformed header and an
//!   unknown key are the same error, and [`Presented::verify`] compares
//!   digests in constant time. Keys are 256 random bits, so a slow password
//!   hash buys nothing over SHA-256.

use sha2::{Digest, Sha256};

use crate::base64::{self, URL_SAFE};

/// The fixed start of every key (the audit log's redaction finds keys by it).
pub use crate::hub::audit::KEY_MARKER;
/// Length of the random part: 32 bytes in unpadded base64 (⌈256 / 6⌉).
pub const SECRET_CHARS: usize = 43;
/// Total length of a key.
pub const KEY_LEN: usize = KEY_MARKER.len() + SECRET_CHARS;
/// Length of the lookup prefix (upstream's `key_prefix`: first 16 characters).
pub const PREFIX_LEN: usize = 16;

/// A SHA-256 digest of a whole key.
pub type KeyDigest = [u8; 32];

/// The operating system's random source failed (should never happen on Linux
/// after boot; the key is not created).
#[derive(Debug)]
pub struct RandomError(String);

impl RandomError {
    /// The error of another use of the random source (console sessions).
    pub(crate) fn from_message(message: String) -> RandomError {
        RandomError(message)
    }
}

impl std::fmt::Display for RandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the system random source failed: {}", self.0)
    }
}

/// A freshly generated key's plaintext. Shown once; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(String);

impl Plaintext {
    /// The key itself, for the one response (or file) that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext({}…redacted)", self.prefix())
    }
}

impl Plaintext {
    /// The lookup prefix of this key.
    pub fn prefix(&self) -> &str {
        // KEY_LEN > PREFIX_LEN and the key is ASCII, so this never fails.
        self.0.get(..PREFIX_LEN).unwrap_or("")
    }

    /// SHA-256 of the whole key: what the database stores.
    pub fn digest(&self) -> KeyDigest {
        digest(self.0.as_bytes())
    }
}

/// Generates a new key from 32 bytes of OS randomness.
pub fn generate() -> Result<Plaintext, RandomError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| RandomError(e.to_string()))?;
    Ok(Plaintext(format!(
        "{KEY_MARKER}{}",
        base64::encode_url(&raw)
    )))
}

/// A key as presented in a request header, checked for shape only.
#[derive(Clone)]
pub struct Presented {
    prefix: String,
    digest: KeyDigest,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Presented({}…)", self.prefix)
    }
}

impl Presented {
    /// Checks the shape of a header value. `None` for anything that cannot be
    /// a key (the caller answers it exactly like an unknown key).
    pub fn parse(header: &str) -> Option<Presented> {
        let secret = header.strip_prefix(KEY_MARKER)?;
        if secret.len() != SECRET_CHARS || !secret.bytes().all(|b| URL_SAFE.contains(&b)) {
            return None;
        }
        Some(Presented {
            prefix: header.get(..PREFIX_LEN)?.to_owned(),
            digest: digest(header.as_bytes()),
        })
    }

    /// The lookup prefix to find the stored row by.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this key hashes to `stored`, in time independent of where the
    /// digests differ.
    pub fn verify(&self, stored: &KeyDigest) -> bool {
        ct_eq(&self.digest, stored)
    }
}

/// A digest that no key hashes to in practice, compared against when the
/// prefix is unknown so that a miss costs the same as a wrong secret.
pub const DUMMY_DIGEST: KeyDigest = [0u8; 32];

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> KeyDigest {
    Sha256::digest(bytes).into()
}

/// Constant-time equality of two 32-byte values: every byte is visited and
/// the result depends on the OR of all differences only.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    // Keep the optimiser from turning the loop into an early-exit compare.
    std::hint::black_box(diff) == 0
}

/// Constant-time equality of two secrets of any length: compares their
/// SHA-256 digests, so neither content nor length leaks through timing.
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    ct_eq(&digest(a.as_bytes()), &digest(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_upstream_shape() {
        let key = generate().unwrap();
        let s = key.expose();
        assert_eq!(s.len(), 50);
        assert!(s.starts_with("lh_pat_"));
        assert!(s[7..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(key.prefix(), &s[..16]);
        let parsed = Presented::parse(s).unwrap();
        assert_eq!(parsed.prefix(), key.prefix());
        assert!(parsed.verify(&key.digest()));
    }

    #[test]
    fn keys_differ_and_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        let mut chars = std::collections::HashSet::new();
        for _ in 0..200 {
            let key = generate().unwrap();
            chars.extend(key.expose()[7..49].bytes());
            assert!(seen.insert(key.expose().to_owned()));
        }
        // 200 × 42 uniformly random characters cover all 64 with
        // overwhelming probability (miss chance < 1e-50).
        assert_eq!(chars.len(), 64);
    }

    #[test]
    fn parse_rejects_every_wrong_shape() {
        let key = generate().unwrap();
        let s = key.expose();
        let bad = [
            String::new(),
            "lh_pat_".into(),
            s[..49].to_owned(),
            format!("{s}A"),
            s.replace("lh_pat_", "lh_PAT_"),
            format!("{}=", &s[..49]),
            format!("{}+", &s[..49]),
            format!("{}é", &s[..48]),
            format!(" {}", &s[..49]),
            "Bearer lh_pat_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
        ];
        for b in &bad {
            assert!(Presented::parse(b).is_none(), "{b:?} was accepted");
        }
    }

    #[test]
    fn verify_rejects_a_key_differing_in_one_character() {
        let key = generate().unwrap();
        let s = key.expose();
        let last = s.as_bytes()[49];
        let other = if last == b'A' { 'B' } else { 'A' };
        let forged = format!("{}{other}", &s[..49]);
        let parsed = Presented::parse(&forged).unwrap();
        assert_eq!(parsed.prefix(), key.prefix());
        assert!(!parsed.verify(&key.digest()));
        assert!(!parsed.verify(&DUMMY_DIGEST));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = generate().unwrap();
        let shown = format!("{key:?} {:?}", Presented::parse(key.expose()).unwrap());
        assert!(!shown.contains(&key.expose()[16..]), "{shown}");
    }

    #[test]
    fn ct_eq_str_compares_content_and_length() {
        assert!(ct_eq_str("secret-token", "secret-token"));
        assert!(!ct_eq_str("secret-token", "secret-tokeN"));
        assert!(!ct_eq_str("secret-token", "secret-token2"));
        assert!(!ct_eq_str("", "x"));
        assert!(ct_eq_str("", ""));
    }
}
