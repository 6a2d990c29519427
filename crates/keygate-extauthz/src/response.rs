//! The forward-auth HTTP answer translated into a `CheckResponse`, so gRPC
//! and HTTP give the same decision, headers and problem+json body.
//!
//! What Envoy does with each part (its ext_authz filter documentation):
//! `status.code` OK allows and anything else denies; an allowed check's
//! `OkHttpResponse.headers` are set on the request to the upstream and its
//! `response_headers_to_add` on the response to the client; a denial's
//! `DeniedHttpResponse` is the client's response. A gRPC *error* is no
//! decision: Envoy answers it with `status_on_error` (403 by default) unless
//! `failure_mode_allow` lets the request through.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Response, StatusCode, header};
use keygate_gateway::proxy::CREDENTIALS;
use tonic::Status;

use crate::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, header_value_option};
use crate::pb::envoy::service::auth::v3::{
    CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response,
};
use crate::pb::envoy::r#type::v3::HttpStatus;
use crate::pb::google::rpc;

/// gRPC status codes (google.rpc.Code) that a `CheckResponse` carries.
mod code {
    pub const OK: i32 = 0;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Headers of the 200 answer that belong to the client's response, not to
/// the upstream request: the RateLimit fields (as the gateway sends them).
const TO_CLIENT: [&str; 2] = ["ratelimit", "ratelimit-policy"];

/// The answer to a check; a 5xx is no decision and becomes a gRPC error.
/// `strip` removes the client's credentials from the upstream request, as
/// the gateway's proxy does unless a route passes them through.
pub async fn translate(res: Response<Body>, strip: bool) -> Result<CheckResponse, Status> {
    let (parts, body) = res.into_parts();
    if parts.status.is_server_error() {
        return Err(Status::unavailable(
            "keygate could not decide (storage or a shared service is unavailable)",
        ));
    }
    if parts.status == StatusCode::OK {
        return Ok(allowed(&parts.headers, strip));
    }
    // The bodies are problem+json built in memory: reading one cannot
    // block, and a failure is keygate's own.
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| Status::internal("cannot read the refusal's body"))?;
    Ok(denied(parts.status, &parts.headers, &body))
}

fn allowed(headers: &HeaderMap, strip: bool) -> CheckResponse {
    let mut ok = OkHttpResponse::default();
    let mut authorization = false;
    for (name, value) in headers {
        if name == header::CACHE_CONTROL {
            // The 200's own caching, not the request's.
            continue;
        }
        authorization |= name == header::AUTHORIZATION;
        let option = overwrite(name, value.as_bytes());
        if TO_CLIENT.contains(&name.as_str()) {
            ok.response_headers_to_add.push(option);
        } else {
            ok.headers.push(option);
        }
    }
    if strip {
        // A minted token already overwrites the client's `Authorization`.
        ok.headers_to_remove = CREDENTIALS
            .iter()
            .filter(|c| !(authorization && **c == header::AUTHORIZATION.as_str()))
            .map(|c| (*c).to_owned())
            .collect();
    }
    CheckResponse {
        status: Some(rpc::Status {
            code: code::OK,
            message: String::new(),
        }),
        http_response: Some(check_response::HttpResponse::OkResponse(ok)),
    }
}

fn denied(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CheckResponse {
    let code = match status {
        StatusCode::UNAUTHORIZED => code::UNAUTHENTICATED,
        StatusCode::TOO_MANY_REQUESTS => code::RESOURCE_EXHAUSTED,
        StatusCode::BAD_REQUEST => code::INVALID_ARGUMENT,
        _ => code::PERMISSION_DENIED,
    };
    let denied = DeniedHttpResponse {
        status: Some(HttpStatus {
            code: i32::from(status.as_u16()),
        }),
        headers: headers
            .iter()
            .map(|(n, v)| overwrite(n, v.as_bytes()))
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    };
    CheckResponse {
        status: Some(rpc::Status {
            code,
            message: status.canonical_reason().unwrap_or_default().to_owned(),
        }),
        http_response: Some(check_response::HttpResponse::DeniedResponse(denied)),
    }
}

/// A header that replaces any the request had under its name: an identity
/// header the client forged must not survive beside keygate's. Empty
/// values are kept, as they overwrite a forged one.
fn overwrite(name: &HeaderName, value: &[u8]) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
            raw_value: Vec::new(),
        }),
        append_action: header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn response(status: StatusCode, headers: &[(&str, &str)], body: &str) -> Response<Body> {
        let mut res = Response::new(Body::from(body.to_owned()));
        *res.status_mut() = status;
        for (k, v) in headers {
            res.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        res
    }

    #[tokio::test]
    async fn a_5xx_is_no_decision() {
        let res = response(StatusCode::SERVICE_UNAVAILABLE, &[], "{}");
        let status = translate(res, true).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }

    #[tokio::test]
    async fn allowed_sets_identity_upstream_and_ratelimit_for_the_client() {
        let res = response(
            StatusCode::OK,
            &[
                ("cache-control", "no-store"),
                ("x-keygate-subject", "alice"),
                ("x-keygate-tenant", ""),
                ("ratelimit", "\"r\";r=9;t=60"),
            ],
            "",
        );
        let check = translate(res, true).await.unwrap();
        assert_eq!(check.status.unwrap().code, code::OK);
        let Some(check_response::HttpResponse::OkResponse(ok)) = check.http_response else {
            panic!("not allowed");
        };
        let keys = |v: &[HeaderValueOption]| -> Vec<String> {
            v.iter().map(|h| h.header.clone().unwrap().key).collect()
        };
        assert_eq!(keys(&ok.headers), ["x-keygate-subject", "x-keygate-tenant"]);
        assert_eq!(keys(&ok.response_headers_to_add), ["ratelimit"]);
        assert_eq!(
            ok.headers_to_remove,
            ["authorization", "x-api-key", "signature", "signature-input"]
        );
    }

    #[tokio::test]
    async fn refusals_keep_status_headers_and_body() {
        let res = response(
            StatusCode::TOO_MANY_REQUESTS,
            &[
                ("retry-after", "3"),
                ("content-type", "application/problem+json"),
            ],
            "{\"code\":\"rate_limited\"}",
        );
        let check = translate(res, true).await.unwrap();
        assert_eq!(check.status.unwrap().code, code::RESOURCE_EXHAUSTED);
        let Some(check_response::HttpResponse::DeniedResponse(d)) = check.http_response else {
            panic!("not denied");
        };
        assert_eq!(d.status.unwrap().code, 429);
        assert_eq!(d.body, "{\"code\":\"rate_limited\"}");
        assert_eq!(d.headers.len(), 2);
    }
}
