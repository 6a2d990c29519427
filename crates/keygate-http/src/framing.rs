//! How a request's body is framed, checked alike on every listener.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::ApiError;

/// Refuses transfer codings other than `chunked`: keygate does not decode
/// them, and forwarding the body without its coding would hand the upstream
/// other bytes than the client sent (RFC 9112 §6.1: 501).
pub fn check_transfer_coding(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim);
    if codings.all(|c| c.eq_ignore_ascii_case("chunked")) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "unsupported_transfer_coding",
        "only the chunked transfer coding is accepted",
    ))
}

/// Middleware: `check_transfer_coding` before the handler runs.
pub async fn refuse_transfer_codings(req: Request, next: Next) -> Response {
    match check_transfer_coding(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn coded(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::TRANSFER_ENCODING, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_chunked_passes() {
        assert!(check_transfer_coding(&HeaderMap::new()).is_ok());
        assert!(check_transfer_coding(&coded(&["chunked"])).is_ok());
        assert!(check_transfer_coding(&coded(&["Chunked", " chunked "])).is_ok());
        for bad in [
            &["gzip, chunked"][..],
            &["chunked", "gzip"],
            &["identity"],
            &[""],
        ] {
            let e = check_transfer_coding(&coded(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::NOT_IMPLEMENTED, "{bad:?}");
            assert_eq!(e.code, "unsupported_transfer_coding");
        }
    }
}
