//! RFC 8705 certificate-bound tokens: `cnf` with `x5t#S256`. A bound
//! token is refused by plain `verify`, accepted by `verify_bound` only with
//! the certificate it names, and through the extractor only when the app's
//! TLS layer put that certificate's thumbprint in the request.

use crate::{common, extract_common, jwks_server};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{NOW, claims, es256, verifier};
use extract_common::{Answer, app_with, problem, remote_verifier, send};
use jwks_server::JwksServer;
use keygate_verify::{ClientCertThumbprint, Error, base64url_encode};
use serde_json::{Value, json};

const THUMB: [u8; 32] = [7; 32];

fn bound_to(thumb: &[u8]) -> Value {
    let mut c = claims();
    c["cnf"] = json!({"x5t#S256": base64url_encode(thumb)});
    c
}

#[test]
fn a_bound_token_needs_its_certificate() {
    let key = es256("k1");
    let v = verifier(&[&key]);
    let token = key.sign(&key.header(), &bound_to(&THUMB));
    assert_eq!(v.verify(&token, NOW), Err(Error::BoundToken));
    assert_eq!(Error::BoundToken.code(), "bound_token");
    assert_eq!(
        v.verify_bound(&token, NOW, None),
        Err(Error::CertificateMismatch)
    );
    let mut other = THUMB;
    other[31] ^= 1;
    assert_eq!(
        v.verify_bound(&token, NOW, Some(&other)),
        Err(Error::CertificateMismatch)
    );
    let claims = v.verify_bound(&token, NOW, Some(&THUMB)).unwrap();
    assert_eq!(claims.x5t_s256(), Ok(Some(THUMB)));
    // An unbound token passes with or without a certificate.
    let plain = key.token();
    assert!(v.verify_bound(&plain, NOW, Some(&THUMB)).is_ok());
    assert_eq!(v.verify(&plain, NOW).unwrap().x5t_s256(), Ok(None));
}

#[test]
fn a_malformed_confirmation_is_refused_not_ignored() {
    let key = es256("k1");
    let v = verifier(&[&key]);
    for cnf in [
        json!("x"),
        json!({"x5t#S256": 5}),
        json!({"x5t#S256": base64url_encode(&[1; 20])}),
        json!({"x5t#S256": "not base64!"}),
    ] {
        let mut c = claims();
        c["cnf"] = cnf.clone();
        let token = key.sign(&key.header(), &c);
        assert_eq!(
            v.verify_bound(&token, NOW, Some(&THUMB)),
            Err(Error::InvalidClaim { name: "cnf" }),
            "{cnf}"
        );
        assert!(v.verify(&token, NOW).is_err(), "{cnf}");
    }
}

/// `/whoami` with a token and, if any, the thumbprint an app's TLS layer
/// would have put in the request.
async fn call(app: &Router, token: &str, thumb: Option<[u8; 32]>) -> Answer {
    let mut request = Request::get("/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    if let Some(t) = thumb {
        request.extensions_mut().insert(ClientCertThumbprint(t));
    }
    send(app, request).await
}

#[tokio::test]
async fn the_extractor_checks_the_binding_against_the_connections_certificate() {
    let key = es256("k1");
    let server = JwksServer::start(&[&key]).await;
    let verifier = remote_verifier(&server.url());
    let app = app_with(verifier.clone());
    let token = key.sign(&key.header(), &bound_to(&THUMB));
    let answer = call(&app, &token, Some(THUMB)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "hello user-1");
    for thumb in [None, Some([8; 32])] {
        let answer = call(&app, &token, thumb).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(problem(&answer)["code"], "certificate_mismatch");
        assert!(!answer.body.contains(&base64url_encode(&THUMB)));
    }
    // The plain method refuses a bound token with its own code.
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.code(), "bound_token");
}
