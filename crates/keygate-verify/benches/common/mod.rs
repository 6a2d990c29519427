//! What the benches share: a keygate-shaped HS256 access token and the
//! verifier that accepts it.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keygate_verify::{Algorithm, JwkSet, Validation, Verifier, VerifyingKey};
use serde_json::json;

pub const ISS: &str = "https://auth.bench.test";
pub const AUD: &str = "orders";
pub const NOW: u64 = 1_800_000_000;
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
pub const KID: &str = "k_2026-11-28T01:00:00Z_3f9a1c";

/// A token shaped like the server's access tokens (515 bytes).
pub fn token() -> String {
    let header = json!({"alg": "HS256", "kid": KID, "typ": "at+jwt"});
    let claims = json!({
        "iss": ISS, "sub": "usr_4kR9vXq2LmN8pT3w", "aud": AUD,
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 890,
        "jti": "01JDXK8Q5Y3ZP7R2M4N6B8C0V1",
        "roles": ["customer", "beta"], "tenant": "acme",
        "scope": "orders:read orders:write", "plan": "pro",
        "sid": "ses_9TqW2xLm4Kp7Rv3N",
    });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    format!("{input}.{}", B64.encode(hmac::sign(&key, input.as_bytes())))
}

/// A verifier holding `SECRET` under `KID`, for `ISS` and `AUD`.
pub fn hs256_verifier() -> Verifier {
    let key = VerifyingKey::from_hmac_secret(Algorithm::HS256, SECRET, Some(KID.into())).unwrap();
    Verifier::new(
        JwkSet::from_keys(vec![key]).unwrap(),
        Validation::new(ISS, AUD),
    )
    .unwrap()
}
