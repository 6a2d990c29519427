//! Reading one cookie from a request's `Cookie` fields (RFC 6265 §5.4:
//! `name=value` pairs separated by `; `, possibly over several fields).

use axum::http::{HeaderMap, header};

/// The value of the cookie `name`, if the request sends it non-empty. The
/// first one wins when a name repeats (browsers send the most specific
/// path first).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_a_cookie_among_others_and_fields() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("c=3;d=4"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "d"), Some("4"));
        assert_eq!(cookie(&h, "e"), None);
        h.insert(header::COOKIE, HeaderValue::from_static("a="));
        assert_eq!(cookie(&h, "a"), None);
    }
}
