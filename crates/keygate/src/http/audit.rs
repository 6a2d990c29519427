//! `GET /v1/audit`: the audit trail, newest first, confined to the admin's tenant.

use axum::Json;
use axum::extract::{RawQuery, State};
use keygate_api::audit::{AuditQuery, AuditView};
use keygate_api::common::Page;
use keygate_core::model::{AuditFilter, PageRequest, Tenant};

use super::AppState;
use super::extract::AdminAuth;
use super::keys::{filter_text, parse_query};
use super::views::{audit_view, decode_cursor, encode_cursor, page_limit, parse_time};
use keygate_http::ApiError;

#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "audit",
    params(("tenant" = Option<String>, Query), ("action" = Option<String>, Query, description = "e.g. key.created, auth.failed, gateway.refused"),
        ("actor" = Option<String>, Query), ("target" = Option<String>, Query),
        ("since" = Option<String>, Query, description = "RFC 3339"), ("until" = Option<String>, Query, description = "RFC 3339"),
        ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "default 100")),
    responses((status = 200, body = Page<AuditView>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<AuditView>>, ApiError> {
    let q: AuditQuery = parse_query(raw.as_deref())?;
    let filter = AuditFilter {
        tenant: q.tenant.as_deref().map(Tenant::parse).transpose()?,
        action: filter_text("action", q.action)?,
        actor: filter_text("actor", q.actor)?,
        target: filter_text("target", q.target)?,
        since: q
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
    };
    let page = PageRequest {
        after: decode_cursor(q.cursor.as_deref())?,
        limit: page_limit(q.limit)?,
    };
    let (entries, next) = state.audit.list(&admin, filter, page).await?;
    Ok(Json(Page {
        data: entries.into_iter().map(audit_view).collect(),
        next_cursor: next.map(encode_cursor),
    }))
}
