//! The refresh record: where it is found, what it holds, how it is sealed, and what it says
//! about a repeated token request.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::state::{open_envelope, seal_envelope};
use crate::{oauth::GrantType, TokenRequest};

type HmacSha256 = Hmac<Sha256>;

/// The sealed format's first byte.
const FORMAT: u8 = 1;
/// Successor flag (1) + successor (32) + recorded-at (8), before the answer's body.
const HEADER_LEN: usize = 1 + 32 + 8;
/// The label of the per-record encryption key, derived from the presented secret.
const KEY_LABEL: &[u8] = b"account-link-bridge/refresh-record/key/v1";
/// Associated data of every sealed record, followed by the record's id.
const AAD_LABEL: &[u8] = b"account-link-bridge/refresh-record/v1";

/// What a recorded exchange was keyed by: a refresh token, or an authorization code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    Refresh,
    Code,
}

impl Grant {
    fn label(self) -> &'static [u8] {
        match self {
            Grant::Refresh => b"refresh",
            Grant::Code => b"code",
        }
    }
}

/// The keyed hash that names a token in the store: HMAC-SHA256 under the index key (derived
/// from the state key replicas share) of the grant, the client id and the secret. Without the
/// index key nobody can tell which token a store key belongs to, nor test a guess.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenId([u8; 32]);

impl TokenId {
    pub(crate) fn of(index_key: &[u8; 32], grant: Grant, client_id: &str, secret: &str) -> Self {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(index_key).expect("HMAC takes any key length");
        mac.update(grant.label());
        mac.update(&[0]);
        mac.update(client_id.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        TokenId(mac.finalize().into_bytes().into())
    }

    /// The id as it appears in store keys: URL-safe base64, 43 characters.
    pub(crate) fn to_key(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl std::fmt::Debug for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenId(..)")
    }
}

/// The token request a record is about: the grant, the presented secret and its id.
#[derive(Clone)]
pub(crate) struct Subject {
    pub(crate) grant: Grant,
    pub(crate) client_id: String,
    /// The refresh token or code presented: the record's encryption key derives from it.
    secret: String,
    pub(crate) id: TokenId,
}

impl Subject {
    /// The subject of a refresh or code exchange; `None` for other grants or when the secret is
    /// missing (the request layer refuses those before they get here).
    pub(crate) fn of(request: &TokenRequest, index_key: &[u8; 32]) -> Option<Subject> {
        let (grant, secret) = match request.grant_type() {
            GrantType::RefreshToken => (Grant::Refresh, request.refresh_token()?),
            GrantType::AuthorizationCode => (Grant::Code, request.code()?),
            _ => return None,
        };
        let client_id = request.client_id().unwrap_or("").to_owned();
        Some(Subject {
            grant,
            id: TokenId::of(index_key, grant, &client_id, secret),
            client_id,
            secret: secret.to_owned(),
        })
    }

    /// The id of a refresh token handed out in an answer to this subject's client.
    pub(crate) fn successor_id(&self, index_key: &[u8; 32], refresh_token: &str) -> TokenId {
        TokenId::of(index_key, Grant::Refresh, &self.client_id, refresh_token)
    }

    /// Whether `refresh_token` is the one this subject presented (an upstream that does not
    /// rotate, or the echo of the response layer).
    pub(crate) fn presented(&self, refresh_token: &str) -> bool {
        self.grant == Grant::Refresh && self.secret == refresh_token
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(KEY_LABEL);
        mac.update(&[0]);
        mac.update(self.grant.label());
        mac.update(&[0]);
        mac.update(self.client_id.as_bytes());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        XChaCha20Poly1305::new(&key.into())
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + 32);
        aad.extend_from_slice(AAD_LABEL);
        aad.extend_from_slice(&self.id.0);
        aad
    }
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// One recorded answer: the JSON Alexa was given, and the refresh token it carried when the
/// upstream rotated (by id only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The body of the 200 answered to Alexa.
    pub(crate) answer: Bytes,
    /// The new refresh token the answer handed out, when it is not the one presented.
    pub(crate) successor: Option<TokenId>,
    /// When the answer was recorded, in milliseconds since the Unix epoch.
    pub(crate) recorded_at_ms: u64,
}

/// Why a stored record could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unreadable;

impl Record {
    /// The record of `answer` (the JSON of a 200 given for `subject`), its successor read from
    /// the answer's `refresh_token`.
    pub(crate) fn of_answer(answer: Bytes, subject: &Subject, index_key: &[u8; 32]) -> Self {
        #[derive(serde::Deserialize)]
        struct Tokens<'a> {
            #[serde(borrow)]
            refresh_token: Option<std::borrow::Cow<'a, str>>,
        }
        let successor = serde_json::from_slice::<Tokens<'_>>(&answer)
            .ok()
            .and_then(|t| t.refresh_token)
            .filter(|t| !subject.presented(t))
            .map(|t| subject.successor_id(index_key, &t));
        Record {
            answer,
            successor,
            recorded_at_ms: now_ms(),
        }
    }

    /// Encrypts the record under a key derived from the subject's secret:
    /// `0x01 ‖ nonce[24] ‖ XChaCha20-Poly1305(plaintext, aad = label ‖ id)`.
    pub(crate) fn seal(&self, subject: &Subject) -> Vec<u8> {
        let mut plaintext = Vec::with_capacity(HEADER_LEN + self.answer.len());
        match self.successor {
            Some(id) => {
                plaintext.push(1);
                plaintext.extend_from_slice(&id.0);
            }
            None => plaintext.extend_from_slice(&[0; 33]),
        }
        plaintext.extend_from_slice(&self.recorded_at_ms.to_be_bytes());
        plaintext.extend_from_slice(&self.answer);
        seal_envelope(&subject.cipher(), FORMAT, &plaintext, &subject.aad())
    }

    /// Opens a sealed record with the subject's secret; any other secret, another record's
    /// slot, or a changed byte fails.
    pub(crate) fn open(sealed: &[u8], subject: &Subject) -> Result<Record, Unreadable> {
        let plaintext = open_envelope(&subject.cipher(), FORMAT, sealed, &subject.aad())
            .filter(|plaintext| plaintext.len() >= HEADER_LEN)
            .ok_or(Unreadable)?;
        let successor = match plaintext[0] {
            0 => None,
            1 => Some(TokenId(plaintext[1..33].try_into().expect("32 bytes"))),
            _ => return Err(Unreadable),
        };
        let recorded_at_ms = u64::from_be_bytes(plaintext[33..41].try_into().expect("8 bytes"));
        Ok(Record {
            answer: Bytes::copy_from_slice(&plaintext[HEADER_LEN..]),
            successor,
            recorded_at_ms,
        })
    }
}

/// What the bridge does with a repeated request whose record exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer the recorded answer again, without calling the upstream.
    Replay,
    /// The answer's refresh token has been used since: the presented token is a replay of a
    /// rotated one. Refused with `invalid_grant`, without calling the upstream (which, rotating
    /// and revoking on reuse, would kill the live grant).
    Refuse,
}

/// The rule of the record (issue 16, item 1): a record answers repeats until its successor is
/// used; a record without successor (an upstream that does not rotate) never refuses.
pub(crate) fn verdict(record: &Record, successor_used: bool) -> Verdict {
    match record.successor {
        Some(_) if successor_used => Verdict::Refuse,
        _ => Verdict::Replay,
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];

    fn refresh(token: &str) -> Subject {
        let body = format!("grant_type=refresh_token&refresh_token={token}&client_id=alexa");
        let request = TokenRequest::parse(&HeaderMap::new(), body.as_bytes()).unwrap();
        Subject::of(&request, &KEY).unwrap()
    }

    fn answer(refresh_token: Option<&str>) -> Bytes {
        let mut json = serde_json::json!({"access_token": "A", "expires_in": 3600});
        if let Some(r) = refresh_token {
            json["refresh_token"] = r.into();
        }
        Bytes::from(json.to_string())
    }

    #[test]
    fn a_rotated_answer_names_its_successor_and_an_echo_names_none() {
        let subject = refresh("R1");
        let rotated = Record::of_answer(answer(Some("R2")), &subject, &KEY);
        assert_eq!(rotated.successor, Some(refresh("R2").id));
        let echoed = Record::of_answer(answer(Some("R1")), &subject, &KEY);
        assert_eq!(echoed.successor, None);
        let omitted = Record::of_answer(answer(None), &subject, &KEY);
        assert_eq!(omitted.successor, None);
    }

    #[test]
    fn a_code_answer_names_its_refresh_token_as_successor() {
        let body = "grant_type=authorization_code&code=C&client_id=alexa";
        let request = TokenRequest::parse(&HeaderMap::new(), body.as_bytes()).unwrap();
        let subject = Subject::of(&request, &KEY).unwrap();
        let record = Record::of_answer(answer(Some("R1")), &subject, &KEY);
        assert_eq!(record.successor, Some(refresh("R1").id));
    }

    #[test]
    fn a_record_opens_only_with_the_token_it_was_sealed_for() {
        let r1 = refresh("R1");
        let record = Record::of_answer(answer(Some("R2")), &r1, &KEY);
        let sealed = record.seal(&r1);
        assert_eq!(Record::open(&sealed, &r1), Ok(record));
        assert_eq!(Record::open(&sealed, &refresh("R9")), Err(Unreadable));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(Record::open(&flipped, &r1), Err(Unreadable));
        assert_eq!(Record::open(&sealed[..20], &r1), Err(Unreadable));
    }

    #[test]
    fn the_same_token_of_another_client_or_another_index_key_is_another_record() {
        let a = TokenId::of(&KEY, Grant::Refresh, "alexa", "R1");
        assert_ne!(a, TokenId::of(&KEY, Grant::Refresh, "other", "R1"));
        assert_ne!(a, TokenId::of(&KEY, Grant::Code, "alexa", "R1"));
        assert_ne!(a, TokenId::of(&[8; 32], Grant::Refresh, "alexa", "R1"));
    }

    proptest! {
        #[test]
        fn sealing_then_opening_gives_the_record_back_and_hides_the_answer(
            token in "[A-Za-z0-9._~-]{1,64}",
            access in "[A-Za-z0-9]{16,64}",
            rotate in any::<bool>(),
        ) {
            let subject = refresh(&token);
            let next = format!("{token}-next");
            let body = Bytes::from(serde_json::json!({
                "access_token": access,
                "refresh_token": if rotate { next.as_str() } else { token.as_str() },
            }).to_string());
            let record = Record::of_answer(body, &subject, &KEY);
            prop_assert_eq!(record.successor.is_some(), rotate);
            let sealed = record.seal(&subject);
            let contains = |needle: &[u8]| sealed.windows(needle.len()).any(|w| w == needle);
            prop_assert!(!contains(access.as_bytes()));
            prop_assert!(!contains(token.as_bytes()) || token.len() < 4);
            prop_assert_eq!(Record::open(&sealed, &subject), Ok(record));
        }

        #[test]
        fn the_verdict_refuses_exactly_a_used_successor(rotate in any::<bool>(), used in any::<bool>()) {
            let subject = refresh("R1");
            let record = Record::of_answer(answer(Some(if rotate { "R2" } else { "R1" })), &subject, &KEY);
            let expected = if rotate && used { Verdict::Refuse } else { Verdict::Replay };
            prop_assert_eq!(verdict(&record, used), expected);
        }
    }
}
