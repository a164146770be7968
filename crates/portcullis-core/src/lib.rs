//! Protocol and domain rules of Portcullis, free of I/O.
//!
//! Every protocol input becomes a type whose constructor refuses bad values
//! ("parse, don't validate"): a [`ScopeName`] that exists is well-formed, a
//! [`Label`] is 1–128 printable characters, and so on. The server and the CLI
//! only ever handle these types once input has crossed the boundary.

pub mod audit;
pub mod claims;
pub mod client;
pub mod clock;
pub mod duration;
pub mod error;
pub mod grant;
pub mod ids;
pub mod label;
pub mod net;
pub mod pkce;
pub mod redirect_uri;
pub mod scope;
pub mod text;
pub mod time;
pub mod user;

pub use audit::AuditKind;
pub use claims::{AccessClaims, Audience, IssuedClaims};
pub use client::{Client, ClientStatus};
#[cfg(debug_assertions)]
pub use clock::OffsetFileClock;
pub use clock::{Clock, FixedClock, SystemClock};
pub use duration::Ttl;
pub use error::{OAuthError, OAuthErrorCode};
pub use grant::GrantType;
pub use ids::{ClientId, FamilyId};
pub use label::Label;
pub use net::{Cidr, SourceKey};
pub use redirect_uri::RedirectUri;
pub use scope::{ScopeName, ScopeSet};
pub use user::UserName;
