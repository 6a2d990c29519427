//! How `keygate keys` shows the server's answers to a person: aligned
//! tables for lists, `field  value` lines for one key.

use serde_json::Value;

use super::table;

pub enum Kind {
    Issued,
    Key,
    List,
    Verify,
}

fn s(v: &Value, field: &str) -> String {
    match v.get(field) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(o)) if field == "rate_limit" => format!(
            "{}/{}s",
            o.get("limit").map_or_else(String::new, Value::to_string),
            o.get("period_seconds")
                .map_or_else(String::new, Value::to_string)
        ),
        Some(other) => other.to_string(),
    }
}

fn key_fields(v: &Value) -> String {
    let names = [
        "id",
        "name",
        "owner",
        "tenant",
        "scopes",
        "env",
        "prefix",
        "status",
        "created_at",
        "updated_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "rate_limit",
        "remaining",
        "metadata",
    ];
    let pairs: Vec<(&str, String)> = names.iter().map(|n| (*n, s(v, n))).collect();
    table::fields(&pairs)
}

pub fn render(kind: Kind, v: &Value) -> String {
    match kind {
        Kind::Issued => format!(
            "{}\nkey  {}\n\nStore this key now: keygate keeps only a hash of it and will not show it again.\n",
            key_fields(v),
            s(v, "key")
        ),
        Kind::Key => key_fields(v),
        Kind::List => {
            let empty = Vec::new();
            let data = v.get("data").and_then(Value::as_array).unwrap_or(&empty);
            let rows: Vec<Vec<String>> = data
                .iter()
                .map(|k| {
                    [
                        "id",
                        "name",
                        "owner",
                        "tenant",
                        "prefix",
                        "status",
                        "scopes",
                        "expires_at",
                    ]
                    .iter()
                    .map(|f| s(k, f))
                    .collect()
                })
                .collect();
            let mut out = table::render(
                &[
                    "ID", "NAME", "OWNER", "TENANT", "PREFIX", "STATUS", "SCOPES", "EXPIRES",
                ],
                &rows,
            );
            if let Some(c) = v.get("next_cursor").and_then(Value::as_str) {
                out.push_str(&format!("\nmore: --cursor {c}\n"));
            }
            out
        }
        Kind::Verify => {
            let names = [
                "valid",
                "code",
                "key_id",
                "owner",
                "tenant",
                "scopes",
                "expires_at",
                "remaining",
                "ratelimit",
            ];
            let pairs: Vec<(&str, String)> = names.iter().map(|n| (*n, s(v, n))).collect();
            table::fields(&pairs)
        }
    }
}
