//! The `[jwt]` settings: issuer, audience, algorithm, lifetimes and the
//! signing-key schedule. Flags are `--jwt-<name>`, the environment
//! `KEYGATE_JWT_<NAME>`, the TOML file a `[jwt]` table.

use clap::Args;
use keygate_core::jwt::{JwtConfig, SigningAlg};
use serde::Deserialize;

#[derive(Clone, Default, Args)]
pub struct JwtArgs {
    /// `iss` of every token and the OAuth issuer identifier: the URL clients
    /// reach keygate at [default: http://<listen>].
    #[arg(long = "jwt-issuer", env = "KEYGATE_JWT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// `aud` of user access tokens [default: the issuer].
    #[arg(
        long = "jwt-audience",
        env = "KEYGATE_JWT_AUDIENCE",
        value_name = "AUD"
    )]
    pub audience: Option<String>,

    /// Signing algorithm: ES256, EdDSA, RS256, or HS256 (this process only;
    /// never published, so nothing else can verify) [default: ES256].
    #[arg(
        long = "jwt-algorithm",
        env = "KEYGATE_JWT_ALGORITHM",
        value_name = "ALG"
    )]
    pub algorithm: Option<String>,

    /// Lifetime of user access tokens, 60 to 3600 seconds [default: 900].
    #[arg(
        long = "jwt-access-token-ttl-seconds",
        env = "KEYGATE_JWT_ACCESS_TOKEN_TTL_SECONDS",
        value_name = "SECS"
    )]
    pub access_token_ttl_seconds: Option<i64>,

    /// Lifetime of client-credentials tokens, 60 to 3600 seconds [default: 300].
    #[arg(
        long = "jwt-client-token-ttl-seconds",
        env = "KEYGATE_JWT_CLIENT_TOKEN_TTL_SECONDS",
        value_name = "SECS"
    )]
    pub client_token_ttl_seconds: Option<i64>,

    /// Days between signing-key rotations, 1 to 365 [default: 30].
    #[arg(
        long = "jwt-rotation-days",
        env = "KEYGATE_JWT_ROTATION_DAYS",
        value_name = "DAYS"
    )]
    pub rotation_days: Option<i64>,

    /// `Cache-Control: max-age` of the JWKS; a new key is published this long
    /// before it signs. 60 to 86400 seconds [default: 300].
    #[arg(
        long = "jwt-jwks-max-age-seconds",
        env = "KEYGATE_JWT_JWKS_MAX_AGE_SECONDS",
        value_name = "SECS"
    )]
    pub jwks_max_age_seconds: Option<i64>,

    /// Clock skew allowed when verifying, 0 to 300 seconds [default: 30].
    #[arg(
        long = "jwt-leeway-seconds",
        env = "KEYGATE_JWT_LEEWAY_SECONDS",
        value_name = "SECS"
    )]
    pub leeway_seconds: Option<i64>,

    /// Most verified tokens remembered [default: 100000; 0 turns it off].
    #[arg(
        long = "jwt-verified-cache-capacity",
        env = "KEYGATE_JWT_VERIFIED_CACHE_CAPACITY",
        value_name = "N"
    )]
    pub verified_cache_capacity: Option<usize>,
}

/// The `[jwt]` table of the config file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    issuer: Option<String>,
    audience: Option<String>,
    algorithm: Option<String>,
    access_token_ttl_seconds: Option<i64>,
    client_token_ttl_seconds: Option<i64>,
    rotation_days: Option<i64>,
    jwks_max_age_seconds: Option<i64>,
    leeway_seconds: Option<i64>,
    verified_cache_capacity: Option<usize>,
}

/// Tokens the gateway hands upstream live one minute (issue 4's contract).
pub const INTERNAL_TOKEN_TTL: i64 = 60;

fn bounded(name: &str, value: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "jwt {name}: {value} is outside {}..={}",
            range.start(),
            range.end()
        ))
    }
}

pub fn resolve(args: &JwtArgs, file: JwtFile, default_issuer: String) -> Result<JwtConfig, String> {
    let issuer = args
        .issuer
        .clone()
        .or(file.issuer)
        .unwrap_or(default_issuer);
    let valid_issuer = (issuer.starts_with("https://") || issuer.starts_with("http://"))
        && !issuer.contains(['?', '#'])
        && !issuer.ends_with('/');
    if !valid_issuer {
        return Err(format!(
            "jwt issuer: {issuer:?} must be an http(s) URL without query, fragment or \
             trailing slash (RFC 8414), such as https://auth.example.com"
        ));
    }
    let audience = args
        .audience
        .clone()
        .or(file.audience)
        .unwrap_or_else(|| issuer.clone());
    if audience.is_empty() || audience.len() > 256 || audience.contains('\0') {
        return Err("jwt audience: 1 to 256 characters".into());
    }
    let algorithm = args.algorithm.clone().or(file.algorithm);
    let algorithm = match algorithm.as_deref() {
        None => SigningAlg::ES256,
        Some(name) => SigningAlg::parse(name).map_err(|e| e.to_string())?,
    };
    let access = args
        .access_token_ttl_seconds
        .or(file.access_token_ttl_seconds)
        .unwrap_or(900);
    let client = args
        .client_token_ttl_seconds
        .or(file.client_token_ttl_seconds)
        .unwrap_or(300);
    let days = args.rotation_days.or(file.rotation_days).unwrap_or(30);
    let max_age = args
        .jwks_max_age_seconds
        .or(file.jwks_max_age_seconds)
        .unwrap_or(300);
    let leeway = args.leeway_seconds.or(file.leeway_seconds).unwrap_or(30);
    Ok(JwtConfig {
        issuer,
        audience,
        algorithm,
        access_token_ttl: bounded("access_token_ttl_seconds", access, 60..=3600)?,
        client_token_ttl: bounded("client_token_ttl_seconds", client, 60..=3600)?,
        internal_token_ttl: INTERNAL_TOKEN_TTL,
        rotation_period: bounded("rotation_days", days, 1..=365)? * 86_400,
        jwks_max_age: bounded("jwks_max_age_seconds", max_age, 60..=86_400)?,
        leeway: bounded("leeway_seconds", leeway, 0..=300)?,
        verified_cache_capacity: args
            .verified_cache_capacity
            .or(file.verified_cache_capacity)
            .unwrap_or(100_000),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c = resolve(
            &JwtArgs::default(),
            JwtFile::default(),
            "http://127.0.0.1:8080".into(),
        )
        .unwrap();
        assert_eq!(c.audience, "http://127.0.0.1:8080");
        assert_eq!(c.algorithm, SigningAlg::ES256);
        assert_eq!(c.access_token_ttl, 900);
        assert_eq!(c.rotation_period, 30 * 86_400);
        let args = JwtArgs {
            access_token_ttl_seconds: Some(7200),
            ..JwtArgs::default()
        };
        let err = resolve(&args, JwtFile::default(), "http://x".into()).unwrap_err();
        assert!(err.contains("access_token_ttl_seconds"), "{err}");
        let args = JwtArgs {
            issuer: Some("https://auth.example.com/".into()),
            ..JwtArgs::default()
        };
        assert!(resolve(&args, JwtFile::default(), "http://x".into()).is_err());
        let args = JwtArgs {
            algorithm: Some("none".into()),
            ..JwtArgs::default()
        };
        assert!(resolve(&args, JwtFile::default(), "http://x".into()).is_err());
    }
}
