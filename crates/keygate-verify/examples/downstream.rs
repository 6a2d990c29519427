//! A downstream service that trusts keygate's access tokens, verifying them
//! locally from keygate's JWKS (no call to keygate per request).
//!
//! ```text
//! KEYGATE_ISSUER=https://auth.example.com \
//! KEYGATE_AUDIENCE=orders-api \
//! KEYGATE_JWKS_URL=https://auth.example.com/.well-known/jwks.json \
//! cargo run -p keygate-verify --features axum --example downstream -- 127.0.0.1:3000
//!
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/me
//! ```
//!
//! `KEYGATE_JWKS_URL` must be https, except for a keygate on loopback
//! (`http://127.0.0.1:8080/.well-known/jwks.json`) during development.

use std::process::ExitCode;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use keygate_verify::{RemoteVerifier, UserClaims};
use serde_json::{Value, json};

/// The service's own state; the verifier is one field of it, reached by the
/// extractor through `FromRef`.
#[derive(Clone)]
struct AppState {
    verifier: RemoteVerifier,
    service_name: String,
}

impl FromRef<AppState> for RemoteVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Runs only for a verified user token: the extractor answers 401 for a
/// missing or bad token and 403 for an application's (client) token, whose
/// `sub` is a key id, not a person. `ClientClaims` is the converse;
/// `VerifiedClaims` takes both.
async fn me(State(state): State<AppState>, UserClaims(claims): UserClaims) -> Json<Value> {
    Json(json!({
        "service": state.service_name,
        "sub": claims.sub,
        "roles": claims.extra.get("roles"),
        "tenant": claims.extra.get("tenant"),
        "expires_at": claims.exp.whole_secs(),
    }))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name}"))
}

async fn run() -> Result<(), String> {
    let issuer = env("KEYGATE_ISSUER")?;
    let audience = env("KEYGATE_AUDIENCE")?;
    let jwks_url = env("KEYGATE_JWKS_URL")?;
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());

    let verifier = RemoteVerifier::new(&issuer, &audience, &jwks_url)
        .map_err(|e| format!("verifier configuration: {e}"))?;
    // Not fatal: the verifier fetches again on the first request.
    if let Err(e) = verifier.prefetch().await {
        eprintln!("warning: {e}; will retry on demand");
    }
    let app = Router::new()
        .route("/me", get(me))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(AppState {
            verifier,
            service_name: audience,
        });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!("downstream example listening on http://{listen}");
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("server error: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("downstream: {e}");
            ExitCode::FAILURE
        }
    }
}
