//! JWTs keygate issues: its signing keys and their schedule, the JWKS, and
//! signing and verifying its own tokens. Verification itself is
//! keygate-verify's, the project's only verifier.
//!
//! - `claims`: what keygate's tokens carry, written and read as one type;
//!   `client_ref`: the API key or mTLS client a token names.
//! - `material`: generating keys, sealing them, public JWKs, signing.
//! - `keyset`: the states of keys over time and the rotation schedule.
//! - `service`: the `TokenService` that the server holds.
//! - `verify`: the server's verification of its own tokens.
//! - `cache`: tokens verified before.

mod cache;
pub mod claims;
pub mod client_ref;
pub mod keyset;
pub mod material;
pub mod service;
mod verify;

pub use claims::{
    CLIENT_ID_CLAIM, CNF_CLAIM, ClientPrincipal, Principal, ROLES_CLAIM, SCOPE_CLAIM,
    SESSION_CLAIM, TENANT_CLAIM, TokenClaims, UserPrincipal, X5T_S256,
};
pub use client_ref::ClientRef;
pub use keygate_verify::{AcceptedKinds, KIND_CLAIM, OWNER_CLAIM, TokenKind};
pub use keyset::{KeyState, KeyStatus, RotationPolicy, SigningKeyRecord};
pub use material::{NewSigningKey, Signer, SigningAlg};
pub use service::{
    ACCESS_TOKEN_TYP, ExtraAudience, IssuedToken, JwtConfig, RevocationCheck, TokenError,
    TokenRequest, TokenService,
};
