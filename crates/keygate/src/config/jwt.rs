//! The `[jwt]` settings: issuer, audience, algorithm, lifetimes and the
//! signing-key schedule. Flags are `--jwt-<name>`, the environment
//! `KEYGATE_JWT_<NAME>`, the TOML file a `[jwt]` table.

use keygate_core::jwt::{JwtConfig, SigningAlg};

use super::error::ConfigError;
use super::settings::settings;

settings! {
    table: Some("jwt");
    pub struct JwtArgs {}
    /// The `[jwt]` table of the config file.
    pub struct JwtFile {
        /// `[[jwt.audiences]]`, resolved by `audiences::resolve`.
        #[serde(default)]
        pub audiences: Vec<super::audiences::AudienceFile>,
    }
    /// The `[jwt]` settings layered, before their bounds are checked.
    pub struct JwtLayered;
    fixed {
        /// Signing algorithm: ES256, EdDSA, RS256, or HS256 (this process
        /// only; never published, so nothing else can verify).
        algorithm: String = "ES256".to_owned(),
            flag "jwt-algorithm", env "KEYGATE_JWT_ALGORITHM", value "ALG";
        /// Lifetime of user access tokens, 60 to 3600 seconds.
        access_token_ttl_seconds: i64 = 900,
            flag "jwt-access-token-ttl-seconds", env "KEYGATE_JWT_ACCESS_TOKEN_TTL_SECONDS",
            value "SECS";
        /// Lifetime of client-credentials tokens, 60 to 3600 seconds.
        client_token_ttl_seconds: i64 = 300,
            flag "jwt-client-token-ttl-seconds", env "KEYGATE_JWT_CLIENT_TOKEN_TTL_SECONDS",
            value "SECS";
        /// Days between signing-key rotations, 1 to 365.
        rotation_days: i64 = 30,
            flag "jwt-rotation-days", env "KEYGATE_JWT_ROTATION_DAYS", value "DAYS";
        /// `Cache-Control: max-age` of the JWKS; a new key is published this
        /// long before it signs. 60 to 86400 seconds.
        jwks_max_age_seconds: i64 = 300,
            flag "jwt-jwks-max-age-seconds", env "KEYGATE_JWT_JWKS_MAX_AGE_SECONDS",
            value "SECS";
        /// Clock skew allowed when verifying, 0 to 300 seconds.
        leeway_seconds: i64 = 30,
            flag "jwt-leeway-seconds", env "KEYGATE_JWT_LEEWAY_SECONDS", value "SECS";
        /// Most verified tokens remembered, each kept whole beside its claims
        /// (its own bytes, under 1 KB for a typical token); 0 turns the cache off.
        verified_cache_capacity: usize = 100_000,
            flag "jwt-verified-cache-capacity", env "KEYGATE_JWT_VERIFIED_CACHE_CAPACITY",
            value "N";
    }
    derived {
        /// `iss` of every token and the OAuth issuer identifier: the URL
        /// clients reach keygate at.
        issuer: String = "`http://<listen>` (`https://` with TLS)",
            flag "jwt-issuer", env "KEYGATE_JWT_ISSUER", value "URL";
        /// `aud` of user access tokens.
        audience: String = "the issuer",
            flag "jwt-audience", env "KEYGATE_JWT_AUDIENCE", value "AUD";
    }
    secret {}
    file_only {}
}

/// Tokens the gateway hands upstream live one minute (issue 4's contract).
pub const INTERNAL_TOKEN_TTL: i64 = 60;

fn bounded(
    name: &'static str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(format!(
            "jwt {name}: {value} is outside {}..={}",
            range.start(),
            range.end()
        )))
    }
}

pub fn resolve(
    args: &JwtArgs,
    mut file: JwtFile,
    default_issuer: String,
) -> Result<JwtConfig, ConfigError> {
    let l = args.layer(&mut file);
    let issuer = l.issuer.unwrap_or(default_issuer);
    let valid_issuer = (issuer.starts_with("https://") || issuer.starts_with("http://"))
        && !issuer.contains(['?', '#'])
        && !issuer.ends_with('/');
    if !valid_issuer {
        return Err(ConfigError::invalid(format!(
            "jwt issuer: {issuer:?} must be an http(s) URL without query, fragment or \
             trailing slash (RFC 8414), such as https://auth.example.com"
        )));
    }
    let audience = l.audience.unwrap_or_else(|| issuer.clone());
    if audience.is_empty() || audience.len() > 256 || audience.contains('\0') {
        return Err(ConfigError::invalid("jwt audience: 1 to 256 characters"));
    }
    let algorithm =
        SigningAlg::parse(&l.algorithm).map_err(|e| ConfigError::invalid(e.to_string()))?;
    Ok(JwtConfig {
        issuer,
        audience,
        algorithm,
        access_token_ttl: bounded(
            "access_token_ttl_seconds",
            l.access_token_ttl_seconds,
            60..=3600,
        )?,
        client_token_ttl: bounded(
            "client_token_ttl_seconds",
            l.client_token_ttl_seconds,
            60..=3600,
        )?,
        internal_token_ttl: INTERNAL_TOKEN_TTL,
        rotation_period: bounded("rotation_days", l.rotation_days, 1..=365)? * 86_400,
        jwks_max_age: bounded("jwks_max_age_seconds", l.jwks_max_age_seconds, 60..=86_400)?,
        leeway: bounded("leeway_seconds", l.leeway_seconds, 0..=300)?,
        verified_cache_capacity: l.verified_cache_capacity,
        audiences: Vec::new(),
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
        assert!(
            err.to_string().contains("access_token_ttl_seconds"),
            "{err}"
        );
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
