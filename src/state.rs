//! Sealed, expiring, tamper-proof state: what lets the bridge run without a session store.
//!
//! The authorization middleman must remember Alexa's `state` and `redirect_uri` (and a PKCE
//! verifier it made) between `/authorize` and `/callback`, and the upstream code between
//! `/callback` and `/token`. Instead of a server-side store (lost on restart, not shared by
//! replicas) the bridge **seals** what it must remember into the string it hands out: the OAuth
//! `state` it sends upstream, or the `code` it gives Alexa.
//!
//! [`StateSealer`] seals a typed payload ([`SealedPayload`]) with an expiry using
//! XChaCha20-Poly1305 (authenticated encryption, a random 24-byte nonce per seal) and encodes the
//! result as URL-safe base64 without padding. Opening checks, in order: the length (refused
//! before any decoding), the encoding, the authentication tag (under every configured key), the
//! payload type, and the expiry.
//!
//! Keys rotate: the first key seals, all keys open. Give every replica the same keys (newest
//! first) and a state sealed by one replica opens on any other, before and after a rotation.
//!
//! ```
//! use account_link_bridge::state::{SealedPayload, StateSealer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Visit {
//!     page: String,
//! }
//! impl SealedPayload for Visit {
//!     const PURPOSE: &'static str = "example/visit/v1";
//! }
//!
//! let sealer = StateSealer::from_base64_keys("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
//! let sealed = sealer.seal(&Visit { page: "home".into() });
//! assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
//! assert_eq!(sealer.open::<Visit>(&sealed).unwrap(), Visit { page: "home".into() });
//! ```
//!
//! Wire format (version 1): `base64url(0x01 ‖ nonce[24] ‖ ciphertext ‖ tag[16])`, where the
//! plaintext is the expiry (Unix seconds, 8 bytes big-endian) followed by the payload as JSON,
//! and the associated data is the version byte followed by [`SealedPayload::PURPOSE`] and, when
//! the sealer is bound to a deployment ([`StateSealer::bind_to_deployment`]), a zero byte and
//! the deployment's name. Bridges that share a key but serve different deployments (another
//! public URL, another upstream) therefore cannot open each other's seals.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The wire format version, the first byte of every sealed string.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;

/// A type that can be sealed by a [`StateSealer`].
///
/// The purpose label is bound into the seal as associated data, so a string sealed as one
/// payload type never opens as another: an authorization `state` cannot be replayed as a code.
pub trait SealedPayload: Serialize + DeserializeOwned {
    /// A label unique to this payload type and its version, e.g. `"authorize/state/v1"`.
    const PURPOSE: &'static str;
}

/// A 32-byte key for [`StateSealer`]. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct StateKey([u8; 32]);

impl StateKey {
    /// The shortest secret accepted, in bytes.
    pub const MIN_SECRET_LEN: usize = 32;

    /// A key of exactly these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        StateKey(bytes)
    }

    /// A key from a secret of at least 32 bytes: used as is when it has 32 bytes, reduced with
    /// SHA-256 when longer.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        match secret.len() {
            len if len < Self::MIN_SECRET_LEN => Err(KeyError::TooShort { position: 0, len }),
            32 => {
                let mut key = [0; 32];
                key.copy_from_slice(secret);
                Ok(StateKey(key))
            }
            _ => Ok(StateKey(Sha256::digest(secret).into())),
        }
    }

    /// A key from a base64 secret (standard or URL-safe alphabet, padded or not) of at least
    /// 32 bytes once decoded; see [`StateKey::from_secret`].
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let encoded = encoded.trim();
        let secret = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD_NO_PAD, STANDARD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .ok_or(KeyError::NotBase64 { position: 0 })?;
        Self::from_secret(&secret)
    }

    /// A fresh random key, for a bridge that runs as a single process (states do not survive a
    /// restart and do not open on other replicas).
    pub fn random() -> Self {
        let mut key = [0; 32];
        fill_random(&mut key);
        StateKey(key)
    }

    /// The key encoded as URL-safe base64 without padding, for configuration files.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

/// Why keys could not be built. The message never shows key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// No key was given.
    NoKey,
    /// The key at this position (0-based) is not base64.
    NotBase64 {
        /// The key's position in the list.
        position: usize,
    },
    /// The key at this position decodes to fewer than 32 bytes.
    TooShort {
        /// The key's position in the list.
        position: usize,
        /// Its decoded length.
        len: usize,
    },
}

impl KeyError {
    fn at(self, position: usize) -> Self {
        match self {
            KeyError::NoKey => KeyError::NoKey,
            KeyError::NotBase64 { .. } => KeyError::NotBase64 { position },
            KeyError::TooShort { len, .. } => KeyError::TooShort { position, len },
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NoKey => f.write_str("no state key given"),
            KeyError::NotBase64 { position } => {
                write!(f, "state key #{} is not base64", position + 1)
            }
            KeyError::TooShort { position, len } => write!(
                f,
                "state key #{} has {len} bytes; at least {} are needed",
                position + 1,
                StateKey::MIN_SECRET_LEN
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a sealed string did not open. The message never shows the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Not something this sealer produced: bad base64, too short, unknown version.
    Malformed,
    /// The authentication failed: the string was changed, sealed under a key this sealer does
    /// not hold, or sealed as another payload type.
    Tampered,
    /// Authentic, but past its expiry.
    Expired,
    /// Longer than [`StateSealer::max_len`]; refused before decoding.
    TooLarge,
}

impl OpenError {
    /// A short, fixed explanation suitable for an error page.
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::Malformed => "the state is malformed",
            OpenError::Tampered => "the state was altered or sealed with another key",
            OpenError::Expired => "the state has expired",
            OpenError::TooLarge => "the state is too large",
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for OpenError {}

/// Seals and opens expiring payloads: see the [module docs](self).
///
/// Cheap to clone (the keys are shared). `Debug` shows the number of keys, never the keys.
#[derive(Clone)]
pub struct StateSealer {
    ciphers: Arc<[XChaCha20Poly1305]>,
    /// Per key, in the same order: a key for deriving secrets (never used to encrypt) and a
    /// short public hint naming the key, so a derivation can be redone after a rotation.
    derivation: Arc<[(u32, [u8; 32])]>,
    /// The deployment every seal is bound to (empty: unbound).
    deployment: Arc<[u8]>,
    lifetime: Duration,
    max_len: usize,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The derivation key and the hint of a state key: both HMACs of the key over fixed labels, so
/// neither reveals the key nor the other, and neither is ever the encryption key itself.
fn derivation_of(key: &StateKey) -> (u32, [u8; 32]) {
    let derivation = hmac(&key.0, &[b"account-link-bridge/derivation-key/v1"]);
    let hint = hmac(&key.0, &[b"account-link-bridge/key-hint/v1"]);
    (
        u32::from_be_bytes([hint[0], hint[1], hint[2], hint[3]]),
        derivation,
    )
}

impl StateSealer {
    /// The default lifetime of a sealed string: 10 minutes.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
    /// The default longest string [`StateSealer::open`] decodes: 2048 characters.
    pub const DEFAULT_MAX_LEN: usize = 2048;

    /// A sealer with these keys: the first seals, all open (newest first).
    pub fn new(keys: impl IntoIterator<Item = StateKey>) -> Result<Self, KeyError> {
        let keys: Vec<StateKey> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(KeyError::NoKey);
        }
        let ciphers: Vec<_> = keys
            .iter()
            .map(|key| XChaCha20Poly1305::new(&key.0.into()))
            .collect();
        let derivation: Vec<_> = keys.iter().map(derivation_of).collect();
        Ok(StateSealer {
            ciphers: ciphers.into(),
            derivation: derivation.into(),
            deployment: Arc::from(&[][..]),
            lifetime: Self::DEFAULT_LIFETIME,
            max_len: Self::DEFAULT_MAX_LEN,
        })
    }

    /// A sealer from comma-separated base64 secrets, newest first (the `--state-key` option):
    /// each at least 32 bytes once decoded, see [`StateKey::from_base64`].
    pub fn from_base64_keys(keys: &str) -> Result<Self, KeyError> {
        let keys = keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| StateKey::from_base64(k).map_err(|e| e.at(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// A sealer with one random key for this process only: sealed strings do not survive a
    /// restart and do not open on other replicas.
    pub fn random() -> Self {
        Self::new([StateKey::random()]).expect("one key is given")
    }

    /// Sets how long [`StateSealer::seal`] makes a sealed string valid.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets the longest string [`StateSealer::open`] accepts.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Binds every seal to a deployment: `deployment` (e.g. the bridge's public URL and its
    /// upstream token URL) becomes part of the associated data, so a string sealed by a bridge
    /// of another deployment does not open here even when both share a key
    /// ([`OpenError::Tampered`]). Replicas of one deployment must bind to the same name.
    /// [`AuthorizeRedirectBuilder::build`](crate::authorize::AuthorizeRedirectBuilder::build)
    /// binds its sealer this way.
    pub fn bind_to_deployment(mut self, deployment: impl AsRef<[u8]>) -> Self {
        self.deployment = Arc::from(deployment.as_ref());
        self
    }

    /// Whether [`StateSealer::bind_to_deployment`] bound this sealer.
    pub fn is_bound(&self) -> bool {
        !self.deployment.is_empty()
    }

    /// A secret only holders of the sealing key can compute: HMAC-SHA256, under a key derived
    /// from the first (sealing) key, over `label`, the deployment and `nonce`. Returns the
    /// hint of the key used, to give [`StateSealer::rederive_secret`] later.
    pub(crate) fn derive_secret(&self, label: &str, nonce: &[u8]) -> (u32, [u8; 32]) {
        let (hint, key) = &self.derivation[0];
        (*hint, self.derive_with(key, label, nonce))
    }

    /// The secret [`StateSealer::derive_secret`] gave under the key named by `hint`, if this
    /// sealer still holds that key.
    pub(crate) fn rederive_secret(&self, hint: u32, label: &str, nonce: &[u8]) -> Option<[u8; 32]> {
        self.derivation
            .iter()
            .find(|(h, _)| *h == hint)
            .map(|(_, key)| self.derive_with(key, label, nonce))
    }

    fn derive_with(&self, key: &[u8; 32], label: &str, nonce: &[u8]) -> [u8; 32] {
        let deployment_len = (self.deployment.len() as u64).to_be_bytes();
        hmac(
            key,
            &[
                label.as_bytes(),
                &[0],
                &deployment_len,
                &self.deployment,
                nonce,
            ],
        )
    }

    /// The lifetime used by [`StateSealer::seal`].
    pub fn default_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The longest string [`StateSealer::open`] accepts.
    pub fn max_len_value(&self) -> usize {
        self.max_len
    }

    /// Seals `payload`, valid for the sealer's lifetime.
    pub fn seal<T: SealedPayload>(&self, payload: &T) -> String {
        self.seal_for(payload, self.lifetime)
    }

    /// Seals `payload`, valid for `lifetime`.
    pub fn seal_for<T: SealedPayload>(&self, payload: &T, lifetime: Duration) -> String {
        let expiry = unix_now().saturating_add(lifetime.as_secs());
        self.seal_with_expiry(payload, expiry)
    }

    fn seal_with_expiry<T: SealedPayload>(&self, payload: &T, expiry: u64) -> String {
        let mut plaintext = Vec::with_capacity(EXPIRY_LEN + 128);
        plaintext.extend_from_slice(&expiry.to_be_bytes());
        serde_json::to_writer(&mut plaintext, payload).expect("a SealedPayload serializes to JSON");
        let aad = self.associated_data::<T>();
        URL_SAFE_NO_PAD.encode(seal_envelope(&self.ciphers[0], VERSION, &plaintext, &aad))
    }

    /// Opens a string sealed as `T` by a sealer holding one of this sealer's keys.
    pub fn open<T: SealedPayload>(&self, sealed: &str) -> Result<T, OpenError> {
        self.open_at(sealed, unix_now()).map(|(payload, _)| payload)
    }

    /// Opens like [`StateSealer::open`] and also returns the expiry (Unix seconds).
    pub(crate) fn open_with_expiry<T: SealedPayload>(
        &self,
        sealed: &str,
    ) -> Result<(T, u64), OpenError> {
        self.open_at(sealed, unix_now())
    }

    fn open_at<T: SealedPayload>(&self, sealed: &str, now: u64) -> Result<(T, u64), OpenError> {
        if sealed.len() > self.max_len {
            return Err(OpenError::TooLarge);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < 1 + NONCE_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let aad = self.associated_data::<T>();
        let plaintext = self
            .ciphers
            .iter()
            .find_map(|cipher| open_envelope(cipher, VERSION, &bytes, &aad))
            .ok_or(OpenError::Tampered)?;
        if plaintext.len() < EXPIRY_LEN {
            return Err(OpenError::Malformed);
        }
        let (expiry, payload) = plaintext.split_at(EXPIRY_LEN);
        let expiry = u64::from_be_bytes(expiry.try_into().expect("8 bytes"));
        if now >= expiry {
            return Err(OpenError::Expired);
        }
        let payload = serde_json::from_slice(payload).map_err(|_| OpenError::Malformed)?;
        Ok((payload, expiry))
    }

    fn associated_data<T: SealedPayload>(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(2 + T::PURPOSE.len() + self.deployment.len());
        aad.push(VERSION);
        aad.extend_from_slice(T::PURPOSE.as_bytes());
        // A purpose is text without NUL, so the zero byte separates it from the deployment.
        if !self.deployment.is_empty() {
            aad.push(0);
            aad.extend_from_slice(&self.deployment);
        }
        aad
    }
}

impl fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSealer")
            .field("keys", &self.ciphers.len())
            .field("lifetime", &self.lifetime)
            .field("max_len", &self.max_len)
            .field("bound_to_deployment", &self.is_bound())
            .finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Fills `buf` from the operating system's random source.
/// The envelope of every seal the crate makes (states, codes, refresh records):
/// `version ‖ nonce[24] ‖ XChaCha20-Poly1305(plaintext, aad)`, with a random nonce.
pub(crate) fn seal_envelope(
    cipher: &XChaCha20Poly1305,
    version: u8,
    plaintext: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let mut nonce = [0; NONCE_LEN];
    fill_random(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any message of this size");
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(version);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// The plaintext of an envelope [`seal_envelope`] made with `version`, `cipher`'s key and
/// `aad`; `None` for anything else (too short, another version, altered, another key).
pub(crate) fn open_envelope(
    cipher: &XChaCha20Poly1305,
    version: u8,
    sealed: &[u8],
    aad: &[u8],
) -> Option<Vec<u8>> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != version {
        return None;
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    // Without an OS random source no secret can be made; there is nothing sensible to fall
    // back to.
    getrandom::getrandom(buf).expect("the operating system's random source is available");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Note {
        text: String,
        number: u32,
    }

    impl SealedPayload for Note {
        const PURPOSE: &'static str = "test/note/v1";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OtherNote {
        text: String,
        number: u32,
    }

    impl SealedPayload for OtherNote {
        const PURPOSE: &'static str = "test/other-note/v1";
    }

    fn key(byte: u8) -> StateKey {
        StateKey::from_bytes([byte; 32])
    }

    fn sealer(byte: u8) -> StateSealer {
        StateSealer::new([key(byte)]).unwrap()
    }

    fn note() -> Note {
        Note {
            text: "hello".into(),
            number: 7,
        }
    }

    #[test]
    fn a_sealed_note_opens_to_the_same_note() {
        let s = sealer(1);
        assert_eq!(s.open::<Note>(&s.seal(&note())), Ok(note()));
    }

    #[test]
    fn two_seals_of_the_same_payload_differ() {
        let s = sealer(1);
        assert_ne!(s.seal(&note()), s.seal(&note()));
    }

    #[test]
    fn a_payload_sealed_as_one_type_does_not_open_as_another() {
        let s = sealer(1);
        assert_eq!(
            s.open::<OtherNote>(&s.seal(&note())),
            Err(OpenError::Tampered)
        );
    }

    #[test]
    fn an_expired_seal_is_refused() {
        let s = sealer(1);
        let sealed = s.seal_with_expiry(&note(), 1_000);
        assert_eq!(s.open_at::<Note>(&sealed, 999).map(|(n, _)| n), Ok(note()));
        assert_eq!(
            s.open_at::<Note>(&sealed, 1_000).map(|(n, _)| n),
            Err(OpenError::Expired)
        );
        let zero = sealer(1).lifetime(Duration::ZERO);
        assert_eq!(
            zero.open::<Note>(&zero.seal(&note())),
            Err(OpenError::Expired)
        );
    }

    #[test]
    fn oversized_strings_are_refused_before_decoding() {
        let s = sealer(1).max_len(10);
        assert_eq!(s.open::<Note>("!!!!!!!!!!!!!!!!"), Err(OpenError::TooLarge));
        assert_eq!(
            sealer(1).open::<Note>(&"A".repeat(2049)),
            Err(OpenError::TooLarge)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let s = sealer(1);
        assert_eq!(s.open::<Note>(""), Err(OpenError::Malformed));
        assert_eq!(s.open::<Note>("not base64!"), Err(OpenError::Malformed));
        assert_eq!(s.open::<Note>("AAAA"), Err(OpenError::Malformed));
        let wrong_version = URL_SAFE_NO_PAD.encode([2u8; 64]);
        assert_eq!(s.open::<Note>(&wrong_version), Err(OpenError::Malformed));
    }

    #[test]
    fn keys_from_base64_accept_both_alphabets_and_hash_long_secrets() {
        let secret = [0xfbu8; 32];
        let a = StateKey::from_base64(&STANDARD.encode(secret)).unwrap();
        let b = StateKey::from_base64(&URL_SAFE_NO_PAD.encode(secret)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, StateKey::from_bytes(secret));
        let long = StateKey::from_base64(&STANDARD.encode([7u8; 48])).unwrap();
        assert_eq!(long, StateKey::from_bytes(Sha256::digest([7u8; 48]).into()));
    }

    #[test]
    fn short_or_invalid_keys_are_refused_with_their_position() {
        let good = STANDARD.encode([1u8; 32]);
        let short = STANDARD.encode([1u8; 16]);
        assert_eq!(
            StateSealer::from_base64_keys(&format!("{good},{short}")).unwrap_err(),
            KeyError::TooShort {
                position: 1,
                len: 16
            }
        );
        assert_eq!(
            StateSealer::from_base64_keys("***").unwrap_err(),
            KeyError::NotBase64 { position: 0 }
        );
        assert_eq!(
            StateSealer::from_base64_keys(" , ").unwrap_err(),
            KeyError::NoKey
        );
    }

    #[test]
    fn debug_never_shows_keys() {
        let secret = [0xabu8; 32];
        let encoded = STANDARD.encode(secret);
        let s = StateSealer::from_base64_keys(&encoded).unwrap();
        let debug = format!("{s:?} {:?}", StateKey::from_bytes(secret));
        assert!(!debug.contains(&encoded));
        assert!(!debug.to_lowercase().contains("abab"));
        assert!(!debug.contains("171"));
        assert!(debug.contains("keys: 1"));
    }

    #[test]
    fn a_seal_of_another_deployment_does_not_open_even_with_the_same_key() {
        let here = sealer(1).bind_to_deployment("https://a.example/callback\nhttps://up/token");
        let there = sealer(1).bind_to_deployment("https://b.example/callback\nhttps://up/token");
        let sealed = here.seal(&note());
        assert_eq!(here.open::<Note>(&sealed), Ok(note()));
        assert_eq!(there.open::<Note>(&sealed), Err(OpenError::Tampered));
        assert_eq!(sealer(1).open::<Note>(&sealed), Err(OpenError::Tampered));
        assert_eq!(
            here.open::<Note>(&sealer(1).seal(&note())),
            Err(OpenError::Tampered)
        );
    }

    #[test]
    fn derived_secrets_are_redone_by_the_key_hint_after_a_rotation() {
        let old = sealer(1).bind_to_deployment("d");
        let (hint, secret) = old.derive_secret("pkce", b"nonce");
        assert_eq!(old.derive_secret("pkce", b"nonce"), (hint, secret));
        assert_ne!(old.derive_secret("pkce", b"other").1, secret);
        assert_ne!(old.derive_secret("other", b"nonce").1, secret);
        // After a rotation the old key still redoes it; another deployment or key does not.
        let rotated = StateSealer::new([key(2), key(1)])
            .unwrap()
            .bind_to_deployment("d");
        assert_ne!(rotated.derive_secret("pkce", b"nonce").0, hint);
        assert_eq!(
            rotated.rederive_secret(hint, "pkce", b"nonce"),
            Some(secret)
        );
        assert_ne!(
            sealer(1)
                .bind_to_deployment("e")
                .rederive_secret(hint, "pkce", b"nonce"),
            Some(secret)
        );
        assert_eq!(sealer(3).rederive_secret(hint, "pkce", b"nonce"), None);
        // The secret is not the key, nor the hint a part of it.
        assert_ne!(secret, [1u8; 32]);
    }

    #[test]
    fn random_sealers_do_not_open_each_others_seals() {
        let a = StateSealer::random();
        let b = StateSealer::random();
        assert_eq!(b.open::<Note>(&a.seal(&note())), Err(OpenError::Tampered));
    }

    fn notes() -> impl Strategy<Value = Note> {
        (".{0,200}", any::<u32>()).prop_map(|(text, number)| Note { text, number })
    }

    proptest! {
        #[test]
        fn open_is_the_inverse_of_seal(note in notes(), k in any::<[u8; 32]>()) {
            let s = StateSealer::new([StateKey::from_bytes(k)]).unwrap();
            prop_assert_eq!(s.open::<Note>(&s.seal(&note)), Ok(note));
        }

        #[test]
        fn any_single_character_change_fails_to_open(
            note in notes(),
            index in any::<prop::sample::Index>(),
            replacement in prop::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.~+/%".chars().collect::<Vec<_>>()
            ),
        ) {
            let s = sealer(3);
            let sealed = s.seal(&note);
            let i = index.index(sealed.len());
            let original = sealed.as_bytes()[i] as char;
            prop_assume!(original != replacement);
            let mut changed = sealed.clone();
            changed.replace_range(i..=i, &replacement.to_string());
            let result = s.open::<Note>(&changed);
            prop_assert!(
                matches!(result, Err(OpenError::Tampered | OpenError::Malformed)),
                "changed seal opened: {:?}", result
            );
        }

        #[test]
        fn an_expired_seal_never_opens(note in notes(), expiry in 0u64..u64::MAX / 2, late in 0u64..1_000_000) {
            let s = sealer(4);
            let sealed = s.seal_with_expiry(&note, expiry);
            prop_assert_eq!(s.open_at::<Note>(&sealed, expiry + late).map(|(n, _)| n), Err(OpenError::Expired));
        }

        #[test]
        fn a_seal_made_with_an_old_key_opens_after_rotation(note in notes(), old in any::<[u8; 32]>(), new in any::<[u8; 32]>()) {
            let before = StateSealer::new([StateKey::from_bytes(old)]).unwrap();
            let after = StateSealer::new([StateKey::from_bytes(new), StateKey::from_bytes(old)]).unwrap();
            prop_assert_eq!(after.open::<Note>(&before.seal(&note)), Ok(note.clone()));
            // And the new key seals: a replica still on the old key alone cannot open it.
            prop_assume!(old != new);
            prop_assert_eq!(before.open::<Note>(&after.seal(&note)), Err(OpenError::Tampered));
        }

        #[test]
        fn a_wrong_key_never_opens(note in notes(), a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assume!(a != b);
            let sealing = StateSealer::new([StateKey::from_bytes(a)]).unwrap();
            let opening = StateSealer::new([StateKey::from_bytes(b)]).unwrap();
            prop_assert_eq!(opening.open::<Note>(&sealing.seal(&note)), Err(OpenError::Tampered));
        }
    }
}
