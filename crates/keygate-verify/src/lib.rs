//! keygate-verify: the project's one JWS/JWT verifier (RFC 7515, 7517, 7519,
//! 8037, 8725). The server and downstream services both use it.
//!
//! Layout, in the order a token meets it:
//! - `jws`: compact serialization only, the length cap, the header rules
//!   (`alg`, `crit`, `b64`, `kid`, `cty`) applied before any key is chosen.
//! - `b64`: strict unpadded base64url. `json`: JSON that refuses duplicate
//!   members and deep nesting; headers and claims go member by member into
//!   typed slots, flat ones (all keygate issues) by `json::simple` without
//!   serde, anything else by the serde path, which alone refuses.
//! - `verifier`: key selection by `kid` and the algorithm bound to the key,
//!   then `alg::verify_primitive`, the single call into aws-lc-rs.
//! - `claims`: registered claims, the time rule, `iss` and `aud`.
//! - `jwk`, `jwks`, `rsa_key`: strict key import; each key gets exactly one
//!   algorithm at import and keeps it.
//! - `jwe`: compact JWE (RFC 7516) for nested JWTs: [`jwe::Decrypter`]
//!   with the recipient's private key, [`jwe::Encrypter`] for the sender;
//!   a `Verifier` given a decrypter decrypts, then verifies as ever.
//! - `kind`: user or client, the `kg_kind` claim of keygate's tokens, and
//!   which kinds a resource takes.
//! - `error`: one `Error` with stable codes; no message carries token or key
//!   bytes.
//!
//! - `remote` (feature `remote`, on by default): `RemoteVerifier`, the JWKS
//!   client for downstream services: fetch over https, cache, refetch on an
//!   unknown `kid`, serve the last good set while the issuer is down.
//! - `extract` (feature `axum`): the `VerifiedClaims` extractor, answering
//!   401 per RFC 6750 with a problem+json body.
//!
//! Time is a parameter (`verify(token, now_secs)`); outside `remote` nothing
//! reads the clock or does I/O, and nothing panics on any input. Without
//! default features the crate depends on aws-lc-rs, base64, serde,
//! serde_json and thiserror only.
#![forbid(unsafe_code)]

mod alg;
mod b64;
mod claims;
mod error;
pub mod json;
pub mod jwe;
mod jwk;
mod jwks;
mod jws;
mod kind;
mod rsa_key;
mod verifier;

pub use alg::{Algorithm, AlgorithmSet, KeyMaterial, verify_primitive};
pub use b64::encode as base64url_encode;
pub use claims::{CNF_CLAIM, Claims, MAX_NUMERIC_DATE, NumericDate, X5T_S256};
pub use error::Error;
pub use jwk::{ImportOptions, Jwk, MAX_KID_LEN, VerifyingKey};
pub use jwks::{JwkSet, MAX_JWKS_LEN, MAX_KEYS, SkippedKey};
pub use jws::Header;
pub use kind::{AcceptedKinds, KIND_CLAIM, OWNER_CLAIM, TokenKind};
pub use verifier::{
    DEFAULT_LEEWAY_SECS, DEFAULT_MAX_TOKEN_LEN, Encryption, MAX_LEEWAY_SECS, MAX_TOKEN_LEN_LIMIT,
    Validation, Verifier, check_binding,
};

mod clock;
pub use clock::{Clock, SystemClock};
#[cfg(feature = "remote")]
mod remote;
#[cfg(feature = "remote")]
pub use remote::{
    FetchError, MAX_CACHE_SECS, RemoteError, RemoteOptions, RemoteRecipient, RemoteVerifier,
    fetch_jwks,
};
#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
pub use extract::{
    ClientCertThumbprint, ClientClaims, Rejection, UserClaims, VerifiedClaims, require_token,
};
