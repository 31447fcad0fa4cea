//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body with the app secret,
//! compared in constant time against every configured secret (rotation). The HMAC is ring's
//! (assembly SHA-256); the tests sign with an independent implementation (RustCrypto).

use ring::hmac;
use wabridge_connectors::Secret;

/// The header Meta signs webhooks with.
pub const HEADER: &str = "x-hub-signature-256";

/// Why a signature was refused (bounded set, for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// Not `sha256=<64 hex digits>`.
    #[error("malformed X-Hub-Signature-256 header")]
    Malformed,
    /// Well-formed but made with none of our secrets.
    #[error("signature does not match any configured app secret")]
    Mismatch,
}

impl SignatureError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Malformed => "malformed",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// Verifies signatures against a fixed set of secrets, prepared once.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({} secrets, **redacted**)", self.keys.len())
    }
}

impl Verifier {
    /// Prepares the secrets.
    pub fn new(secrets: &[Secret]) -> Verifier {
        Verifier {
            keys: secrets
                .iter()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes()))
                .collect(),
        }
    }

    /// Checks `header` (the header value, if any) over `body` against every secret.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_part = header
            .strip_prefix(b"sha256=")
            .ok_or(SignatureError::Malformed)?;
        let mut expected = [0u8; 32];
        hex::decode_to_slice(hex_part.trim_ascii(), &mut expected)
            .map_err(|_| SignatureError::Malformed)?;
        // Check every secret (no early exit) so timing says nothing about which one matched;
        // ring compares in constant time.
        let mut matched = false;
        for key in &self.keys {
            matched |= hmac::verify(key, body, &expected).is_ok();
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Checks `header` over `body` against every secret (one-off form of [`Verifier::verify`]).
pub fn verify(
    secrets: &[Secret],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    Verifier::new(secrets).verify(header, body)
}

/// The header value for `body` signed with `secret` (simulate, tests, benchmarks).
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";

    #[test]
    fn matches_the_published_test_vector() {
        let secret = Secret::new("secret");
        assert_eq!(sign(&secret, b"test"), VECTOR);
        assert_eq!(verify(&[secret], Some(VECTOR.as_bytes()), b"test"), Ok(()));
    }

    #[test]
    fn accepts_any_configured_secret_during_rotation() {
        let secrets = [Secret::new("old"), Secret::new("secret")];
        assert_eq!(verify(&secrets, Some(VECTOR.as_bytes()), b"test"), Ok(()));
    }

    #[test]
    fn rejects_missing_malformed_and_wrong_signatures() {
        let secrets = [Secret::new("secret")];
        assert_eq!(
            verify(&secrets, None, b"test"),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(&secrets, Some(b"sha1=abcd"), b"test"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secrets, Some(b"sha256=zz"), b"test"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secrets, Some(VECTOR.as_bytes()), b"test!"),
            Err(SignatureError::Mismatch)
        );
        let other = [Secret::new("other")];
        assert_eq!(
            verify(&other, Some(VECTOR.as_bytes()), b"test"),
            Err(SignatureError::Mismatch)
        );
    }
}
