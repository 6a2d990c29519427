//! Files that hold secrets must be keygate's alone. No dependencies on the
//! rest of the crate: configuration, secrets, TLS and the CLI all ask it.

use std::path::Path;

/// Refuses a file that users other than keygate's may read or change: it
/// holds a secret. The error says what to run.
pub fn check_private(path: &Path, what: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "the {what} {path} holds a secret but can be read or changed by other users \
                 (mode {mode:o}); make it private to keygate's user: chmod 600 {path}",
                path = path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}
