//! Finding keys: the list filter's checks (search text, status, expiry)
//! and the per-status counts the dashboard's overview shows.

use crate::error::Error;
use crate::keys::service::{Admin, KeyService};
use crate::model::{KeyCounts, KeyFilter, validate_text};

impl KeyService {
    /// How many keys the admin sees in each state now; `expiring` counts
    /// active keys whose expiry is before `expiring_before`. One query.
    pub async fn counts(
        &self,
        admin: &Admin,
        now: i64,
        expiring_before: i64,
    ) -> Result<KeyCounts, Error> {
        self.store
            .count_keys_by_status(admin.tenant(), now, expiring_before)
            .await
    }

    /// Checks a list filter and dates it: the search text is trimmed (an
    /// empty one is no search), at most `MAX_TEXT` bytes without control
    /// characters, lowercased so storage compares it with folded columns.
    pub(crate) fn prepare_filter(&self, filter: &mut KeyFilter) -> Result<(), Error> {
        filter.now = self.clock.now_secs();
        filter.search = match filter.search.take() {
            Some(text) if !text.trim().is_empty() => {
                validate_text("q", &text)?;
                Some(text.trim().to_lowercase())
            }
            _ => None,
        };
        Ok(())
    }
}

/// `text` as a LIKE pattern matching it anywhere, literally: `\`, `%` and
/// `_` are escaped with `\` (the statement says `ESCAPE '\'`).
pub fn like_contains(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::like_contains;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("abc"), "%abc%");
        assert_eq!(like_contains("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_contains(""), "%%");
    }
}
