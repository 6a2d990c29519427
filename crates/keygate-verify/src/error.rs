//! The one error type of keygate-verify, with stable, greppable codes.
//!
//! Display texts are fixed strings: they never include the token, a claim
//! value, a `kid` or key material, so an error can be logged or returned to a
//! client as it is.

/// Why a token, a key or a key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is longer than `Validation::max_token_len`; nothing was decoded.
    #[error("token too large")]
    TokenTooLarge,
    /// Not a compact JWS with three segments of strict base64url, or its JSON
    /// is not an object; the reason is a fixed text.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    /// A JSON object (header, claims or key) repeats a member name.
    #[error("duplicate JSON member")]
    DuplicateJsonMember,
    /// JSON nested deeper than the limit.
    #[error("JSON nested too deeply")]
    JsonTooDeep,
    /// A header parameter has the wrong type or an unacceptable value.
    #[error("invalid header parameter `{name}`")]
    InvalidHeader { name: &'static str },
    /// `alg` names no algorithm we verify (this includes `none` in any case).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The header carries `crit`: keygate understands no extensions.
    #[error("critical header parameters are not supported")]
    CriticalHeader,
    /// A header parameter we refuse outright (`b64`, nested `cty: JWT`).
    #[error("unsupported header parameter `{name}`")]
    UnsupportedHeader { name: &'static str },
    /// The `kid` is not in the trusted set (a JWKS client may refetch once).
    #[error("unknown key id")]
    UnknownKid,
    /// No `kid`, and no trusted key is bound to the header's algorithm.
    #[error("no trusted key for this algorithm")]
    NoMatchingKey,
    /// The key named by `kid` is bound to another algorithm than the header's.
    #[error("key is bound to another algorithm")]
    KeyAlgorithmMismatch,
    /// The signature does not verify (wrong length, wrong key, tampered input).
    #[error("bad signature")]
    BadSignature,
    /// `typ` is missing or is not the required token type.
    #[error("wrong token type")]
    InvalidTokenType,
    /// `exp` is not after now minus leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` is after now plus leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is after now plus leeway.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iss` is not exactly the configured issuer.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// `aud` does not contain the configured audience, or is malformed.
    #[error("invalid audience")]
    InvalidAudience,
    /// The token is valid but names another kind of principal (`kg_kind`)
    /// than the one required: a client token where a user's is needed.
    #[error("wrong kind of token for this resource")]
    WrongTokenKind,
    /// The token is bound to a client certificate (RFC 8705 `cnf`
    /// `x5t#S256`) and was verified without one: use `verify_bound` with
    /// the certificate's thumbprint.
    #[error("the token is bound to a client certificate")]
    BoundToken,
    /// The token is bound to another client certificate than the one
    /// presented, or none was presented.
    #[error("the token is bound to another client certificate")]
    CertificateMismatch,
    /// A required claim is absent.
    #[error("missing claim `{name}`")]
    MissingClaim { name: &'static str },
    /// A registered claim has the wrong type or an out-of-range value.
    #[error("invalid claim `{name}`")]
    InvalidClaim { name: &'static str },
    /// A JWK was refused at import; the reason is a fixed text.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A key or key set holds private members and stripping was not allowed.
    #[error("key set holds private key material")]
    PrivateKeyMaterial,
    /// A symmetric (`oct`) key where only public keys are allowed.
    #[error("symmetric keys are not allowed here")]
    SymmetricKeyRefused,
    /// Two keys in one set share a `kid`.
    #[error("duplicate key id in key set")]
    DuplicateKid,
    /// A set mixes symmetric and asymmetric keys.
    #[error("key set mixes symmetric and asymmetric keys")]
    MixedKeySet,
    /// The key set document itself is unusable.
    #[error("invalid key set: {0}")]
    InvalidKeySet(&'static str),
    /// The `Validation` asked for something outside the safe limits.
    #[error("invalid verifier configuration: {0}")]
    InvalidConfig(&'static str),
    /// A JWE did not decrypt: wrong key, tampered ciphertext, IV, tag or
    /// encrypted key. One error for every such cause, so that no caller
    /// can become a padding or key-unwrap oracle.
    #[error("decryption failed")]
    Decryption,
    /// Encrypting a token failed (no randomness, a primitive refused); the
    /// reason is a fixed text.
    #[error("encryption failed: {0}")]
    Encryption(&'static str),
    /// A JWE where only a signed token is accepted, or a signed token where
    /// the verifier requires encryption.
    #[error("token encryption does not match what is required")]
    EncryptionMismatch,
}

impl Error {
    /// A stable snake_case code for logs, metrics and problem+json bodies.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenTooLarge => "token_too_large",
            Self::MalformedToken(_) => "malformed_token",
            Self::DuplicateJsonMember => "duplicate_json_member",
            Self::JsonTooDeep => "json_too_deep",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::CriticalHeader => "critical_header",
            Self::UnsupportedHeader { .. } => "unsupported_header",
            Self::UnknownKid => "unknown_kid",
            Self::NoMatchingKey => "no_matching_key",
            Self::KeyAlgorithmMismatch => "key_algorithm_mismatch",
            Self::BadSignature => "bad_signature",
            Self::InvalidTokenType => "invalid_token_type",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::WrongTokenKind => "wrong_token_kind",
            Self::BoundToken => "bound_token",
            Self::CertificateMismatch => "certificate_mismatch",
            Self::MissingClaim { .. } => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::InvalidKey(_) => "invalid_key",
            Self::PrivateKeyMaterial => "private_key_material",
            Self::SymmetricKeyRefused => "symmetric_key_refused",
            Self::DuplicateKid => "duplicate_kid",
            Self::MixedKeySet => "mixed_key_set",
            Self::InvalidKeySet(_) => "invalid_key_set",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Decryption => "decryption_failed",
            Self::Encryption(_) => "encryption_failed",
            Self::EncryptionMismatch => "encryption_mismatch",
        }
    }
}
