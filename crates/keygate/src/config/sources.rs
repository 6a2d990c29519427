//! Where secrets and files come from: a value, a file, or (SQLite only) a
//! generated file beside the database; and the paths derived from URLs.

use std::path::{Path, PathBuf};

/// Where a server secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Value(zeroize::Zeroizing<String>),
    File(PathBuf),
    /// Generate one beside the SQLite database on first start.
    BesideDatabase(PathBuf),
    Missing,
}

pub type PepperSource = SecretSource;

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Value(_) => f.write_str("Value(redacted)"),
            SecretSource::File(p) => write!(f, "File({})", p.display()),
            SecretSource::BesideDatabase(p) => write!(f, "BesideDatabase({})", p.display()),
            SecretSource::Missing => f.write_str("Missing"),
        }
    }
}

/// A value beats a file, flags and environment beat the config file; with
/// neither, SQLite keeps a generated secret beside its database.
pub(super) fn secret_source(
    flags: (Option<String>, Option<PathBuf>),
    file: (Option<String>, Option<PathBuf>),
    sqlite_db: Option<&Path>,
    ext: &str,
) -> SecretSource {
    match (flags, file) {
        ((Some(v), _), _) => SecretSource::Value(v.into()),
        ((None, Some(p)), _) => SecretSource::File(p),
        (_, (Some(v), _)) => SecretSource::Value(v.into()),
        (_, (None, Some(p))) => SecretSource::File(p),
        _ => match sqlite_db {
            Some(db) => SecretSource::BesideDatabase(sibling(db, ext)),
            None => SecretSource::Missing,
        },
    }
}

/// `scheme://host[:port]` of a URL.
pub(super) fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

/// The file path of a SQLite URL, or None for other backends.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn sibling(db: &Path, ext: &str) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".");
    name.push(ext);
    db.with_file_name(name)
}
