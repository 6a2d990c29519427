//! What the gateway judges is what the upstream serves: a request path is
//! normalized once, routes match the normalized form, and the gateway
//! forwards exactly that form (forward-auth, which cannot change what its
//! proxy forwards, judges it and refuses what it cannot judge).
//!
//! Normalizing (RFC 3986 §6.2.2): percent-encoded unreserved characters are
//! decoded and the hex of every other escape uppercased, runs of `/` merged
//! (`//admin` is `/admin` to most servers), bytes a path may not hold raw
//! escaped. Refused outright: dot segments (also encoded, also `..;x`, which
//! Tomcat reads as `..`), encoded `/` or `\`, a raw `\`, `%00`, control
//! characters, broken escapes and escaped escapes (`%252e`, which an
//! upstream that decodes twice reads as `.`), since an upstream may resolve
//! any of them to a path another route guards.
//!
//! `;params` (`/admin;x/secret`) are matched without: each segment is cut
//! at its first `;`, and segments left empty are dropped, which is what a
//! servlet container serves. Whether a route then takes such a path is the
//! route's choice (`path_params`).

use std::borrow::Cow;

/// Why a path cannot be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not an absolute path (`/...`).
    NotAbsolute,
    /// `.` or `..`, plain, encoded, or before `;params`.
    DotSegment,
    /// `%2F`, `%5C` or a raw `\`: a separator the upstream may split on.
    EncodedSeparator,
    /// `%` without two hex digits, `%00`, or a control character.
    BadEscape,
    /// `%25` followed by two hex digits: an escaped escape, which an
    /// upstream that decodes twice reads as another path (`%252e%252e`).
    DoubleEscape,
}

impl PathError {
    pub fn detail(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "the path must start with `/`",
            PathError::DotSegment => "the path has a dot segment (`.` or `..`)",
            PathError::EncodedSeparator => "the path has an encoded slash or a backslash",
            PathError::BadEscape => "the path has a broken percent-escape or a control character",
            PathError::DoubleEscape => {
                "the path has a percent-escape that is itself escaped (%25XX)"
            }
        }
    }
}

/// A normalized path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath<'a> {
    /// What the upstream is sent: normalized, `;params` kept.
    full: Cow<'a, str>,
    /// What routes match: `full` without `;params`; None when equal to it.
    bare: Option<String>,
}

impl<'a> NormalPath<'a> {
    pub fn full(&self) -> &str {
        &self.full
    }

    /// The form routes are matched on.
    pub fn matched(&self) -> &str {
        self.bare.as_deref().unwrap_or(&self.full)
    }

    pub fn has_params(&self) -> bool {
        self.bare.is_some()
    }

    pub fn into_owned(self) -> NormalPath<'static> {
        NormalPath {
            full: Cow::Owned(self.full.into_owned()),
            bare: self.bare,
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes RFC 3986 allows raw in a path besides unreserved ones, `/` and `%`.
fn is_path_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'
    )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Normalizes `raw` (the path alone: no query, no fragment).
pub fn normalize(raw: &str) -> Result<NormalPath<'_>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let full = if is_already_normal(raw.as_bytes()) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(rewrite(raw.as_bytes())?)
    };
    check_segments(&full)?;
    if full.contains("%25") && has_escaped_escape(&full) {
        return Err(PathError::DoubleEscape);
    }
    let bare = full.contains(';').then(|| without_params(&full));
    Ok(NormalPath { full, bare })
}

/// The common case, checked without allocating: nothing to decode, escape
/// or merge.
fn is_already_normal(bytes: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in bytes {
        let plain = is_unreserved(b) || is_path_delim(b) || (b == b'/' && prev != b'/');
        if !plain {
            return false;
        }
        prev = b;
    }
    true
}

fn rewrite(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        match b {
            b'/' if out.ends_with('/') => {}
            b'\\' => return Err(PathError::EncodedSeparator),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i).copied().and_then(hex_value),
                    bytes.get(i + 1).copied().and_then(hex_value),
                ) else {
                    return Err(PathError::BadEscape);
                };
                i += 2;
                match (hi << 4) | lo {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0 => return Err(PathError::BadEscape),
                    v if is_unreserved(v) => out.push(char::from(v)),
                    v => push_escaped(&mut out, v),
                }
            }
            _ if b < 0x20 || b == 0x7f => return Err(PathError::BadEscape),
            _ if b == b'/' || is_unreserved(b) || is_path_delim(b) => out.push(char::from(b)),
            _ => push_escaped(&mut out, b),
        }
    }
    Ok(out)
}

/// `%25` then two hex digits, in the normalized path: checked after
/// decoding, since `%25%61a` decodes to `%25aa`, which an upstream that
/// decodes twice reads as the byte 0xAA.
fn has_escaped_escape(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes
        .windows(5)
        .any(|w| w[..3] == *b"%25" && w[3].is_ascii_hexdigit() && w[4].is_ascii_hexdigit())
}

fn check_segments(path: &str) -> Result<(), PathError> {
    for segment in path.split('/') {
        let name = segment.split(';').next().unwrap_or("");
        if name == "." || name == ".." {
            return Err(PathError::DotSegment);
        }
    }
    Ok(())
}

/// Each segment cut at its first `;`; segments left empty dropped, except
/// that a trailing slash stays a trailing slash.
fn without_params(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let segments: Vec<&str> = full.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (n, segment) in segments.iter().enumerate() {
        let name = segment.split(';').next().unwrap_or("");
        if !name.is_empty() {
            out.push('/');
            out.push_str(name);
        } else if n == last && segment.is_empty() {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `full` with the first `segments` non-empty matched segments removed (a
/// route's `strip_prefix` counted on the matched form), rooted.
pub fn drop_segments(full: &str, segments: usize) -> &str {
    let mut left = segments;
    let mut at = 0;
    let bytes = full.as_bytes();
    while left > 0 && at < bytes.len() {
        // `at` is on a `/`; the segment runs to the next one.
        let end = full[at + 1..].find('/').map_or(full.len(), |i| at + 1 + i);
        let name = full[at + 1..end].split(';').next().unwrap_or("");
        if !name.is_empty() {
            left -= 1;
        }
        at = end;
    }
    &full[at..]
}

#[cfg(test)]
mod tests;
