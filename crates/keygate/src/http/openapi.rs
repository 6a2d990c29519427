//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, health, keys, signing, views};

#[derive(OpenApi)]
#[openapi(
    info(title = "keygate", description = "API keys, verified and managed."),
    paths(keys::create, keys::list, keys::show, keys::update, keys::rotate, keys::revoke,
        keys::verify, signing::create, audit::list, health::healthz, health::readyz, health::metrics),
    components(schemas(keys::CreateKeyRequest, keys::UpdateKeyRequest, keys::RotateKeyRequest,
        keys::VerifyKeyRequest, keys::VerifyKeyResponse, views::KeyView, views::IssuedKeyView,
        views::KeyList, views::RateLimitView, views::RateLimitState, views::AuditView, views::AuditList,
        signing::SigningSecretView)),
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
