//! Keyed fingerprints of secrets: a leaf below the layers that record them and the
//! [`diagnostics`](crate::diagnostics) that show them.

use std::fmt;
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A short keyed fingerprint of a secret: the first 3 bytes (6 hex digits) of
/// HMAC-SHA256(secret) under a random key made once per process.
///
/// Two records of one process show the same fingerprint for the same secret, so an operator
/// can follow a code from `/callback` to `/token`. The key never leaves the process and 24 bits
/// say nothing useful about the secret: a fingerprint cannot be reversed, nor checked against a
/// guess outside the process.
///
/// ```
/// use account_link_bridge::diagnostics::Fingerprint;
///
/// let a = Fingerprint::of("aPrx-authorization-code");
/// assert_eq!(a, Fingerprint::of("aPrx-authorization-code"));
/// assert_eq!(a.to_string().len(), 6);
/// assert!(!a.to_string().contains("aPrx"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 3]);

fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0; 32];
        crate::state::fill_random(&mut key);
        key
    })
}

impl Fingerprint {
    /// The fingerprint of `secret` under this process's key.
    pub fn of(secret: &str) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(process_key()).expect("HMAC takes keys of any length");
        mac.update(secret.as_bytes());
        let digest = mac.finalize().into_bytes();
        Fingerprint([digest[0], digest[1], digest[2]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a:02x}{b:02x}{c:02x}")
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_per_process_and_differ_between_secrets() {
        assert_eq!(Fingerprint::of("a"), Fingerprint::of("a"));
        assert_ne!(Fingerprint::of("a"), Fingerprint::of("b"));
        let shown = Fingerprint::of("secret").to_string();
        assert_eq!(shown.len(), 6);
        assert!(shown.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
