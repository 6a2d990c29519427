//! The extractor tests' harness (`extract`, `binding`): a service's router
//! around a `RemoteVerifier` fed by a JWKS server, and one request's answer.

use crate::{common, jwks_server};

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use common::{AUD, ISS, NOW};
use jwks_server::clock_at;
use keygate_verify::{RemoteOptions, RemoteVerifier, Validation, VerifiedClaims};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A service's own state, holding the verifier among other things.
#[derive(Clone)]
pub struct AppState {
    verifier: RemoteVerifier,
    greeting: &'static str,
}

impl FromRef<AppState> for RemoteVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

pub async fn whoami(
    axum::extract::State(state): axum::extract::State<AppState>,
    VerifiedClaims(claims): VerifiedClaims,
) -> String {
    format!("{} {}", state.greeting, claims.sub.unwrap_or_default())
}

/// A verifier of the suite's issuer and audience, its keys from `url`, its
/// clock at `NOW`.
pub fn remote_verifier(url: &str) -> RemoteVerifier {
    RemoteVerifier::with_options(
        Validation::new(ISS, AUD),
        url,
        RemoteOptions::default(),
        clock_at(NOW),
    )
    .unwrap()
}

/// `/whoami` behind `verifier`: answers `hello <sub>`.
pub fn app_with(verifier: RemoteVerifier) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .with_state(AppState {
            verifier,
            greeting: "hello",
        })
}

/// `/whoami` behind a verifier of the keys at `url`.
pub fn app(url: &str) -> Router {
    app_with(remote_verifier(url))
}

pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// `GET /whoami`, with this `Authorization` header if any.
pub async fn call(app: &Router, authorization: Option<&str>) -> Answer {
    let mut request = Request::get("/whoami");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let text = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (status, challenge, content_type) = (
        response.status(),
        text(header::WWW_AUTHENTICATE),
        text(header::CONTENT_TYPE),
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        challenge,
        content_type,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// The problem+json body of a refusal, checked to carry its status.
pub fn problem(answer: &Answer) -> Value {
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json")
    );
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["status"], json!(answer.status.as_u16()));
    body
}
