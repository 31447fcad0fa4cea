//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body with the app secret,
//! compared in constant time against every configured secret (rotation).

use hmac::{Hmac, Mac};
use sha2::Sha256;
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

/// Checks `header` (the header value, if any) over `body` against every secret.
pub fn verify(
    secrets: &[Secret],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_part = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_part.trim_ascii()).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    // Check every secret (no early exit) so timing says nothing about which one matched.
    let mut matched = false;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            continue;
        };
        mac.update(body);
        matched |= mac.verify_slice(&expected).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value for `body` signed with `secret` (simulate, tests, benchmarks).
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
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
