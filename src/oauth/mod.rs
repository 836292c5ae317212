//! The OAuth 2.0 vocabulary the rest of the crate speaks.
//!
//! - [`OAuthError`] and [`ErrorCode`]: the RFC 6749 §5.2 error answers every refusal and every
//!   normalized upstream failure becomes;
//! - [`GrantType`], [`ClientAuth`], [`CredentialSource`] and [`BodyFormat`]: the grant
//!   vocabulary (RFC 6749 §4, §2.3.1);
//! - [`TokenRequest`]: a token request parsed strictly from what Alexa may send
//!   ([`TokenRequest::parse_with`] says the rules) and encoded as the form the upstream wants
//!   ([`TokenRequest::to_form`]);
//! - [`basic_authorization`]: HTTP Basic client credentials as the bridge sends them upstream;
//! - for the layers, crate-private: the `application/x-www-form-urlencoded` codec, reading HTTP
//!   Basic client credentials, and the media types of `Content-Type` values.
//!
//! This module is the bottom of the crate: it imports nothing from the modules above it, so the
//! configuration ([`Provider`](crate::Provider)), the layers and the observers can all name
//! these types without importing one another. [`OAuthError`], [`ErrorCode`] and [`TokenRequest`]
//! are also re-exported at the crate root; the grant vocabulary also from
//! [`token_request`](crate::token_request), its earlier home.

mod basic;
mod error;
mod form;
mod grant;
mod media;
mod parse;
mod request;

pub use self::basic::basic_authorization;
pub(crate) use self::basic::basic_credentials;
pub use self::error::{ErrorCode, OAuthError};
pub(crate) use self::form::form_decode;
pub use self::grant::{BodyFormat, ClientAuth, CredentialSource, GrantType};
pub(crate) use self::media::{content_media_type, json_content_type, media_type};
pub use self::request::TokenRequest;

#[cfg(test)]
mod testing;
