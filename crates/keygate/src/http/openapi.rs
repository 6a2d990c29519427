//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use keygate_http::PROBLEM_JSON;

use keygate_api as api;

use super::{
    audit, clients, cluster, health, key_usage, keys, oauth, sessions, signing, signing_keys, users,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "keygate", description = "API keys, JWT sessions, OAuth 2.0 endpoints and signed requests."),
    paths(keys::create, keys::list, keys::show, keys::update, keys::rotate, keys::revoke,
        keys::verify, audit::list, health::healthz, health::readyz, health::metrics,
        signing_keys::list, signing_keys::rotate, signing_keys::jwks, signing_keys::metadata,
        oauth::token::token, oauth::introspect::introspect, oauth::revoke::revoke,
        sessions::login, sessions::refresh, sessions::logout,
        users::create, users::list, users::show, users::update, users::revoke_sessions,
        signing::create, cluster::show, key_usage::show, key_usage::list,
        clients::create, clients::list, clients::show, clients::update, clients::revoke),
    components(schemas(api::keys::CreateKeyRequest, api::keys::UpdateKeyRequest,
        api::keys::RotateKeyRequest, api::keys::VerifyKeyRequest, api::keys::VerifyKeyResponse,
        api::keys::KeyView, api::keys::IssuedKeyView, api::common::Page<api::keys::KeyView>,
        api::common::RateLimitView, api::common::RateLimitState, api::audit::AuditView,
        api::common::Page<api::audit::AuditView>, api::signing::SigningKeyView, api::signing::SigningKeyList,
        api::sessions::TokenResponse, api::users::CreateUserRequest, api::users::UpdateUserRequest,
        api::users::UserView, api::common::Page<api::users::UserView>, api::signing::SigningSecretView,
        api::sessions::LoginRequest, api::sessions::RefreshRequest, api::sessions::SessionResponse,
        api::common::PropagationView, api::cluster::PropagationBody, api::cluster::ClusterView,
        api::cluster::ClusterNodeView, cluster::WaitValue, api::keys::KeyUsageView,
        api::keys::KeyUsageList, api::keys::UsageBucketView, api::clients::CreateClientRequest,
        api::clients::UpdateClientRequest, api::clients::ClientView, api::clients::MatcherFields,
        api::common::Page<api::clients::ClientView>)),
    modifiers(&Security, &Refusals)
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

/// The refusals every operation can meet before its handler runs (the
/// extractors, the body limit, the admin key's rate limit), and the body of
/// every error: problem+json, or RFC 6749's JSON on the OAuth endpoints,
/// which answer both (an RFC 6749 error for the request, a problem for the
/// admin key some of them require). Added here once rather than on each
/// annotation, so a new handler cannot forget them.
struct Refusals;

const OAUTH_ERROR_JSON: &str = "application/json";

impl Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert("Problem".into(), problem_schema().into());
        components
            .schemas
            .insert("OAuthError".into(), oauth_error_schema().into());
        for (path, item) in &mut openapi.paths.paths {
            let oauth = path.starts_with("/oauth2/");
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                document_refusals(op, oauth);
            }
        }
    }
}

fn document_refusals(op: &mut Operation, oauth: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut add = |status: &str, why: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| Response::new(why).into());
    };
    if secured {
        add("401", "no API key, or one that was refused");
        add("403", "the key may not do this");
        add("429", "the key is over its rate limit");
    }
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if op.request_body.is_some() || has_params || oauth {
        add("400", "the request is malformed");
    }
    if op.request_body.is_some() {
        add("413", "the body is over the size limit");
        if !oauth {
            add("415", "the body is not JSON");
        }
    }
    for (status, response) in &mut op.responses.responses {
        if let (true, RefOr::T(response)) = (status.starts_with('4'), response)
            && response.content.is_empty()
        {
            response.content.insert(
                PROBLEM_JSON.into(),
                Content::new(Some(Ref::from_schema_name("Problem"))),
            );
            if oauth {
                response.content.insert(
                    OAUTH_ERROR_JSON.into(),
                    Content::new(Some(Ref::from_schema_name("OAuthError"))),
                );
            }
        }
    }
}

/// RFC 9457 as `error.rs` writes it.
fn problem_schema() -> ObjectBuilder {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .property("type", string())
        .property("title", string())
        .property("status", ObjectBuilder::new().schema_type(Type::Integer))
        .property("detail", string())
        .property(
            "code",
            string().description(Some("stable snake_case error code")),
        )
        .required("type")
        .required("title")
        .required("status")
        .required("code")
}

/// RFC 6749 §5.2.
fn oauth_error_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .property("error", ObjectBuilder::new().schema_type(Type::String))
        .property(
            "error_description",
            ObjectBuilder::new().schema_type(Type::String),
        )
        .required("error")
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{Value, json};
    use std::collections::HashSet;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut seen = HashSet::new();
        for (path, method, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(id.clone()),
                "{method} {path}: operationId {id} is used twice"
            );
        }
    }

    /// What the extractors answer before a handler runs is documented on
    /// every operation that uses them (schemathesis found these missing).
    #[test]
    fn refusals_before_the_handler_are_documented() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            let has = |status: &str| op["responses"].get(status).is_some();
            let secured = op
                .get("security")
                .is_some_and(|s| !s.as_array().unwrap().is_empty());
            if secured {
                for status in ["401", "403", "429"] {
                    assert!(has(status), "{method} {path} lacks {status}");
                }
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413"] {
                    assert!(has(status), "{method} {path} lacks {status}");
                }
            }
            if op.get("parameters").is_some() {
                assert!(has("400"), "{method} {path} lacks 400");
            }
        }
    }

    /// Every documented error says what its body is, so a client (and a
    /// conformance test) can hold the server to it.
    #[test]
    fn every_error_response_has_a_body_schema() {
        let doc = document();
        for (path, method, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    let content = response["content"].as_object();
                    assert!(
                        content.is_some_and(|c| !c.is_empty()),
                        "{method} {path} {status} has no content"
                    );
                }
            }
        }
    }

    /// What the handlers accept, as schemathesis' positive and negative
    /// data checks found it: bodies that may be empty, id shapes, limits.
    #[test]
    fn documented_inputs_match_what_handlers_accept() {
        let doc = document();
        for (path, method) in [
            ("/v1/auth/logout", "post"),
            ("/v1/auth/refresh", "post"),
            ("/v1/keys/{id}/rotate", "post"),
        ] {
            let body = &doc["paths"][path][method]["requestBody"];
            assert_ne!(
                body["required"],
                Value::Bool(true),
                "{method} {path}: {body}"
            );
        }
        for (path, method, prefix) in [
            ("/v1/keys/{id}", "get", "^key_"),
            ("/v1/keys/{id}/signing-secret", "post", "^key_"),
            ("/v1/users/{id}", "patch", "^usr_"),
        ] {
            let param = &doc["paths"][path][method]["parameters"][0];
            let pattern = param["schema"]["pattern"].as_str().unwrap_or_default();
            assert!(pattern.starts_with(prefix), "{method} {path}: {param}");
        }
        for path in ["/v1/keys", "/v1/users", "/v1/audit"] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
            assert_eq!(limit["schema"]["minimum"], 1, "{path}: {limit}");
            assert_eq!(limit["schema"]["maximum"], 500, "{path}: {limit}");
        }
    }

    #[test]
    fn metrics_are_documented_as_openmetrics() {
        let doc = document();
        let content = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap();
        assert!(
            content.contains_key("application/openmetrics-text"),
            "{content:?}"
        );
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// Every `$ref` names a schema the document defines: generic types
    /// (`Page<T>`) are registered under names utoipa composes.
    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not defined"
            );
        }
    }

    /// Each list answers one page of its own resource. utoipa 5 writes a
    /// generic's argument inline (juhaku/utoipa#1586), so `data`'s items are
    /// either a reference to the resource's schema or that schema itself.
    #[test]
    fn lists_answer_pages_of_their_resource() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (path, item) in [
            ("/v1/keys", "KeyView"),
            ("/v1/users", "UserView"),
            ("/v1/audit", "AuditView"),
        ] {
            let schema = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
                ["schema"];
            let name = schema["$ref"].as_str().unwrap();
            assert_eq!(name, format!("#/components/schemas/Page_{item}"));
            let page = &schemas[format!("Page_{item}")];
            let items = &page["properties"]["data"]["items"];
            let by_ref = items["$ref"] == format!("#/components/schemas/{item}");
            assert!(by_ref || *items == schemas[item], "{path}: {page}");
            assert_eq!(
                page["properties"]["next_cursor"]["type"],
                json!(["string", "null"])
            );
            assert_eq!(page["required"], json!(["data"]), "{path}: {page}");
        }
    }
}
