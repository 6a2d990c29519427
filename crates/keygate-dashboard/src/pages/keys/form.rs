//! Turning form text into the services' values. Every refusal names the
//! field, and the page is shown again with what was typed.

use keygate_core::model::{Metadata, RateLimitSpec, Scope};
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::error::PageError;

/// `<input type="datetime-local">`'s format, read as UTC.
const LOCAL: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]");

fn invalid(field: &str, why: impl std::fmt::Display) -> PageError {
    PageError::Invalid(format!("{field}: {why}"))
}

/// Scopes separated by spaces or commas.
pub fn scopes(text: &str) -> Result<Vec<Scope>, PageError> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).map_err(|e| invalid("scopes", e)))
        .collect()
}

/// Empty means none.
pub fn optional_i64(field: &str, text: &str) -> Result<Option<i64>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| invalid(field, "a whole number, or empty"))
}

/// A limit per period; an empty limit means no rate limit.
pub fn rate_limit(limit: &str, period: &str) -> Result<Option<RateLimitSpec>, PageError> {
    let Some(limit) = optional_i64("rate limit", limit)? else {
        return Ok(None);
    };
    let limit = u32::try_from(limit).map_err(|_| invalid("rate limit", "out of range"))?;
    let period_seconds = period
        .trim()
        .parse()
        .map_err(|_| invalid("rate limit period", "choose a period"))?;
    let spec = RateLimitSpec {
        limit,
        period_seconds,
    };
    spec.validate()
        .map(Some)
        .map_err(|e| invalid("rate limit", e))
}

/// A JSON object; empty means `{}`.
pub fn metadata(text: &str) -> Result<Metadata, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Metadata::new());
    }
    serde_json::from_str(text)
        .map_err(|_| invalid("metadata", "a JSON object like {\"team\": \"a\"}"))
}

/// `2026-12-31T23:59` (UTC), or empty for never.
pub fn expires_at(text: &str) -> Result<Option<i64>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    PrimitiveDateTime::parse(text, LOCAL)
        .map(|t| Some(t.assume_utc().unix_timestamp()))
        .map_err(|_| {
            invalid(
                "expires",
                "a date and time like 2026-12-31T23:59 (UTC), or empty",
            )
        })
}

/// The inverse of `expires_at`, for pre-filling the input.
pub fn local_time(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(LOCAL).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_form_values() {
        let s = scopes("read, write  admin").unwrap_or_default();
        assert_eq!(s.len(), 3);
        assert!(scopes("bad scope\u{7}").is_err());
        assert_eq!(optional_i64("n", " ").ok(), Some(None));
        assert!(optional_i64("n", "x").is_err());
        assert!(rate_limit("", "60").is_ok_and(|r| r.is_none()));
        assert!(rate_limit("10", "60").is_ok_and(|r| r.is_some()));
        assert!(rate_limit("0", "60").is_err());
        assert!(metadata("[1]").is_err());
        assert!(metadata("{\"a\":1}").is_ok_and(|m| m.len() == 1));
        assert_eq!(expires_at("1970-01-02T00:00").ok(), Some(Some(86_400)));
        assert!(expires_at("tomorrow").is_err());
        assert_eq!(local_time(86_400), "1970-01-02T00:00");
    }
}
