//! The OAuth 2.0 vocabulary the rest of the crate speaks.
//!
//! - [`OAuthError`] and [`ErrorCode`]: the RFC 6749 §5.2 error answers every refusal and every
//!   normalized upstream failure becomes.
//!
//! This module is the bottom of the crate: it imports nothing from the modules above it, so the
//! configuration ([`Provider`](crate::Provider)), the layers and the observers can all name
//! these types without importing one another.

mod error;
mod media;
mod parse;

pub use self::error::{ErrorCode, OAuthError};
pub(crate) use self::media::{content_media_type, json_content_type, media_type};
pub(crate) use self::parse::form_decode;
pub use self::parse::{BodyFormat, ClientAuth, CredentialSource, GrantType, TokenRequest};
