//! Form-encoded OAuth requests and client authentication
//! (`client_secret_basic`, `client_secret_post`).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;

use super::OAuthError;

/// Parameters of a form body, each present at most once (RFC 6749 §3.2).
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the form body cannot be decoded"))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) && matches!(name.as_str(), "resource" | "audience") {
                // RFC 8707 allows several; keygate's token has one `aud`.
                return Err(OAuthError::invalid_target(
                    "one resource per token: keygate issues a token for a single audience",
                ));
            }
            if map.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter `{name}` appears more than once"
                )));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// A parameter; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("the parameter `{name}` is missing"))
        })
    }
}

/// The credentials a client presented; its `Debug` leaves the secret out.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: keygate_core::SecretString,
    /// Presented with HTTP Basic: a refusal answers with a Basic challenge.
    pub basic: bool,
}

/// Reads `client_secret_basic` or `client_secret_post`; using both, or
/// neither, is an error. Basic credentials are form-urlencoded before
/// base64 (RFC 6749 §2.3.1), so both halves are decoded after it: strict
/// clients encode characters such as `:` and `+`.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientCredentials, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(parse_basic(value.to_str().unwrap_or(""))?),
    };
    let post = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
        (_, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_secret needs client_id beside it",
            ));
        }
        _ => None,
    };
    match (basic, post) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "authenticate the client one way: HTTP Basic or client_secret in the body, not both",
        )),
        (Some((client_id, secret)), None) => {
            if form.get("client_id").is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the one in Authorization",
                ));
            }
            Ok(ClientCredentials {
                client_id,
                secret: secret.into(),
                basic: true,
            })
        }
        (None, Some((client_id, secret))) => Ok(ClientCredentials {
            client_id,
            secret: secret.into(),
            basic: false,
        }),
        (None, None) => Err(OAuthError::invalid_client(
            "authenticate the client: HTTP Basic with the key id and the key, or client_id and \
             client_secret in the body",
            true,
        )),
    }
}

fn parse_basic(value: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client("the Authorization header is not valid Basic", true);
    let (scheme, encoded) = value.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "the token endpoint takes HTTP Basic client authentication",
            true,
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let text = zeroize::Zeroizing::new(String::from_utf8(decoded).map_err(|_| bad())?);
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        form_decode(id).ok_or_else(bad)?,
        form_decode(secret).ok_or_else(bad)?,
    ))
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(component: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&format!("v={}", component.replace('&', "%26"))).ok()?;
    match pairs.as_slice() {
        [(_, value)] => Some(value.clone()),
        [] => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn form(body: &str) -> Form {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        Form::parse(&headers, body.as_bytes()).unwrap()
    }

    #[test]
    fn client_credentials_print_without_the_secret() {
        let body = "grant_type=client_credentials&client_id=key_AAAAAAAAAAAAAAAA\
                    &client_secret=kg_live_not-for-logs";
        let creds = client_credentials(&HeaderMap::new(), &form(body)).unwrap();
        assert_eq!(creds.secret.expose_str(), "kg_live_not-for-logs");
        let text = format!("{creds:?}");
        assert!(text.contains("key_AAAAAAAAAAAAAAAA"), "{text}");
        assert!(!text.contains("not-for-logs"), "{text}");
    }

    #[test]
    fn basic_halves_are_form_decoded_after_base64() {
        let raw = base64::engine::general_purpose::STANDARD.encode("key%3Aid:se%2Bcr+et%25");
        let (id, secret) = parse_basic(&format!("Basic {raw}")).unwrap();
        assert_eq!(id, "key:id");
        assert_eq!(secret, "se+cr et%");
        assert!(parse_basic("Bearer abc").is_err());
        assert!(parse_basic("Basic !!!").is_err());
    }

    #[test]
    fn repeated_parameters_and_mixed_methods_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        assert!(Form::parse(&headers, b"a=1&a=2").is_err());
        assert!(Form::parse(&HeaderMap::new(), b"a=1").is_err());
        let f = form("client_id=key_a&client_secret=s");
        let raw = base64::engine::general_purpose::STANDARD.encode("key_a:s");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {raw}")).unwrap(),
        );
        assert!(client_credentials(&headers, &f).is_err());
        let post = client_credentials(&HeaderMap::new(), &f).unwrap();
        assert_eq!(post.client_id, "key_a");
        assert!(!post.basic);
        assert!(client_credentials(&HeaderMap::new(), &form("grant_type=x")).is_err());
    }
}
