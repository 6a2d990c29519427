//! The axum extractor: RFC 6750 challenges and problem+json bodies for
//! missing, invalid and expired tokens; claims for a good one.

use crate::{common, extract_common, jwks_server};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Extension, Router};
use common::{NOW, claims_with, es256};
use extract_common::{app, app_with, call, problem, remote_verifier, send};
use jwks_server::JwksServer;
use keygate_verify::VerifiedClaims;
use serde_json::json;

#[tokio::test]
async fn the_extractor_answers_rfc_6750_and_problem_json() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.url());

    // No token: a challenge without an error attribute.
    for authorization in [None, Some("Basic dXNlcjpwdw==")] {
        let answer = call(&app, authorization).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.challenge.as_deref(), Some("Bearer realm=\"api\""));
        assert_eq!(problem(&answer)["code"], "missing_token");
    }

    // Invalid and expired tokens: error="invalid_token", never echoed.
    let good = key.token();
    // Another token's signature on this header and payload.
    let other_sig = es256("k1").token();
    let forged = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0,
        other_sig.rsplit_once('.').unwrap().1
    );
    let expired = key.sign(&key.header(), &claims_with("exp", Some(json!(NOW - 3600))));
    let other = es256("k1").token();
    for (token, code) in [
        ("not-a-jwt", "malformed_token"),
        (forged.as_str(), "bad_signature"),
        (expired.as_str(), "expired"),
        (other.as_str(), "bad_signature"),
    ] {
        let answer = call(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{code}");
        let challenge = answer.challenge.clone().unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
            "{challenge}"
        );
        assert_eq!(problem(&answer)["code"], code);
        assert!(!answer.body.contains(token) && !challenge.contains(token));
    }
    let answer = call(&app, Some("Bearer")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenge.unwrap().contains("invalid_token"));

    // A good token, scheme name in any case.
    for scheme in ["Bearer", "bearer"] {
        let answer = call(&app, Some(&format!("{scheme} {good}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body, "hello user-1");
    }
}

#[tokio::test]
async fn an_unreachable_issuer_is_503_not_401() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    server.set_status(500);
    let app = app(&server.url());
    let answer = call(&app, Some(&format!("Bearer {}", key.token()))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.challenge, None);
    assert_eq!(problem(&answer)["code"], "keys_unavailable");
}

#[tokio::test]
async fn the_middleware_guards_a_whole_router() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let verifier = remote_verifier(&server.url());
    let app = Router::new()
        .route(
            "/whoami",
            get(
                |Extension(VerifiedClaims(claims)): Extension<VerifiedClaims>| async move {
                    claims.sub.unwrap_or_default()
                },
            ),
        )
        .layer(axum::middleware::from_fn_with_state(
            verifier,
            keygate_verify::require_token,
        ));

    let answer = call(&app, None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some("Bearer realm=\"api\""));
    let answer = call(&app, Some("Bearer not-a-jwt")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem(&answer)["code"], "malformed_token");
    let answer = call(&app, Some(&format!("Bearer {}", key.token()))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "user-1");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn user_and_client_extractors_take_their_kind_only() {
    use keygate_verify::{ClientClaims, UserClaims};
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let verifier = remote_verifier(&server.url());
    let app = Router::new()
        .route(
            "/whoami",
            get(|UserClaims(claims): UserClaims| async move { claims.sub.unwrap_or_default() }),
        )
        .route(
            "/client",
            get(|ClientClaims(claims): ClientClaims| async move { claims.sub.unwrap_or_default() }),
        )
        .with_state(verifier);
    let user = key.sign(&key.header(), &claims_with("kg_kind", Some(json!("user"))));
    let client = key.sign(
        &key.header(),
        &claims_with("kg_kind", Some(json!("client"))),
    );
    // Minted before keygate set the claim: no kind, refused by both.
    let kindless = key.token();
    let odd = key.sign(&key.header(), &claims_with("kg_kind", Some(json!("admin"))));

    let answer = call(&app, Some(&format!("Bearer {user}"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "user-1");
    let answer = call(&app, Some(&format!("Bearer {client}"))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.challenge, None);
    assert_eq!(problem(&answer)["code"], "wrong_token_kind");
    for token in [&kindless, &odd] {
        let answer = call(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.challenge.unwrap().contains("invalid_token"));
    }
    // Missing token: the usual 401 challenge.
    assert_eq!(call(&app, None).await.status, StatusCode::UNAUTHORIZED);

    let client_call = |token: String| {
        let app = app.clone();
        async move {
            let request = Request::get("/client")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            send(&app, request).await.status
        }
    };
    assert_eq!(client_call(client.clone()).await, StatusCode::OK);
    assert_eq!(client_call(user.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(client_call(kindless).await, StatusCode::UNAUTHORIZED);
}

/// With a decryption key configured, the extractor takes nested JWTs
/// (signed by the issuer, encrypted to this service) and gives the same
/// claims; without one, the same token is malformed.
#[tokio::test]
async fn the_extractor_takes_encrypted_tokens_when_given_a_key() {
    use keygate_verify::Encryption;
    use std::sync::Arc;
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let service = crate::jwe_common::p256("svc-enc");
    let verifier = remote_verifier(&server.url())
        .with_decryption(Arc::new(service.decrypter()), Encryption::Optional)
        .unwrap();
    let app = app_with(verifier);
    let nested = service
        .encrypter(None)
        .encrypt_nested(&key.token())
        .unwrap();
    let answer = call(&app, Some(&format!("Bearer {nested}"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "hello user-1");
    // Encrypted to another service's key: one opaque refusal.
    let elsewhere = crate::jwe_common::p256("svc-enc");
    let foreign = elsewhere
        .encrypter(None)
        .encrypt_nested(&key.token())
        .unwrap();
    let answer = call(&app, Some(&format!("Bearer {foreign}"))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem(&answer)["code"], "decryption_failed");
    // The plain token still works (Optional), and a service without a
    // decryption key refuses the nested one.
    let answer = call(&app, Some(&format!("Bearer {}", key.token()))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let plain_app = extract_common::app(&server.url());
    let answer = call(&plain_app, Some(&format!("Bearer {nested}"))).await;
    assert_eq!(problem(&answer)["code"], "malformed_token");
}
