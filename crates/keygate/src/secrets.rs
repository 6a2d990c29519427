//! The server's own secrets (the key-hashing pepper and the master key that
//! seals signing keys): read from configuration or a file, or generated into
//! a 0600 file beside a SQLite database; at start, checked against the
//! fingerprints the database recorded.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use keygate_core::keys::apikey::random_bytes;
use keygate_core::keys::pepper::{MIN_PEPPER_BYTES, Pepper};
use keygate_core::sealed::MasterKey;
use keygate_core::store::Store;
use zeroize::Zeroizing;

use crate::config::{Config, PepperSource, SecretSource};

/// The secret's text from its source; a missing file beside a SQLite
/// database is generated. `missing` explains what to set when there is none.
fn secret_text(
    source: &SecretSource,
    what: &str,
    missing: &str,
) -> Result<Zeroizing<String>, String> {
    match source {
        SecretSource::Value(v) => Ok(Zeroizing::new(v.trim().to_owned())),
        SecretSource::File(path) => read_secret_file(path, what),
        SecretSource::BesideDatabase(path) if path.exists() => read_secret_file(path, what),
        SecretSource::BesideDatabase(path) => generate_secret_file(path, what),
        SecretSource::Missing => Err(missing.to_owned()),
    }
}

/// Reads the configured pepper, or generates one beside a SQLite database.
pub fn load_pepper(source: &PepperSource, version: i32) -> Result<Pepper, String> {
    let text = secret_text(
        source,
        "pepper",
        "PostgreSQL needs a pepper shared by every node: set KEYGATE_PEPPER_FILE \
         (a file holding at least 32 random bytes, e.g. from \
         `openssl rand -base64 48`), or pepper_file in the config file",
    )?;
    if text.len() < MIN_PEPPER_BYTES {
        return Err(format!(
            "the pepper must be at least {MIN_PEPPER_BYTES} bytes long"
        ));
    }
    Pepper::new(version, text.as_bytes()).map_err(|e| e.to_string())
}

/// Reads the configured master key, or generates one beside a SQLite database.
pub fn load_master_key(source: &SecretSource) -> Result<MasterKey, String> {
    let text = secret_text(
        source,
        "master key",
        "PostgreSQL needs a master key shared by every node (it seals the JWT signing \
         keys): set KEYGATE_MASTER_KEY_FILE (a file holding 32 random bytes in base64, \
         e.g. from `openssl rand -base64 32`), or master_key_file in the config file",
    )?;
    MasterKey::parse(&text).map_err(|e| e.to_string())
}

/// Records `fingerprint` under `setting` the first time; afterwards refuses
/// any other with `mismatch`, so a wrong secret stops start-up instead of
/// making stored data unusable.
pub async fn check_fingerprint(
    store: &dyn keygate_core::store::Store,
    setting: &str,
    fingerprint: &str,
    mismatch: impl FnOnce() -> String,
) -> Result<(), String> {
    let recorded = store
        .setting_or_insert(setting, fingerprint)
        .await
        .map_err(|e| format!("cannot read the database: {e}"))?;
    if recorded == fingerprint {
        Ok(())
    } else {
        Err(mismatch())
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, String> {
    crate::file_mode::check_private(path, &format!("{what} file"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} file {}: {e}", path.display()))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

fn generate_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    random_bytes(raw.as_mut()).map_err(|e| e.to_string())?;
    let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_ref()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {what} file {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {what} file {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new {what} file; back it up with the database");
    Ok(text)
}

/// The pepper, refused when a database that holds keys lost its pepper
/// file, or when it is not the one the database was set up with.
pub async fn open_pepper(config: &Config, store: &dyn Store) -> Result<Pepper, String> {
    if let PepperSource::BesideDatabase(path) = &config.pepper
        && !path.exists()
        && store.count_keys().await.map_err(|e| e.to_string())? > 0
    {
        return Err(format!(
            "the database already holds keys but its pepper file {} is missing; a new pepper \
             would make every key unusable. Restore the file, or point KEYGATE_PEPPER_FILE at it",
            path.display()
        ));
    }
    let pepper = load_pepper(&config.pepper, config.pepper_version)?;
    check_fingerprint(
        store,
        &format!("pepper_fingerprint_v{}", pepper.version()),
        &pepper.fingerprint(),
        || {
            format!(
                "the configured pepper (version {}) is not the one this database was set up \
                 with, so no key would verify. Configure the original pepper \
                 (KEYGATE_PEPPER_FILE), or a new pepper_version for a new pepper",
                pepper.version()
            )
        },
    )
    .await?;
    Ok(pepper)
}

/// The master key, refused when the database's sealed signing keys could
/// not be opened with it.
pub async fn open_master_key(config: &Config, store: &dyn Store) -> Result<Arc<MasterKey>, String> {
    if let SecretSource::BesideDatabase(path) = &config.master_key
        && !path.exists()
        && !store
            .list_signing_keys()
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
    {
        return Err(format!(
            "the database holds signing keys but its master key file {} is missing; they \
             cannot be opened without it. Restore the file, or point KEYGATE_MASTER_KEY_FILE at it",
            path.display()
        ));
    }
    let master_key = Arc::new(load_master_key(&config.master_key)?);
    check_fingerprint(
        store,
        "master_key_fingerprint",
        master_key.fingerprint(),
        || {
            "the configured master key is not the one this database was set up with, so its \
             sealed signing keys cannot be opened. Configure the original master key \
             (KEYGATE_MASTER_KEY_FILE)"
                .to_owned()
        },
    )
    .await?;
    Ok(master_key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generates_once_with_private_permissions_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db.pepper");
        let source = PepperSource::BesideDatabase(path.clone());
        let first = load_pepper(&source, 1).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load_pepper(&source, 1).unwrap();
        assert_eq!(first.hash("x"), second.hash("x"));
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_others_can_reach_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        std::fs::write(&path, "p".repeat(40)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_pepper(&PepperSource::File(path.clone()), 1)
                .err()
                .unwrap();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
            assert!(!err.contains(&"p".repeat(40)), "{err}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(load_pepper(&PepperSource::File(path.clone()), 1).is_ok());
        }
    }

    #[test]
    fn short_or_missing_peppers_are_refused() {
        assert!(load_pepper(&PepperSource::Value("short".to_owned().into()), 1).is_err());
        let err = load_pepper(&PepperSource::Missing, 1).unwrap_err();
        assert!(err.contains("KEYGATE_PEPPER_FILE"));
    }

    #[test]
    fn master_key_is_generated_once_and_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db.master-key");
        let source = SecretSource::BesideDatabase(path.clone());
        let first = load_master_key(&source).unwrap();
        let second = load_master_key(&source).unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(load_master_key(&SecretSource::Value("c2hvcnQ=".to_owned().into())).is_err());
        let err = load_master_key(&SecretSource::Missing).unwrap_err();
        assert!(err.contains("KEYGATE_MASTER_KEY_FILE"), "{err}");
    }
}
