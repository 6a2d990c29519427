//! How `keygate keys` and `keygate users` show the server's answers to a
//! person: aligned tables for lists, `field  value` lines for one record.
//! The answers are keygate-api's types, read field by field: a field the
//! server renames is a compile error here.

use keygate_api::common::{Page, RateLimitView};
use keygate_api::keys::{IssuedKeyView, KeyUsageView, KeyView, VerifyKeyResponse};
use keygate_api::users::UserView;
use serde::Serialize;
use serde_json::Value;

use super::client::parse;
use super::table;

/// What a `keys` command got back.
pub enum KeyAnswer {
    Issued(IssuedKeyView),
    Key(KeyView),
    List(Page<KeyView>),
    Verify(VerifyKeyResponse<'static>),
    Usage(KeyUsageView),
}

/// Which of them a request answers with.
#[derive(Clone, Copy)]
pub enum Kind {
    Issued,
    Key,
    List,
    Verify,
    Usage,
}

impl KeyAnswer {
    pub fn parse(kind: Kind, value: Value) -> Result<Self, String> {
        Ok(match kind {
            Kind::Issued => Self::Issued(parse(value)?),
            Kind::Key => Self::Key(parse(value)?),
            Kind::List => Self::List(parse(value)?),
            Kind::Verify => Self::Verify(parse(value)?),
            Kind::Usage => Self::Usage(parse(value)?),
        })
    }

    /// False only for a key the server refused: the command then exits 1.
    pub fn ok(&self) -> bool {
        !matches!(self, Self::Verify(v) if !v.valid)
    }

    pub fn render(&self) -> String {
        match self {
            Self::Issued(v) => format!(
                "{}\nkey  {}\n\nStore this key now: keygate keeps only a hash of it and will not show it again.\n",
                key_fields(&v.record),
                v.key.expose()
            ),
            Self::Key(v) => key_fields(v),
            Self::List(list) => key_list(list),
            Self::Verify(v) => verification(v),
            Self::Usage(u) => usage_table(u),
        }
    }
}

/// One row per bucket: its start, the total and each outcome's count.
fn usage_table(u: &KeyUsageView) -> String {
    let codes: Vec<&str> = u
        .buckets
        .first()
        .map(|b| b.counts.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut headers = vec!["start", "total"];
    headers.extend(codes.iter().copied());
    let rows: Vec<Vec<String>> = u
        .buckets
        .iter()
        .map(|b| {
            let mut row = vec![b.start.clone(), b.total.to_string()];
            row.extend(
                codes
                    .iter()
                    .map(|c| b.counts.get(*c).copied().unwrap_or(0).to_string()),
            );
            row
        })
        .collect();
    table::render(&headers, &rows)
}

/// An absent value.
const NONE: &str = "-";

pub fn opt(v: Option<&str>) -> String {
    v.unwrap_or(NONE).to_owned()
}

pub fn opt_num(v: Option<i64>) -> String {
    v.map_or_else(|| NONE.to_owned(), |n| n.to_string())
}

pub fn join<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

/// Objects (metadata, claims) as compact JSON.
pub fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn rate_limit(r: Option<&RateLimitView>) -> String {
    r.map_or_else(
        || NONE.to_owned(),
        |r| format!("{}/{}s", r.limit, r.period_seconds),
    )
}

fn key_fields(k: &KeyView) -> String {
    table::fields(&[
        ("id", k.id.clone()),
        ("name", k.name.clone()),
        ("owner", k.owner.clone()),
        ("tenant", opt(k.tenant.as_deref())),
        ("scopes", join(&k.scopes)),
        ("env", k.env.to_string()),
        ("prefix", k.prefix.clone()),
        ("status", k.status.to_string()),
        ("created_at", k.created_at.clone()),
        ("updated_at", k.updated_at.clone()),
        ("expires_at", opt(k.expires_at.as_deref())),
        ("revoked_at", opt(k.revoked_at.as_deref())),
        ("last_used_at", opt(k.last_used_at.as_deref())),
        ("rate_limit", rate_limit(k.rate_limit.as_ref())),
        ("remaining", opt_num(k.remaining)),
        ("metadata", json(&k.metadata)),
    ])
}

fn key_list(list: &Page<KeyView>) -> String {
    let rows: Vec<Vec<String>> = list
        .data
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.name.clone(),
                k.owner.clone(),
                opt(k.tenant.as_deref()),
                k.prefix.clone(),
                k.status.to_string(),
                join(&k.scopes),
                opt(k.expires_at.as_deref()),
            ]
        })
        .collect();
    let header = [
        "ID", "NAME", "OWNER", "TENANT", "PREFIX", "STATUS", "SCOPES", "EXPIRES",
    ];
    with_cursor(table::render(&header, &rows), list.next_cursor.as_deref())
}

fn verification(v: &VerifyKeyResponse<'_>) -> String {
    table::fields(&[
        ("valid", v.valid.to_string()),
        ("code", v.code.to_string()),
        ("key_id", opt(v.key_id.as_deref())),
        ("owner", opt(v.owner.as_deref())),
        ("tenant", opt(v.tenant.as_deref())),
        (
            "scopes",
            v.scopes.as_deref().map_or_else(|| NONE.to_owned(), join),
        ),
        ("expires_at", opt(v.expires_at.as_deref())),
        ("remaining", opt_num(v.remaining)),
        (
            "ratelimit",
            v.ratelimit.as_ref().map_or_else(|| NONE.to_owned(), json),
        ),
    ])
}

/// A list, and how to ask for its next page.
fn with_cursor(mut out: String, next: Option<&str>) -> String {
    if let Some(c) = next {
        out.push_str(&format!("\nmore: --cursor {c}\n"));
    }
    out
}

pub fn user_fields(u: &UserView) -> String {
    table::fields(&[
        ("id", u.id.clone()),
        ("username", u.username.clone()),
        ("tenant", opt(u.tenant.as_deref())),
        ("roles", join(&u.roles)),
        ("disabled", u.disabled.to_string()),
        ("sessions_cutoff_ms", u.sessions_cutoff_ms.to_string()),
        ("created_at", u.created_at.clone()),
        ("updated_at", u.updated_at.clone()),
        ("claims", json(&u.claims)),
    ])
}

pub fn user_list(list: &Page<UserView>) -> String {
    let rows: Vec<Vec<String>> = list
        .data
        .iter()
        .map(|u| {
            vec![
                u.id.clone(),
                u.username.clone(),
                opt(u.tenant.as_deref()),
                join(&u.roles),
                u.disabled.to_string(),
            ]
        })
        .collect();
    let header = ["ID", "USERNAME", "TENANT", "ROLES", "DISABLED"];
    with_cursor(table::render(&header, &rows), list.next_cursor.as_deref())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(kind: Kind, value: Value) -> KeyAnswer {
        KeyAnswer::parse(kind, value).unwrap()
    }

    fn key(extra: Value) -> Value {
        let mut v = serde_json::json!({
            "id": "key_AAAAAAAAAAAAAAAA", "name": "ci", "owner": "svc", "tenant": null,
            "scopes": ["read", "write"], "metadata": {"plan": "pro"}, "env": "live",
            "prefix": "kg_live_abcd", "status": "active",
            "created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z",
            "expires_at": null, "revoked_at": null, "last_used_at": null,
            "rate_limit": {"limit": 100, "period_seconds": 60}, "remaining": null
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn field<'a>(out: &'a str, name: &str) -> &'a str {
        out.lines()
            .find_map(|l| l.strip_prefix(name).filter(|r| r.starts_with(' ')))
            .map_or("", str::trim)
    }

    #[test]
    fn a_key_shows_absent_values_as_a_dash_and_objects_as_json() {
        let out = answer(Kind::Key, key(serde_json::json!({}))).render();
        assert_eq!(field(&out, "tenant"), "-");
        assert_eq!(field(&out, "scopes"), "read,write");
        assert_eq!(field(&out, "rate_limit"), "100/60s");
        assert_eq!(field(&out, "remaining"), "-");
        assert_eq!(field(&out, "metadata"), r#"{"plan":"pro"}"#);
        let issued = answer(
            Kind::Issued,
            key(serde_json::json!({"key": "kg_live_secret", "remaining": 5})),
        )
        .render();
        assert_eq!(field(&issued, "remaining"), "5");
        assert!(issued.contains("key  kg_live_secret\n"));
    }

    #[test]
    fn a_refused_verification_is_not_ok_and_a_list_offers_its_cursor() {
        let refused = answer(
            Kind::Verify,
            serde_json::json!({"valid": false, "code": "RATE_LIMITED", "key_id": null,
                "owner": null, "tenant": null, "scopes": null, "metadata": null,
                "expires_at": null, "remaining": null,
                "ratelimit": {"limit": 1, "remaining": 0, "reset": 1000}}),
        );
        assert!(!refused.ok());
        let out = refused.render();
        assert_eq!(field(&out, "code"), "RATE_LIMITED");
        assert_eq!(
            field(&out, "ratelimit"),
            r#"{"limit":1,"remaining":0,"reset":1000}"#
        );
        let list = answer(
            Kind::List,
            serde_json::json!({"data": [key(serde_json::json!({}))], "next_cursor": "c7"}),
        );
        assert!(list.ok());
        let out = list.render();
        assert!(out.starts_with("ID"), "{out}");
        assert!(out.ends_with("\nmore: --cursor c7\n"), "{out}");
        assert!(KeyAnswer::parse(Kind::Key, serde_json::json!({"id": 1})).is_err());
    }
}
