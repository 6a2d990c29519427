//! A JWT as a route's credential: keygate's own verification, then the
//! kind of principal the route takes (`jwt_subjects`), then the identity the
//! token names. A client token's principal is its key, never a user.

use axum::http::StatusCode;
use keygate_core::clients::PeerCertificate;
use keygate_core::jwt::{AcceptedKinds, Principal, TokenClaims, TokenError, TokenService};
use keygate_verify::{Claims, check_binding};

use super::config::Route;
use super::grants::check_roles;
use super::identity::Identity;
use super::refusal::{Reason, Refusal};
use keygate_http::ApiError;

/// `audience`: the route's, else `[jwt] audience`. `certificate`: the
/// request's client certificate, which a token bound to one (RFC 8705
/// `cnf`) must have been issued for.
/// The user half of a two-credential mode (`api_key_and_jwt`,
/// `mtls_and_jwt`): only a user token names a user, whatever the route
/// says, and the route's roles are the user's to hold. Verifying it has no
/// side effects, so the modes check it before the application's half,
/// which spends a rate limit.
pub(super) async fn user_of(
    tokens: &TokenService,
    route: &Route,
    token: &str,
    certificate: Option<&PeerCertificate>,
) -> Result<Identity, Refusal> {
    let audience = route.audience.as_deref();
    let user = with_jwt(tokens, audience, token, AcceptedKinds::Users, certificate).await?;
    check_roles(route, &user.roles).map_err(|r| r.by(user.subject.as_deref()))?;
    Ok(user)
}

pub(super) async fn with_jwt(
    tokens: &TokenService,
    audience: Option<&str>,
    token: &str,
    accepted: AcceptedKinds,
    certificate: Option<&PeerCertificate>,
) -> Result<Identity, Refusal> {
    let audience = audience.unwrap_or(&tokens.config().audience);
    let claims = tokens.verify(token, audience).await.map_err(|e| match e {
        TokenError::Invalid(e) => invalid_token(&e),
        TokenError::Revoked => Refusal::new(
            ApiError::unauthorized("token_revoked", "the JWT has been revoked", true),
            Reason::JwtRevoked,
        ),
        TokenError::Storage(e) => Refusal::unavailable(e),
    })?;
    // The verified claims are cached across requests; the binding is
    // each request's own.
    check_binding(&claims, certificate.map(PeerCertificate::thumbprint)).map_err(|e| match e {
        keygate_verify::Error::CertificateMismatch => Refusal::new(
            ApiError::unauthorized(
                "invalid_token",
                "the JWT is bound to a client certificate this request does not present",
                true,
            ),
            Reason::TokenBinding,
        )
        .by(claims.sub.as_deref()),
        other => invalid_token(&other),
    })?;
    jwt_identity(&claims, accepted)
}

fn invalid_token(e: &keygate_verify::Error) -> Refusal {
    Refusal::new(
        ApiError::unauthorized(
            "invalid_token",
            format!("the JWT was refused ({})", e.code()),
            true,
        ),
        Reason::JwtInvalid,
    )
}

/// The principal of a verified token, if its kind is one the route takes.
/// A token without a kind (minted before keygate set one) is refused as
/// invalid: a new login or token request gives one that has it.
fn jwt_identity(claims: &Claims, accepted: AcceptedKinds) -> Result<Identity, Refusal> {
    let typed = TokenClaims::read_identity(claims, accepted).map_err(|e| match e {
        keygate_verify::Error::WrongTokenKind => Refusal::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_token_kind",
                match accepted {
                    AcceptedKinds::Clients => "this route takes client tokens, not a user's",
                    _ => "this route takes user tokens, not a client's (client_credentials)",
                },
            ),
            Reason::WrongTokenKind,
        )
        .by(claims.sub.as_deref()),
        other => invalid_token(&other),
    })?;
    let kind = typed.kind();
    let (subject, client_id, key_owner) = match typed.principal {
        // The key beside a user is the request's to present (an API key),
        // not the user token's to claim.
        Principal::User(user) => (Some(user.subject), None, None),
        Principal::Client(client) => (None, Some(client.id), client.owner),
    };
    Ok(Identity {
        kind: Some(kind),
        key_id: None,
        client_id,
        key_owner,
        subject,
        tenant: typed.tenant,
        scopes: typed.scopes,
        roles: typed.roles,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use keygate_core::jwt::TokenKind;
    use keygate_verify::NumericDate;
    use serde_json::{Value, json};

    fn claims(extra: Value) -> Claims {
        Claims {
            iss: "https://issuer".into(),
            sub: Some("usr_x".into()),
            aud: vec!["api".into()],
            exp: NumericDate::from_secs(100),
            nbf: None,
            iat: None,
            jti: None,
            extra: extra.as_object().unwrap().clone(),
        }
    }

    fn code(refusal: &Refusal) -> (StatusCode, &'static str) {
        (refusal.error.status, refusal.reason.as_str())
    }

    #[test]
    fn a_token_without_a_kind_is_refused_whatever_the_route_takes() {
        // As every token minted before keygate set `kg_kind`.
        let old = claims(json!({"client_id": "key_AAAAAAAAAAAAAAAA", "roles": ["admin"]}));
        for accepted in [
            AcceptedKinds::Users,
            AcceptedKinds::Clients,
            AcceptedKinds::Any,
        ] {
            let refusal = jwt_identity(&old, accepted).unwrap_err();
            assert_eq!(code(&refusal), (StatusCode::UNAUTHORIZED, "jwt_invalid"));
        }
    }

    #[test]
    fn a_client_token_is_its_key_and_never_a_user() {
        let client = claims(json!({
            "kg_kind": "client", "client_id": "key_AAAAAAAAAAAAAAAA", "kg_owner": "usr_victim"
        }));
        let refusal = jwt_identity(&client, AcceptedKinds::Users).unwrap_err();
        assert_eq!(code(&refusal), (StatusCode::FORBIDDEN, "wrong_token_kind"));
        let id = jwt_identity(&client, AcceptedKinds::Any)
            .unwrap_or_else(|r| panic!("{}", r.reason.as_str()));
        assert_eq!(id.kind, Some(TokenKind::Client));
        assert_eq!(id.subject, None);
        assert_eq!(id.token_subject(), Some("key_AAAAAAAAAAAAAAAA"));
        assert_eq!(id.key_owner.as_deref(), Some("usr_victim"));
        // A client token without the key it stands for is not one keygate made.
        let bare = claims(json!({"kg_kind": "client"}));
        let refusal = jwt_identity(&bare, AcceptedKinds::Clients).unwrap_err();
        assert_eq!(code(&refusal), (StatusCode::UNAUTHORIZED, "jwt_invalid"));
        let user = claims(json!({"kg_kind": "user"}));
        let id = jwt_identity(&user, AcceptedKinds::Users)
            .unwrap_or_else(|r| panic!("{}", r.reason.as_str()));
        assert_eq!(id.token_subject(), Some("usr_x"));
        assert_eq!(id.client_id, None);
    }
}
