//! One JWKS fetch, and the rules on where keys may come from: https only
//! (plain http for loopback hosts), no credentials in the URL, no redirects,
//! a timeout, a size cap, and the strict remote import (public asymmetric
//! keys only). Shared by [`super::RemoteVerifier`] and [`fetch_jwks`].

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{StatusCode, Url, header};

use crate::{Error, ImportOptions, JwkSet, MAX_JWKS_LEN};

/// Why a fetch failed: a fixed-form sentence fit for a log line or a CLI
/// message (no response body, no key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub(super) String);

/// Fetches and imports a key set once, under the same rules as the cached
/// client (for tools such as `keygate token verify --jwks URL`).
pub async fn fetch_jwks(url: &str, timeout: Duration) -> Result<JwkSet, FetchError> {
    let url = check_url(url).map_err(|e| FetchError(e.to_string()))?;
    let client = http_client(timeout).map_err(|e| FetchError(e.to_string()))?;
    fetch(&client, &url, &ImportOptions::remote())
        .await
        .map(|(set, _)| set)
}

pub(super) fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|_| Error::InvalidConfig("cannot build the HTTP client"))
}

/// One GET: the set and the response's `max-age`, if any.
/// `import` must be a remote one (public keys only); the caller picks only
/// what keys without `alg` may verify.
pub(super) async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    import: &ImportOptions,
) -> Result<(JwkSet, Option<u64>), FetchError> {
    let (body, max_age) = fetch_body(client, url).await?;
    let set = JwkSet::from_json(&body, import)
        .map_err(|e| FetchError(format!("key set refused: {e}")))?;
    Ok((set, max_age))
}

/// One GET of a key set document: its body (at most [`MAX_JWKS_LEN`]
/// bytes), not yet imported, and the response's `max-age`, if any.
pub(super) async fn fetch_body(
    client: &reqwest::Client,
    url: &Url,
) -> Result<(Vec<u8>, Option<u64>), FetchError> {
    let mut response = client
        .get(url.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(|e| FetchError(format!("request failed: {}", e.without_url())))?;
    // A 3xx lands here too: redirects are not followed.
    if response.status() != StatusCode::OK {
        return Err(FetchError(format!("answered {}", response.status())));
    }
    let max_age = response
        .headers()
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(parse_max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError(format!("reading the body failed: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_JWKS_LEN {
            return Err(FetchError("key set too large".to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

/// `max-age=N` from one `Cache-Control` value; `no-cache`/`no-store` count
/// as 0 (then clamped up to the minimum).
fn parse_max_age(value: &str) -> Option<u64> {
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(0);
        }
        let secs = lower.strip_prefix("max-age=")?.trim_matches('"');
        // An absurd number is still a number: saturate, the clamp caps it.
        secs.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| secs.parse::<u64>().unwrap_or(u64::MAX))
            .filter(|_| !secs.is_empty())
    })
}

pub(super) fn check_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|_| Error::InvalidConfig("JWKS URL is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidConfig("JWKS URL must not carry credentials"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::InvalidConfig(
            "JWKS URL must be https (plain http only for loopback hosts)",
        )),
        _ => Err(Error::InvalidConfig("JWKS URL must be https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    // `host_str` brackets IPv6 literals; the url parser has normalised the
    // host already (lowercase, IPv4 forms like `127.1` expanded).
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_parsing() {
        assert_eq!(parse_max_age("public, max-age=120"), Some(120));
        assert_eq!(parse_max_age("Max-Age=7"), Some(7));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(
            parse_max_age("max-age=99999999999999999999999"),
            Some(u64::MAX)
        );
        assert_eq!(parse_max_age("max-age=-1"), None);
        assert_eq!(parse_max_age("max-age="), None);
        assert_eq!(parse_max_age("public"), None);
    }

    #[test]
    fn urls() {
        for ok in [
            "https://auth.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://127.9.9.9/jwks",
            "http://[::1]:80/jwks",
            "http://LOCALHOST/jwks",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://auth.example.com/jwks",
            "http://10.0.0.1/jwks",
            "http://localhost.example.com/jwks",
            "ftp://127.0.0.1/jwks",
            "https://user:pw@auth.example.com/jwks",
            "not a url",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
