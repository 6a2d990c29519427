//! RFC 8705 at the token endpoint: a registered mTLS client authenticates
//! with the certificate of this very connection (`tls_client_auth` for a
//! client matched under a CA, `self_signed_tls_client_auth` for one pinned
//! by thumbprint: the registry's matcher decides which), and every token
//! issued over a connection with a client certificate is bound to it
//! (`cnf.x5t#S256`). The certificate is only ever keygate's own
//! handshake's: a proxy's header is not a proof of possession here.

use keygate_core::clients::{CertSource, ClientId, PeerCertificate};
use keygate_core::jwt::TokenClaims;

use super::OAuthError;
use super::form::Form;
use super::issue::{issue_client_token, narrow_scopes, target_audience};
use crate::http::AppState;
use axum::response::Response;

/// The connection's certificate, when keygate's handshake took one.
pub fn connection_certificate(cert: Option<&PeerCertificate>) -> Option<&PeerCertificate> {
    cert.filter(|c| matches!(c.source(), CertSource::Tls | CertSource::TlsUnverified))
}

/// `grant_type=client_credentials` with `client_id` naming a registered
/// client and no secret: the connection's certificate is the credential.
pub async fn grant(
    state: &AppState,
    client_id: &str,
    cert: Option<&PeerCertificate>,
    form: &Form,
) -> Result<Response, OAuthError> {
    let refused = |why: &str| OAuthError::invalid_client(why, false);
    let wanted = ClientId::parse(client_id).map_err(|_| refused("client_id names no client"))?;
    let cert = cert.ok_or_else(|| {
        refused("tls_client_auth needs a client certificate on this TLS connection")
    })?;
    let identified = state.clients.identify(cert).await.map_err(|why| {
        if why == keygate_core::clients::ClientRefusal::Unavailable {
            let mut e = OAuthError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "client identification is unavailable; retry",
            );
            e.retry_after_secs = Some(1);
            return e;
        }
        refused(&format!(
            "the client certificate was refused ({})",
            why.code()
        ))
    })?;
    let client = &identified.client;
    if client.id != wanted {
        return Err(refused(
            "the client certificate does not name this client_id",
        ));
    }
    let scopes = narrow_scopes(&client.scopes, form.get("scope"))?;
    let audience = target_audience(state, form)?;
    // After the scopes and the audience, as on the gateway: a request
    // refused anyway does not spend the client's budget.
    if let Some(decision) = state.clients.charge(state.limiter.as_ref(), client).await
        && !decision.allowed
    {
        return Err(OAuthError::rate_limited("client", Some(&decision)));
    }
    let claims = TokenClaims::mtls_client(client, scopes, identified.thumbprint.0);
    issue_client_token(state, &claims, &audience)
}
