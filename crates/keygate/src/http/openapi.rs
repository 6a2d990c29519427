//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, health, keys, oauth, sessions, signing, signing_keys, users, views};

#[derive(OpenApi)]
#[openapi(
    info(title = "keygate", description = "API keys, JWT sessions, OAuth 2.0 endpoints and signed requests."),
    paths(keys::create, keys::list, keys::show, keys::update, keys::rotate, keys::revoke,
        keys::verify, audit::list, health::healthz, health::readyz, health::metrics,
        signing_keys::list, signing_keys::rotate, signing_keys::jwks, signing_keys::metadata,
        oauth::token::token, oauth::introspect::introspect, oauth::revoke::revoke,
        sessions::login, sessions::refresh, sessions::logout,
        users::create, users::list, users::show, users::update, users::revoke_sessions,
        signing::create),
    components(schemas(keys::CreateKeyRequest, keys::UpdateKeyRequest, keys::RotateKeyRequest,
        keys::VerifyKeyRequest, keys::VerifyKeyResponse, views::KeyView, views::IssuedKeyView,
        views::KeyList, views::RateLimitView, views::RateLimitState, views::AuditView, views::AuditList,
        signing_keys::SigningKeyView, signing_keys::SigningKeyList, oauth::token::TokenResponse,
        users::CreateUserRequest, users::UpdateUserRequest, users::UserView, users::UserList,
        signing::SigningSecretView, sessions::LoginRequest, sessions::RefreshRequest,
        sessions::SessionResponse)),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "x_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
