//! `/v1/clients`: the registry of mTLS clients. Each handler authorises
//! (its extractor), validates, calls one service function and maps the
//! result, as `keys.rs` does.

use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use keygate_api::clients::{
    ClientListQuery, ClientView, CreateClientRequest, MatcherFields, UpdateClientRequest,
};
use keygate_api::common::Page;
use keygate_core::Error;
use keygate_core::clients::{
    CaName, ClientFilter, ClientId, ClientPatch, ClientRecord, Matcher, NameKind, NamePattern,
    NewClient, Thumbprint,
};
use keygate_core::model::{PageRequest, Scope, Tenant};
use keygate_http::ApiError;
use keygate_http::extract::id_in_path;

use super::AppState;
use super::cluster::{WaitAll, WaitParam, propagate};
use super::extract::{AdminAuth, ApiJson};
use super::keys::{filter_text, parse_query};
use super::views::{
    decode_cursor, encode_cursor, page_limit, rate_limit_spec, rate_limit_view, rfc3339,
};

/// The registry's routes, merged into the admin API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/clients", post(create).get(list))
        .route("/v1/clients/{id}", get(show).patch(update))
        .route("/v1/clients/{id}/revoke", post(revoke))
}

/// A client id from the path; anything else is a 400 before the handler.
pub struct ClientIdPath(pub ClientId);

impl<S: Send + Sync> FromRequestParts<S> for ClientIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        id_in_path("invalid_client_id", parts, state)
            .await
            .map(Self)
    }
}

fn parse_scopes(scopes: &[String]) -> Result<Vec<Scope>, ApiError> {
    scopes
        .iter()
        .map(|s| Scope::parse(s).map_err(ApiError::from))
        .collect()
}

fn matcher_error(detail: &str) -> ApiError {
    ApiError::bad_request("invalid_request", format!("matcher: {detail}"))
}

/// `thumbprint` alone, or `ca` with exactly one of the name kinds.
pub fn parse_matcher(m: &MatcherFields) -> Result<Matcher, ApiError> {
    let names = [
        (NameKind::SpiffeId, &m.spiffe_id),
        (NameKind::Dns, &m.dns),
        (NameKind::Subject, &m.subject),
    ];
    let given: Vec<(NameKind, &String)> = names
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    match (&m.thumbprint, &m.ca, given.as_slice()) {
        (Some(t), None, []) => Ok(Matcher::Pinned(Thumbprint::parse(t)?)),
        (Some(_), _, _) => Err(matcher_error(
            "give thumbprint alone, or ca with one of spiffe_id, dns, subject; not both",
        )),
        (None, Some(ca), [(kind, pattern)]) => Ok(Matcher::Pattern {
            ca: CaName::parse(ca)?,
            pattern: NamePattern::parse(*kind, pattern)?,
        }),
        (None, Some(_), []) => Err(matcher_error("ca needs one of spiffe_id, dns, subject")),
        (None, Some(_), _) => Err(matcher_error("only one of spiffe_id, dns, subject")),
        (None, None, []) => Err(matcher_error(
            "give thumbprint, or ca with one of spiffe_id, dns, subject",
        )),
        (None, None, _) => Err(matcher_error(
            "a name pattern needs ca, the CA it must chain to",
        )),
    }
}

fn matcher_fields(m: &Matcher) -> MatcherFields {
    match m {
        Matcher::Pinned(t) => MatcherFields {
            thumbprint: Some(t.to_b64url()),
            ..MatcherFields::default()
        },
        Matcher::Pattern { ca, pattern } => {
            let text = Some(pattern.as_str().to_owned());
            let mut f = MatcherFields {
                ca: Some(ca.as_str().to_owned()),
                ..MatcherFields::default()
            };
            match pattern.kind() {
                NameKind::SpiffeId => f.spiffe_id = text,
                NameKind::Dns => f.dns = text,
                NameKind::Subject => f.subject = text,
            }
            f
        }
    }
}

pub fn client_view(c: &ClientRecord) -> ClientView {
    ClientView {
        id: c.id.to_string(),
        name: c.name.clone(),
        owner: c.owner.clone(),
        tenant: c.tenant.as_ref().map(|t| t.as_str().to_owned()),
        scopes: c.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        rate_limit: c.rate_limit.map(rate_limit_view),
        matcher: matcher_fields(&c.matcher),
        status: if c.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        }
        .into(),
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
        revoked_at: c.revoked_at.map(rfc3339),
        propagation: None,
    }
}

/// A revoked client is no key: say so in the client's words.
fn revoked_is_final(e: Error) -> ApiError {
    match e {
        Error::Revoked => ApiError::new(
            StatusCode::CONFLICT,
            "client_revoked",
            "the client is revoked and can no longer be changed",
        ),
        e => ApiError::from(e),
    }
}

/// Register a client. Nothing is stored unless every field is valid and
/// the CA is configured.
#[utoipa::path(post, path = "/v1/clients", operation_id = "create_client", tag = "clients", request_body = CreateClientRequest,
    responses((status = 201, body = ClientView), (status = 400), (status = 401), (status = 403),
        (status = 409, description = "already_exists: a live client has this matcher")),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ApiJson(body): ApiJson<CreateClientRequest>,
) -> Result<(StatusCode, Json<ClientView>), ApiError> {
    let input = NewClient {
        matcher: parse_matcher(&body.matcher())?,
        name: body.name,
        owner: body.owner,
        tenant: body.tenant.as_deref().map(Tenant::parse).transpose()?,
        scopes: parse_scopes(&body.scopes)?,
        rate_limit: body.rate_limit.map(rate_limit_spec),
    };
    let client = state.clients.create(&admin, input).await?;
    Ok((StatusCode::CREATED, Json(client_view(&client))))
}

/// List clients, oldest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/clients", operation_id = "list_clients", tag = "clients",
    params(("tenant" = Option<String>, Query), ("owner" = Option<String>, Query),
        ("ca" = Option<String>, Query, description = "only clients matched under this CA"),
        ("include_revoked" = Option<bool>, Query), ("cursor" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "default 100")),
    responses((status = 200, body = Page<ClientView>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<ClientView>>, ApiError> {
    let q: ClientListQuery = parse_query(raw.as_deref())?;
    let filter = ClientFilter {
        tenant: q.tenant.as_deref().map(Tenant::parse).transpose()?,
        owner: filter_text("owner", q.owner)?,
        ca: q.ca.as_deref().map(CaName::parse).transpose()?,
        include_revoked: q.include_revoked,
    };
    let page = PageRequest {
        after: decode_cursor(q.cursor.as_deref())?,
        limit: page_limit(q.limit)?,
    };
    let (clients, next) = state.clients.list(&admin, filter, page).await?;
    Ok(Json(Page {
        data: clients.iter().map(client_view).collect(),
        next_cursor: next.map(encode_cursor),
    }))
}

#[utoipa::path(get, path = "/v1/clients/{id}", operation_id = "show_client", tag = "clients",
    params(("id" = String, Path, pattern = "^cli_[0-9A-Za-z]{16}$")),
    responses((status = 200, body = ClientView), (status = 404)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<ClientView>, ApiError> {
    let client = state.clients.get(&admin, &id).await?;
    Ok(Json(client_view(&client)))
}

#[utoipa::path(patch, path = "/v1/clients/{id}", operation_id = "update_client", tag = "clients",
    params(("id" = String, Path, pattern = "^cli_[0-9A-Za-z]{16}$")), request_body = UpdateClientRequest,
    responses((status = 200, body = ClientView), (status = 400), (status = 404), (status = 409)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ClientIdPath(id): ClientIdPath,
    ApiJson(body): ApiJson<UpdateClientRequest>,
) -> Result<Json<ClientView>, ApiError> {
    let fields = body.matcher();
    let patch = ClientPatch {
        matcher: (!fields.is_empty())
            .then(|| parse_matcher(&fields))
            .transpose()?,
        name: body.name,
        owner: body.owner,
        scopes: body.scopes.as_deref().map(parse_scopes).transpose()?,
        rate_limit: body.rate_limit.map(|r| r.map(rate_limit_spec)),
    };
    let client = state
        .clients
        .update(&admin, &id, patch)
        .await
        .map_err(revoked_is_final)?;
    Ok(Json(client_view(&client)))
}

/// Revoke a client: refused on this node from the response on, on the
/// others once they apply the feed (`?wait=all` waits for them).
#[utoipa::path(post, path = "/v1/clients/{id}/revoke", operation_id = "revoke_client", tag = "clients",
    params(("id" = String, Path, pattern = "^cli_[0-9A-Za-z]{16}$"), WaitParam),
    responses((status = 200, body = ClientView), (status = 404)), security(("api_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    ClientIdPath(id): ClientIdPath,
    wait: WaitAll,
) -> Result<Json<ClientView>, ApiError> {
    let client = state.clients.revoke(&admin, &id).await?;
    let mut view = client_view(&client);
    view.propagation = propagate(&state, wait).await?;
    Ok(Json(view))
}
